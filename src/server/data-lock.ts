// One server per data directory: a second one would sweep the first one's containers and mounts as leftovers of a
// crash. The lock is a file holding the owner's pid; a file whose process is gone is stale and taken over.
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ConflictError } from "../core/errors.js";

export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const path = join(dataDir, "server.lock");
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: "wx", mode: 0o644 });
      return async () => {
        const owner = Number((await readFile(path, "utf8").catch(() => "")).trim());
        if (owner === process.pid) await rm(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const owner = Number((await readFile(path, "utf8").catch(() => "")).trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
      throw new ConflictError(`another slipway server (pid ${owner}) is using ${dataDir}; stop it first (kill ${owner}) or give this one another --data`, {
        dataDir,
        pid: owner,
      });
    }
    // Stale: its process is gone (killed, or the machine restarted).
    await rm(path, { force: true });
  }
  throw new ConflictError(`could not lock ${dataDir}: another server keeps taking it`, { dataDir });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
