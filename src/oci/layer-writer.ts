// Writes OCI layer tars deterministically: entries in sorted order, mtimes clamped to the epoch, no user or group
// names, fixed compression settings. Equal inputs give byte-identical layers on any builder.
import { createReadStream, lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { pack as tarPack } from "tar-stream";
import { InvalidError } from "../core/errors.js";
import { DigestCounter, type Digest } from "./digest.js";
import { type Compression } from "./media-types.js";
import { spawnFilter } from "./compression.js";

interface Owned {
  path: string;
  mode: number;
  uid: number;
  gid: number;
}
export type LayerEntry =
  | (Owned & { type: "dir" })
  /** A regular file; `path` on disk is read whole when small (one read beats a stream per tiny file). */
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
const EPOCH = new Date(0);
const SMALL_FILE = 1 << 20;
const QUEUE_BYTES = 8 << 20;
const GATHER_BYTES = 1 << 20;
/** tar-stream swaps a mode of 0 for its default (0644/0755); a file-type bit, masked off when encoding, keeps 0 as 0. */
const KEEP_ZERO_MODE = 0o100000;
const NO_CONTENT = Buffer.alloc(0);

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

/** Packs entries (already in the order they should appear) into a compressed layer stream. */
export function packLayer(entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>, options: PackOptions): PackedLayer {
  const tar = tarPack();
  const counter = new DigestCounter();
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const compressor =
    options.compression === "gzip"
      ? createGzip({ level: options.gzipLevel ?? 1, memLevel: 9, chunkSize: 1 << 16 })
      : options.compression === "zstd"
        ? spawnFilter("zstd", ["-q", "-c", "-3", "-T1", "--no-check"])
        : new PassThrough();

  const diffId = (async () => {
    const writing = writeEntries(tar, entries);
    const hashing = pipeline(
      tar as unknown as Readable,
      // tar-stream emits a header, a body and padding per entry: gathered into large chunks, a layer of many small
      // files costs the hash, the compressor and the store a few calls instead of three per file.
      async function* (source: AsyncIterable<Buffer>) {
        let parts: Buffer[] = [];
        let bytes = 0;
        for await (const chunk of source) {
          parts.push(chunk);
          bytes += chunk.length;
          if (bytes >= GATHER_BYTES) {
            const joined = parts.length === 1 ? parts[0]! : Buffer.concat(parts, bytes);
            parts = [];
            bytes = 0;
            counter.update(joined);
            yield joined;
          }
        }
        if (bytes > 0) {
          const joined = Buffer.concat(parts, bytes);
          counter.update(joined);
          yield joined;
        }
      },
      compressor,
      out,
    );
    await Promise.all([writing, hashing]);
    return counter.digest();
  })();
  diffId.catch((err) => out.destroy(err));
  return { stream: out, diffId };
}

async function writeEntries(tar: ReturnType<typeof tarPack>, entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>): Promise<void> {
  // Entries whose bytes are at hand (all but large files) are queued without waiting for each to be taken, up to
  // QUEUE_BYTES; a streamed file waits for the queue, since tar entries go out one after another.
  let queued: Array<Promise<void>> = [];
  let queuedBytes = 0;
  const drain = async () => {
    const batch = queued;
    queued = [];
    queuedBytes = 0;
    await Promise.all(batch);
  };
  try {
    for await (const entry of entries) {
      const streamed = entry.type === "file" && !(entry.source !== undefined && entry.size <= SMALL_FILE);
      if (streamed) {
        await drain();
        await writeEntry(tar, entry);
        continue;
      }
      const written = writeEntry(tar, entry);
      written.catch(() => undefined);
      queued.push(written);
      queuedBytes += 512 + (entry.type === "file" ? entry.size : 0);
      if (queuedBytes >= QUEUE_BYTES) await drain();
    }
    await drain();
    tar.finalize();
  } catch (err) {
    tar.destroy(err as Error);
    throw err;
  }
}

async function writeEntry(tar: ReturnType<typeof tarPack>, entry: LayerEntry): Promise<void> {
  if (entry.type === "whiteout" || entry.type === "opaque") {
    const name =
      entry.type === "opaque" ? join(entry.path, OPAQUE_WHITEOUT) : join(dirnameOf(entry.path), WHITEOUT_PREFIX + basenameOf(entry.path));
    await addEntry(tar, { name: stripDot(name), type: "file", size: 0, mode: 0o644, uid: 0, gid: 0, mtime: EPOCH }, NO_CONTENT);
    return;
  }
  const header = { name: entry.path, mode: (entry.mode & 0o7777) | KEEP_ZERO_MODE, uid: entry.uid, gid: entry.gid, mtime: EPOCH };
  switch (entry.type) {
    case "dir":
      await addEntry(tar, { ...header, type: "directory" });
      return;
    case "symlink":
      await addEntry(tar, { ...header, type: "symlink", linkname: entry.target });
      return;
    case "hardlink":
      await addEntry(tar, { ...header, type: "link", linkname: entry.target });
      return;
    case "fifo":
      await addEntry(tar, { ...header, type: "fifo" });
      return;
    case "file": {
      if (entry.source !== undefined && entry.size <= SMALL_FILE) {
        const data = readFileSync(entry.source);
        if (data.length !== entry.size) {
          throw new InvalidError(`${entry.path} changed size while it was being packed (${entry.size} → ${data.length} bytes)`, { path: entry.path });
        }
        await addEntry(tar, { ...header, type: "file", size: entry.size }, data);
        return;
      }
      const sink = tar.entry({ ...header, type: "file", size: entry.size });
      await pipeline(entry.open(), sink);
      return;
    }
  }
}

/** Adds an entry without a body stream; an empty file (a whiteout) must be given its empty content or it never ends. */
function addEntry(tar: ReturnType<typeof tarPack>, header: Parameters<ReturnType<typeof tarPack>["entry"]>[0], content?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error | null) => (err ? reject(err) : resolve());
    if (content) tar.entry(header, content, done);
    else tar.entry(header, done);
  });
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
