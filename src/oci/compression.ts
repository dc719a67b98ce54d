// Compression and decompression streams for layers. gzip runs in-process (zlib); zstd runs the `zstd` program,
// since Node 20's zlib has no zstd.
import { spawn, type ChildProcess } from "node:child_process";
import { Duplex, PassThrough } from "node:stream";
import { createGunzip } from "node:zlib";
import { UnavailableError } from "../core/errors.js";
import type { Compression } from "./media-types.js";

/** The zstd settings of every layer Slipway writes: fixed, since they change every digest. */
const ZSTD_COMPRESS = ["-q", "-c", "-3", "-T1", "--no-check"];

/** A duplex stream that pipes through an external program's stdin/stdout. */
function spawnFilter(command: string, args: string[]): Duplex {
  return filterOf(spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] }), command);
}

function filterOf(child: ChildProcess, command: string): Duplex {
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const duplex = Duplex.from({ writable: child.stdin!, readable: child.stdout! });
  child.on("error", (err) =>
    duplex.destroy(new UnavailableError(`cannot run ${command}: ${err.message}; install it (apt-get install ${command})`)),
  );
  child.on("exit", (code) => {
    if (code !== 0) duplex.destroy(new UnavailableError(`${command} exited with ${code}: ${stderr.trim()}`));
  });
  duplex.on("close", () => child.kill());
  return duplex;
}

/** A zstd process started ahead of need (prestartZstd), waiting on its stdin; it never keeps the process alive. */
let spare: { child: ChildProcess; failed: boolean } | null = null;

/** A zstd compressor with the layer settings: the spare when one is ready, else a process started now. */
export function zstdCompressor(): Duplex {
  const taken = spare;
  spare = null;
  if (!taken || taken.failed || taken.child.exitCode !== null || taken.child.signalCode !== null) {
    if (taken) taken.child.kill();
    return spawnFilter("zstd", ZSTD_COMPRESS);
  }
  setRef(taken.child, true);
  return filterOf(taken.child, "zstd");
}

/**
 * Starts the next layer's zstd now. Starting a child forks the server, ~5 ms of its main thread: a caller that is
 * waiting anyway (on a RUN step's container, or done with a build) pays it there instead of in a later layer's path.
 */
export function prestartZstd(): void {
  if (spare && !spare.failed && spare.child.exitCode === null && spare.child.signalCode === null) return;
  const child = spawn("zstd", ZSTD_COMPRESS, { stdio: ["pipe", "pipe", "pipe"] });
  const started = { child, failed: false };
  // A zstd that cannot start fails here unseen; zstdCompressor then starts one whose failure the layer reports.
  child.once("error", () => (started.failed = true));
  setRef(child, false);
  spare = started;
}

function setRef(child: ChildProcess, ref: boolean): void {
  for (const handle of [child, child.stdin, child.stdout, child.stderr] as unknown as Array<{ ref(): void; unref(): void }>) {
    if (ref) handle.ref();
    else handle.unref();
  }
}

export function decompressor(compression: Compression): Duplex {
  if (compression === "gzip") return createGunzip({ chunkSize: 1 << 16 });
  if (compression === "zstd") return spawnFilter("zstd", ["-q", "-d", "-c"]);
  return new PassThrough();
}
