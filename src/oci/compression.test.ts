// zstd compressors started ahead of need write the same bytes as ones started on demand, and a spare that died or
// never started is replaced, not used.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterEach, describe, expect, it } from "vitest";
import { prestartZstd, zstdCompressor } from "./compression.js";

async function compress(data: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(Readable.from([data]), zstdCompressor(), async (source: AsyncIterable<Buffer>) => {
    for await (const c of source) chunks.push(c);
  });
  return Buffer.concat(chunks);
}

/** The zstd processes this test process has started that are still running (not exited, nor exiting). */
function runningZstd(): number[] {
  const out = execFileSync("ps", ["-o", "pid=,stat=,comm=", "--ppid", String(process.pid)], { encoding: "utf8" });
  return out
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter(([, stat, comm]) => comm === "zstd" && !stat!.startsWith("Z"))
    .map(([pid]) => Number(pid));
}

/** Waits for compressors that finished their work to exit (they are killed when their stream closes). */
async function settled(): Promise<void> {
  for (let i = 0; i < 50 && runningZstd().length > 0; i++) await new Promise((r) => setTimeout(r, 10));
}

describe("zstdCompressor", () => {
  const path = process.env.PATH;
  afterEach(() => {
    process.env.PATH = path;
  });

  it("gives the same bytes from a prestarted process as from one started on demand", async () => {
    const data = Buffer.concat([randomBytes(100_000), Buffer.alloc(300_000, "text ")]);
    const onDemand = await compress(data);
    await settled();
    prestartZstd();
    expect(runningZstd()).toHaveLength(1);
    const prestarted = await compress(data);
    expect(prestarted.equals(onDemand)).toBe(true);
    expect(execFileSync("zstd", ["-q", "-d", "-c"], { input: prestarted }).equals(data)).toBe(true);
  });

  it("starts one spare at most, and uses it once", async () => {
    await settled();
    prestartZstd();
    prestartZstd();
    const [spare] = runningZstd();
    expect(runningZstd()).toEqual([spare]);
    await compress(Buffer.from("one"));
    await settled();
    expect(runningZstd()).toEqual([]);
    expect((await compress(Buffer.from("two"))).length).toBeGreaterThan(0);
  });

  it("replaces a spare that was killed", async () => {
    prestartZstd();
    const [spare] = runningZstd();
    process.kill(spare!, "SIGKILL");
    await new Promise((r) => setTimeout(r, 50));
    const data = Buffer.from("after the spare died\n".repeat(100));
    expect(execFileSync("zstd", ["-q", "-d", "-c"], { input: await compress(data) }).equals(data)).toBe(true);
  });

  it("replaces a spare that could not start (zstd missing then) without an unhandled error", async () => {
    process.env.PATH = "/nonexistent";
    prestartZstd();
    await new Promise((r) => setTimeout(r, 50));
    process.env.PATH = path;
    const data = Buffer.from("zstd is back\n");
    expect(execFileSync("zstd", ["-q", "-d", "-c"], { input: await compress(data) }).equals(data)).toBe(true);
  });
});
