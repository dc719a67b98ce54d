// Writes OCI layer tars deterministically: entries in sorted order, mtimes clamped to the epoch, no user or group
// names, fixed compression settings. Equal inputs give byte-identical layers on any builder.
import { closeSync, createReadStream, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from "node:fs";
import { join } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip, deflateRawSync } from "node:zlib";
import { InvalidError } from "../core/errors.js";
import { DigestCounter, type Digest } from "./digest.js";
import { type Compression } from "./media-types.js";
import { zstdCompressor } from "./compression.js";
import { BLOCK, encodeTarHeader, padding, type TarHeader } from "./tar-header.js";

interface Owned {
  path: string;
  mode: number;
  uid: number;
  gid: number;
}
export type LayerEntry =
  | (Owned & { type: "dir" })
  /** A regular file; `source` on disk is read whole when small (one read beats a stream per tiny file). */
  | (Owned & { type: "file"; size: number; open: () => Readable; source?: string })
  | (Owned & { type: "symlink"; target: string })
  | (Owned & { type: "hardlink"; target: string })
  | (Owned & { type: "fifo" })
  /** A deletion of `path` from the layers below (written as `.wh.<name>`). */
  | { type: "whiteout"; path: string }
  /** `path` hides everything below it in lower layers (written as `<path>/.wh..wh..opq`). */
  | { type: "opaque"; path: string };

export const WHITEOUT_PREFIX = ".wh.";
export const OPAQUE_WHITEOUT = ".wh..wh..opq";
const SMALL_FILE = 1 << 20;
/**
 * The tar is written into chunks of this size: headers and small files are copied in place, so a layer of many small
 * files costs the hash, the compressor and the store a few calls instead of three per file.
 */
const CHUNK_BYTES = 2 << 20;
const END_OF_TAR = Buffer.alloc(2 * BLOCK);

export interface PackedLayer {
  /** The compressed layer bytes. */
  stream: Readable;
  /** sha256 of the uncompressed tar, known once the stream has ended. */
  diffId: Promise<Digest>;
}

export interface PackOptions {
  compression: Compression;
  /** gzip level; fixed per release of Slipway, since it changes every digest. */
  gzipLevel?: number;
}

/** A layer is stored uncompressed when at least this share of its bytes is in large files that do not compress. */
const INCOMPRESSIBLE_SHARE = 0.9;
/** Layers smaller than this are always compressed: the saving in time is too small to matter. */
const CONSIDER_FROM_BYTES = 16 << 20;
const SAMPLE_BYTES = 128 << 10;
/** A sample that deflates to more than this share of its size counts as not compressing. */
const INCOMPRESSIBLE_RATIO = 0.95;

/**
 * The compression worth using for a layer of these entries: `preferred`, unless most of its bytes are in large
 * files that do not compress (media, archives, random data), judged on a sample of each (deflate level 1 of its
 * first 128 KiB); such a layer is stored uncompressed, since compressing it costs the build, and unpacking costs
 * every pull, time for nothing. Decided by content alone, so equal layers still get equal bytes everywhere.
 */
export function worthwhileCompression(entries: readonly LayerEntry[], preferred: Compression): Compression {
  if (preferred === "none") return preferred;
  let total = 0;
  const large: Array<{ size: number; source: string }> = [];
  for (const e of entries) {
    if (e.type !== "file") continue;
    total += e.size;
    if (e.size >= SMALL_FILE && e.source) large.push({ size: e.size, source: e.source });
  }
  if (total < CONSIDER_FROM_BYTES) return preferred;
  // Largest first, and no further than the answer needs: most layers are settled by a sample or two.
  large.sort((a, b) => b.size - a.size);
  let unsampled = large.reduce((n, f) => n + f.size, 0);
  let incompressible = 0;
  const sample = Buffer.alloc(SAMPLE_BYTES);
  for (const f of large) {
    if (incompressible >= total * INCOMPRESSIBLE_SHARE) break;
    if (incompressible + unsampled < total * INCOMPRESSIBLE_SHARE) return preferred;
    unsampled -= f.size;
    const fd = openSync(f.source, "r");
    try {
      const n = readSync(fd, sample, 0, SAMPLE_BYTES, 0);
      if (deflateRawSync(sample.subarray(0, n), { level: 1 }).length > n * INCOMPRESSIBLE_RATIO) incompressible += f.size;
    } finally {
      closeSync(fd);
    }
  }
  return incompressible >= total * INCOMPRESSIBLE_SHARE ? "none" : preferred;
}

/** Packs entries (already in the order they should appear) into a compressed layer stream. */
export function packLayer(entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>, options: PackOptions): PackedLayer {
  const counter = new DigestCounter();
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const compressor =
    options.compression === "gzip"
      ? createGzip({ level: options.gzipLevel ?? 1, memLevel: 9, chunkSize: 1 << 16 })
      : options.compression === "zstd"
        ? zstdCompressor()
        : new PassThrough();
  const hashed = async function* () {
    for await (const chunk of tarChunks(entries)) {
      counter.update(chunk);
      yield chunk;
    }
  };
  const diffId = pipeline(hashed, compressor, out).then(() => counter.digest());
  diffId.catch((err) => out.destroy(err));
  return { stream: out, diffId };
}

/**
 * The uncompressed tar of `entries`, in chunks of about CHUNK_BYTES. Small files are read straight into the chunk;
 * large ones are streamed from their source. A file whose size differs from its entry's fails the layer.
 */
export async function* tarChunks(entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>): AsyncGenerator<Buffer> {
  let chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  let at = 0;
  for await (const entry of entries) {
    const header = tarHeaderOf(entry);
    const block = encodeTarHeader(header);
    const inline = entry.type === "file" && entry.source !== undefined && entry.size <= SMALL_FILE;
    const room = block.length + (inline ? header.size + padding(header.size) : 0);
    if (at + room > chunk.length && at > 0) {
      yield chunk.subarray(0, at);
      chunk = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, room));
      at = 0;
    } else if (room > chunk.length) {
      chunk = Buffer.allocUnsafe(room);
    }
    at += block.copy(chunk, at);
    if (entry.type !== "file") continue;
    if (inline) {
      readWhole(entry.source!, entry.path, chunk, at, header.size);
      at += header.size;
    } else {
      // A large file streams: what is gathered so far goes first.
      yield chunk.subarray(0, at);
      chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      at = 0;
      let read = 0;
      for await (const data of entry.open()) {
        read += (data as Buffer).length;
        if (read > header.size) break;
        yield data as Buffer;
      }
      if (read !== header.size) throw changedSize(entry.path, header.size, read);
    }
    const pad = padding(header.size);
    chunk.fill(0, at, at + pad);
    at += pad;
  }
  if (at + END_OF_TAR.length > chunk.length) {
    yield chunk.subarray(0, at);
    at = 0;
    chunk = Buffer.allocUnsafe(END_OF_TAR.length);
  }
  at += END_OF_TAR.copy(chunk, at);
  yield chunk.subarray(0, at);
}

function changedSize(path: string, expected: number, found: number): InvalidError {
  return new InvalidError(`${path} changed size while it was being packed (${expected} → ${found}${found > expected ? " or more" : ""} bytes)`, { path });
}

function tarHeaderOf(entry: LayerEntry): TarHeader {
  if (entry.type === "whiteout" || entry.type === "opaque") {
    const name = entry.type === "opaque" ? join(entry.path, OPAQUE_WHITEOUT) : join(dirnameOf(entry.path), WHITEOUT_PREFIX + basenameOf(entry.path));
    return { name: stripDot(name), type: "file", size: 0, mode: 0o644, uid: 0, gid: 0 };
  }
  const owned = { name: entry.path, mode: entry.mode & 0o7777, uid: entry.uid, gid: entry.gid, size: 0 };
  switch (entry.type) {
    case "dir":
      return { ...owned, type: "directory" };
    case "symlink":
      return { ...owned, type: "symlink", linkname: entry.target };
    case "hardlink":
      return { ...owned, type: "link", linkname: entry.target };
    case "fifo":
      return { ...owned, type: "fifo" };
    case "file":
      return { ...owned, type: "file", size: entry.size };
  }
}

/** Reads exactly `size` bytes of `path` into `target` at `offset`; a file of another size fails the layer. */
function readWhole(path: string, name: string, target: Buffer, offset: number, size: number): void {
  const fd = openSync(path, "r");
  try {
    const actual = fstatSync(fd).size;
    let read = 0;
    while (read < size) {
      const n = readSync(fd, target, offset + read, size - read, read);
      if (n === 0) break;
      read += n;
    }
    if (actual !== size || read !== size) throw changedSize(name, size, actual === size ? read : actual);
  } finally {
    closeSync(fd);
  }
}

function dirnameOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}
function basenameOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}
function stripDot(path: string): string {
  return path.startsWith("./") ? path.slice(2) : path;
}

export interface DirectoryWalkOptions {
  /** Directories (relative paths) that carry overlayfs's opaque marker. */
  opaqueDirs?: ReadonlySet<string>;
  /** Treat character devices 0/0 as overlayfs whiteouts (true when walking an overlay upper dir). */
  overlayWhiteouts?: boolean;
}

/**
 * Walks a directory tree in sorted order, yielding layer entries. Hardlinked files become one file and links to
 * its first path in that order. Device nodes are refused: a layer may not carry them.
 */
export async function* entriesFromDirectory(root: string, options: DirectoryWalkOptions = {}): AsyncGenerator<LayerEntry> {
  const seenInodes = new Map<string, string>();
  async function* walk(rel: string): AsyncGenerator<LayerEntry> {
    // Synchronous metadata calls: a layer is mostly small files, where the thread pool's round trip costs more than
    // the call itself.
    const names = sortBytewise(readdirSync(join(root, rel)));
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(root, path);
      const st = lstatSync(abs);
      const owned = { path, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
      if (st.isDirectory()) {
        yield { ...owned, type: "dir" };
        if (options.opaqueDirs?.has(path)) yield { type: "opaque", path };
        yield* walk(path);
      } else if (st.isSymbolicLink()) {
        yield { ...owned, type: "symlink", target: readlinkSync(abs) };
      } else if (st.isFile()) {
        const inode = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? seenInodes.get(inode) : undefined;
        if (first !== undefined) {
          yield { ...owned, type: "hardlink", target: first };
        } else {
          if (st.nlink > 1) seenInodes.set(inode, path);
          yield { ...owned, type: "file", size: st.size, source: abs, open: () => createReadStream(abs, { highWaterMark: 1 << 20 }) };
        }
      } else if (st.isCharacterDevice() && options.overlayWhiteouts && st.rdev === 0) {
        yield { type: "whiteout", path };
      } else if (st.isFIFO()) {
        yield { ...owned, type: "fifo" };
      } else if (st.isSocket()) {
        continue;
      } else {
        throw new InvalidError(`${path} is a device node; layers may not contain device nodes`, { path });
      }
    }
  }
  yield* walk("");
}

/** Sorts names by their UTF-8 bytes (what tar readers and other builders order by), encoding each name once. */
export function sortBytewise(names: string[]): string[] {
  return names
    .map((name) => ({ name, bytes: Buffer.from(name) }))
    .sort((a, b) => Buffer.compare(a.bytes, b.bytes))
    .map((e) => e.name);
}
