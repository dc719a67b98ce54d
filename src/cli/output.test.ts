// The CLI's output writes with writeSync; on a non-blocking stdout that fills up (EAGAIN) it must hand over to the
// stream and lose nothing, in order. Runs the built module (dist/cli/output.js) in a child on this runtime (Node
// here, Bun in scripts/test-client-on-bun.sh), its stdout a non-blocking FIFO that nobody reads at first.
import { spawn, spawnSync, execFileSync } from "node:child_process";
import { closeSync, constants, openSync, readSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDirs } from "../../test/helpers/temp-dirs.js";

const temp = tempDirs();
const OUTPUT = resolve(import.meta.dirname, "../../dist/cli/output.js");

describe("CLI output", () => {
  it("keeps every byte, in order, when stdout is non-blocking and full", async () => {
    const dir = await temp("slipway-output-");
    const fifo = join(dir, "out");
    execFileSync("mkfifo", [fifo]);
    const script = join(dir, "write.mjs");
    writeFileSync(
      script,
      `import { createOutput } from ${JSON.stringify(OUTPUT)};\n` +
        `const out = createOutput(false);\n` +
        `for (let i = 0; i < 16; i++) out.bytes(Buffer.alloc(65536, 65 + i));\n`,
    );
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    // Passed as fd 3 and moved onto stdout by the shell: the runtime's spawn would make a child's stdout blocking.
    const child = spawn("sh", ["-c", 'exec "$0" "$1" >&3', process.execPath, script], { stdio: ["ignore", "ignore", "pipe", writer] });
    closeSync(writer);
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on("close", r));
    await new Promise((r) => setTimeout(r, 300)); // the child fills the pipe and meets EAGAIN
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(1 << 16);
    for (;;) {
      let n: number;
      try {
        n = readSync(reader, buf);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      if (n === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    closeSync(reader);
    expect(await exited, stderr).toBe(0);
    const all = Buffer.concat(chunks);
    expect(all.length).toBe(16 * 65536);
    for (let i = 0; i < 16; i++) expect(all.subarray(i * 65536, (i + 1) * 65536).every((b) => b === 65 + i)).toBe(true);
  });
});

describe("CLI output when stdout fails", () => {
  const script = async (body: string): Promise<string> => {
    const dir = await temp("slipway-output-");
    const path = join(dir, "run.mjs");
    writeFileSync(path, `import { runCommand } from ${JSON.stringify(OUTPUT)};\n${body}\n`);
    return path;
  };

  it("stops writing quietly when the reader has gone (EPIPE), and exits 0", async () => {
    const path = await script(`await runCommand(false, async (out) => { for (let i = 0; i < 256; i++) out.bytes(Buffer.alloc(65536, 97)); });`);
    const child = spawn(process.execPath, [path], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    // Like `| head -c 10`: read a little, then close the pipe.
    child.stdout!.once("data", () => child.stdout!.destroy());
    const code = await new Promise<number | null>((r) => child.on("close", r));
    expect(stderr).toBe("");
    expect(code).toBe(0);
  });

  it("names stdout when it cannot be written (a full disk), even with --json, without a stack trace", async () => {
    const path = await script(`await runCommand(true, async (out) => out.result({ ok: true }, "ok"));`);
    const full = openSync("/dev/full", "w");
    const r = spawnSync(process.execPath, [path], { stdio: ["ignore", full, "pipe"], encoding: "utf8" });
    closeSync(full);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: cannot write to stdout: ENOSPC/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
