// Compression and decompression streams for layers. gzip runs in-process (zlib); zstd runs the `zstd` program,
// since Node 20's zlib has no zstd.
import { spawn } from "node:child_process";
import { Duplex, PassThrough } from "node:stream";
import { createGunzip } from "node:zlib";
import { UnavailableError } from "../core/errors.js";
import type { Compression } from "./media-types.js";

/** A duplex stream that pipes through an external program's stdin/stdout. */
export function spawnFilter(command: string, args: string[]): Duplex {
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const duplex = Duplex.from({ writable: child.stdin, readable: child.stdout });
  child.on("error", (err) =>
    duplex.destroy(new UnavailableError(`cannot run ${command}: ${err.message}; install it (apt-get install ${command})`)),
  );
  child.on("exit", (code) => {
    if (code !== 0) duplex.destroy(new UnavailableError(`${command} exited with ${code}: ${stderr.trim()}`));
  });
  duplex.on("close", () => child.kill());
  return duplex;
}

export function decompressor(compression: Compression): Duplex {
  if (compression === "gzip") return createGunzip({ chunkSize: 1 << 16 });
  if (compression === "zstd") return spawnFilter("zstd", ["-q", "-d", "-c"]);
  return new PassThrough();
}
