// Unpacks OCI layers into a snapshot directory: the attack surface of every image Slipway pulls. Each entry's path
// is checked before anything touches the disk: no `..`, no absolute paths, no writes through symlinks, hardlinks
// only to files of the same layer, no device nodes; decompression bombs are stopped by a bounded compression ratio,
// a free-space reserve and a total size. Whiteouts become overlayfs whiteouts.
import { execFile } from "node:child_process";
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  rmSync,
  statfsSync,
  symlinkSync,
  write,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { extract as tarExtract } from "tar-stream";
import { InvalidError, UnavailableError } from "../core/errors.js";
import { decompressor } from "./compression.js";
import { DigestCounter, type Digest } from "./digest.js";
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from "./layer-writer.js";
import type { Compression } from "./media-types.js";

const run = promisify(execFile);
const writeAt = promisify(write);

/**
 * Writes a stream's bytes to `fd`, which stays the caller's to close. Not a WriteStream: destroying one (as a failed
 * pipeline does) closes its fd later, from the thread pool, after the caller has closed it and the number may have
 * been reused by a pipe or a database file.
 */
async function writeStreamTo(fd: number, source: AsyncIterable<unknown>): Promise<void> {
  for await (const chunk of source) {
    const bytes = chunk as Buffer;
    for (let off = 0; off < bytes.length; ) off += (await writeAt(fd, bytes, off, bytes.length - off)).bytesWritten;
  }
}

export interface UnpackOptions {
  compression: Compression;
  /** Refuse the layer once its uncompressed size passes this many bytes (decompression bombs). */
  maxBytes?: number;
  /**
   * Refuse the layer once, past the first 256 MiB, its uncompressed bytes exceed this many times the compressed bytes
   * read so far (decompression bombs; default 100).
   */
  maxRatio?: number;
  /**
   * Refuse the layer before it would leave less than this many bytes free on `dest`'s filesystem (default 1 GiB: room
   * for the database, blob writes and containers; a share of a large disk would refuse layers on one with plenty free).
   */
  reserveBytes?: number;
  /** Refuse the layer once it has more entries than this. */
  maxEntries?: number;
  /** Expected compressed digest and diffID; a mismatch fails the unpack. */
  expectDigest?: Digest;
  expectDiffId?: Digest;
  /** Name of the layer for error messages. */
  label?: string;
}

export interface UnpackResult {
  digest: Digest;
  diffId: Digest;
  compressedSize: number;
  size: number;
  entries: number;
}

/** The limits a server sets for every layer it unpacks; the rest of UnpackOptions is per layer. */
export type UnpackLimits = Pick<UnpackOptions, "maxRatio">;

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const DEFAULT_MAX_BYTES = 64 * GiB;
// Real layers compress 2–10× (measured: libraries 3×, docs 2×, dpkg's database 6×, JSON 10×, zstd of `seq` 27×);
// only one pattern repeated for hundreds of MiB goes past 100× (zeros: gzip -1 229×, gzip -9 1030×, zstd -3
// 31 900×), and that is what a bomb is made of. Below the floor any ratio passes: a layer may always unpack this much.
const DEFAULT_MAX_RATIO = 100;
const RATIO_FLOOR = 256 * MiB;
/** Free space is read every this many uncompressed bytes, and must cover the reserve plus this much more. */
const SPACE_CHECK_BYTES = 64 * MiB;
const WHITEOUT_META_PREFIX = `${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`;
const DEFAULT_MAX_ENTRIES = 2_000_000;
/** Files up to this size are gathered and written with one call; larger ones stream. */
const SMALL_FILE = 1 << 20;

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

/**
 * Refuses to go on unless `dest`'s filesystem can take the next SPACE_CHECK_BYTES and still keep the reserve free:
 * what a layer fills is never the space the blob store, the database and the running containers need. The interval
 * is counted in tar bytes, which small files can outgrow on disk (a 4 KiB block each); the reserve absorbs that.
 */
function checkFreeSpace(dest: string, unpacked: number, label: string, reserveBytes: number | undefined): void {
  const fs = statfsSync(dest);
  const free = fs.bavail * fs.bsize;
  const reserve = reserveBytes ?? GiB;
  if (free >= reserve + SPACE_CHECK_BYTES) return;
  throw new UnavailableError(
    `${label}: refused after ${mib(unpacked)} unpacked: the filesystem of ${dest} has ${mib(free)} free, and unpacking ` +
      `keeps ${mib(reserve)} of it free; free space there and try again`,
    { unpackedBytes: unpacked, freeBytes: free, reserveBytes: reserve },
  );
}

/**
 * Splits a tar entry name into checked components; throws on anything that could leave the root. `what` names the
 * path in messages: the entry, or, for a hardlink's target, `hardlink "x" target`.
 */
export function safeComponents(name: string, label: string, what = "entry"): string[] {
  if (name.includes("\0")) throw new InvalidError(`${label}: ${what} name contains a NUL byte`, { entry: name });
  if (name.startsWith("/")) throw new InvalidError(`${label}: ${what} ${JSON.stringify(name)} has an absolute path`, { entry: name });
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.some((p) => p === "..")) {
    throw new InvalidError(`${label}: ${what} ${JSON.stringify(name)} contains '..'`, { entry: name });
  }
  return parts;
}

/**
 * Unpacks a (compressed) layer stream into `dest`, which must be an empty directory the caller owns. On error the
 * caller discards `dest`; nothing outside it has been touched. Metadata calls are synchronous: a layer is mostly
 * small entries, where a trip through the thread pool costs more than the call (a busybox layer: 330 → 40 ms).
 */
export async function unpackLayer(source: Readable, dest: string, options: UnpackOptions): Promise<UnpackResult> {
  const label = options.label ?? "layer";
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const maxRatio = options.maxRatio ?? DEFAULT_MAX_RATIO;
  const compressed = new DigestCounter();
  const uncompressed = new DigestCounter();
  const extract = tarExtract();
  const knownDirs = new Set<string>([""]);
  // Applied after the last entry (a directory's mode may forbid writing its children). Keyed by relative path, and
  // pruned whenever a later entry replaces that path, so that they never land on what replaced it (a symlink to
  // somewhere outside `dest`).
  const dirModes = new Map<string, { mode: number; uid: number; gid: number }>();
  const opaque = new Set<string>();
  let entries = 0;

  /** Walks `parts` below `dest`, refusing anything but real directories; creates missing ones when asked. */
  function ensureDirs(parts: string[], entryName: string, create: boolean): void {
    let rel = "";
    for (const part of parts) {
      rel = rel ? `${rel}/${part}` : part;
      if (knownDirs.has(rel)) continue;
      const abs = join(dest, rel);
      const st = lstatSync(abs, { throwIfNoEntry: false });
      if (!st) {
        if (!create) {
          throw new InvalidError(`${label}: entry ${JSON.stringify(entryName)} names ${JSON.stringify(rel)}, which is not earlier in this layer`, {
            entry: entryName,
            missing: rel,
          });
        }
        mkdirSync(abs, { mode: 0o755 });
      } else if (!st.isDirectory()) {
        throw new InvalidError(
          `${label}: entry ${JSON.stringify(entryName)} would be written through ${st.isSymbolicLink() ? "symlink" : "non-directory"} ${JSON.stringify(rel)}`,
          { entry: entryName, through: rel },
        );
      }
      knownDirs.add(rel);
    }
  }

  function clear(abs: string, rel: string, keepDir: boolean): void {
    const st = lstatSync(abs, { throwIfNoEntry: false });
    if (!st) return;
    if (keepDir && st.isDirectory()) return;
    rmSync(abs, { recursive: true, force: true });
    const under = (d: string) => d === rel || d.startsWith(rel + "/");
    for (const d of [...knownDirs]) if (under(d)) knownDirs.delete(d);
    for (const d of [...dirModes.keys()]) if (under(d)) dirModes.delete(d);
    for (const d of [...opaque]) if (under(d)) opaque.delete(d);
  }

  const consume = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      entries++;
      if (entries > maxEntries) throw new InvalidError(`${label}: more than ${maxEntries} entries`, { maxEntries });
      const parts = safeComponents(h.name, label);
      if (parts.length === 0) {
        entry.resume();
        continue; // the root itself ("./")
      }
      const base = parts[parts.length - 1]!;
      const parentParts = parts.slice(0, -1);
      ensureDirs(parentParts, h.name, true);
      const rel = parts.join("/");
      const abs = join(dest, rel);

      if (base === OPAQUE_WHITEOUT) {
        opaque.add(parentParts.join("/"));
        entry.resume();
        continue;
      }
      if (base.startsWith(WHITEOUT_META_PREFIX)) {
        // aufs bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`): never part of the image's files.
        entry.resume();
        continue;
      }
      if (base.startsWith(WHITEOUT_PREFIX)) {
        const hidden = base.slice(WHITEOUT_PREFIX.length);
        if (hidden === "" || hidden === "." || hidden === ".." || hidden.includes("/")) {
          throw new InvalidError(`${label}: whiteout ${JSON.stringify(h.name)} names an invalid path`, { entry: h.name });
        }
        const target = join(dest, ...parentParts, hidden);
        clear(target, [...parentParts, hidden].join("/"), false);
        await run("mknod", [target, "c", "0", "0"]);
        entry.resume();
        continue;
      }

      const uid = h.uid ?? 0;
      const gid = h.gid ?? 0;
      const mode = (h.mode ?? 0o644) & 0o7777;
      const mtime = h.mtime ?? new Date(0);
      switch (h.type as string) {
        case "directory": {
          clear(abs, rel, true);
          try {
            mkdirSync(abs, { recursive: false, mode: 0o755 });
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
          }
          knownDirs.add(rel);
          dirModes.set(rel, { mode, uid, gid });
          entry.resume();
          break;
        }
        case "file":
        case "contiguous-file": {
          const small = (h.size ?? 0) <= SMALL_FILE;
          let data: Buffer | null = null;
          if (small) {
            const chunks: Buffer[] = [];
            for await (const chunk of entry) chunks.push(chunk as Buffer);
            data = Buffer.concat(chunks);
          }
          clear(abs, rel, false);
          // The file is made here (O_EXCL, O_NOFOLLOW) and finished through its descriptor: no path is followed twice.
          const fd = openSync(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
          try {
            if (data) {
              for (let off = 0; off < data.length; ) off += writeSync(fd, data, off);
            } else {
              await writeStreamTo(fd, entry);
            }
            fchownSync(fd, uid, gid);
            fchmodSync(fd, mode);
            futimesSync(fd, mtime, mtime);
          } finally {
            closeSync(fd);
          }
          break;
        }
        case "symlink": {
          clear(abs, rel, false);
          symlinkSync(h.linkname ?? "", abs);
          lchownSync(abs, uid, gid);
          lutimesSync(abs, mtime, mtime);
          entry.resume();
          break;
        }
        case "link": {
          const targetParts = safeComponents(h.linkname ?? "", label, `hardlink ${JSON.stringify(h.name)} target`);
          if (targetParts.length === 0) throw new InvalidError(`${label}: hardlink ${JSON.stringify(h.name)} has an empty target`, { entry: h.name });
          if (targetParts.join("/") === rel) throw new InvalidError(`${label}: hardlink ${JSON.stringify(h.name)} points at itself`, { entry: h.name });
          ensureDirs(targetParts.slice(0, -1), h.name, false);
          const targetAbs = join(dest, ...targetParts);
          const st = lstatSync(targetAbs, { throwIfNoEntry: false });
          if (!st || !st.isFile()) {
            throw new InvalidError(
              `${label}: hardlink ${JSON.stringify(h.name)} points at ${JSON.stringify(h.linkname)}, which is not a regular file earlier in this layer`,
              { entry: h.name, target: h.linkname },
            );
          }
          clear(abs, rel, false);
          linkSync(targetAbs, abs);
          entry.resume();
          break;
        }
        case "fifo": {
          clear(abs, rel, false);
          await run("mkfifo", ["-m", mode.toString(8), abs]);
          lchownSync(abs, uid, gid);
          entry.resume();
          break;
        }
        case "pax-header":
        case "pax-global-header":
        case "gnu-long-path":
        case "gnu-long-link-path":
          entry.resume();
          break;
        default:
          throw new InvalidError(`${label}: entry ${JSON.stringify(h.name)} is a ${h.type}; layers may not contain device nodes or ${h.type} entries`, {
            entry: h.name,
            type: h.type,
          });
      }
    }
  })();

  let nextSpaceCheck = 0;
  const feeding = pipeline(
    source,
    async function* (src: AsyncIterable<Buffer>) {
      for await (const chunk of src) {
        compressed.update(chunk);
        yield chunk;
      }
    },
    decompressor(options.compression),
    async function* (src: AsyncIterable<Buffer>) {
      for await (const chunk of src) {
        uncompressed.update(chunk);
        const size = uncompressed.size;
        if (size > maxBytes) {
          throw new InvalidError(`${label}: uncompressed size passes the limit of ${maxBytes} bytes`, { maxBytes });
        }
        if (size > RATIO_FLOOR && size > maxRatio * compressed.size) {
          const ratio = Number((size / compressed.size).toPrecision(4));
          throw new InvalidError(
            `${label}: refused as a decompression bomb: ${mib(size)} unpacked from ${mib(compressed.size)} compressed so far ` +
              `(${ratio}:1), over the limit of ${maxRatio}:1 for layers past ${mib(RATIO_FLOOR)}; if the layer is genuine, ` +
              `start the server with a higher --max-layer-ratio`,
            { compressedBytes: compressed.size, uncompressedBytes: size, ratio, maxRatio },
          );
        }
        if (size >= nextSpaceCheck) {
          checkFreeSpace(dest, size, label, options.reserveBytes);
          nextSpaceCheck = size + SPACE_CHECK_BYTES;
        }
        yield chunk;
      }
    },
    extract,
  );
  // On the first failure stop the other side too, and wait for both: nothing may still be writing into `dest` when
  // the caller starts discarding it.
  const errors: unknown[] = [];
  const stopOnError = (p: Promise<unknown>) =>
    p.catch((error: unknown) => {
      errors.push(error);
      extract.destroy();
    });
  await Promise.all([stopOnError(feeding), stopOnError(consume)]);
  if (errors.length > 0) throw errors[0];

  for (const dir of opaque) {
    // -h: the marker goes on the directory itself, never through a link.
    await run("setfattr", ["-h", "-n", "trusted.overlay.opaque", "-v", "y", join(dest, dir)]);
  }
  for (const [rel, d] of [...dirModes].reverse()) {
    // O_NOFOLLOW on the directory itself; its parents are real directories because every replacement of a path
    // pruned the entries below it.
    const fd = openSync(join(dest, rel), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    try {
      fchownSync(fd, d.uid, d.gid);
      fchmodSync(fd, d.mode);
    } finally {
      closeSync(fd);
    }
  }

  const result: UnpackResult = {
    digest: compressed.digest(),
    diffId: uncompressed.digest(),
    compressedSize: compressed.size,
    size: uncompressed.size,
    entries,
  };
  if (options.expectDigest && result.digest !== options.expectDigest) {
    throw new InvalidError(`${label}: content digest is ${result.digest}, expected ${options.expectDigest}`, { ...result });
  }
  if (options.expectDiffId && result.diffId !== options.expectDiffId) {
    throw new InvalidError(`${label}: diffID is ${result.diffId}, expected ${options.expectDiffId}`, { ...result });
  }
  return result;
}
