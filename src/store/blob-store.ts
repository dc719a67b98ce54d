// The one content-addressed store: layers, configs, manifests and code files, each written once under its digest.
//
//   <root>/blobs/sha256/ab/<hex>     committed blobs (immutable; visible only after verification, a sync to disk
//                                    and a rename)
//   <root>/ingest/<id>               in-progress writes (data appended; hash state rebuilt on resume)
//
// Every write streams through a hasher and commits against an expected digest and size; nothing unverified becomes
// visible. Commit is idempotent, cancel is safe twice. A failed disk write (full disk, I/O error) is an
// UnavailableError and ends the writer; its bytes stay for the caller to truncate and resume, or to cancel. A failed
// sync (details.stage "sync") leaves no byte known to be on disk: the caller can only cancel.
import { createHash, type Hash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, readdir, rename, rm, stat, open, readFile, link, copyFile, utimes, truncate, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { finished, type Readable } from "node:stream";
import { InvalidError, NotFoundError, UnavailableError } from "../core/errors.js";
import { newId } from "../core/ids.js";
import { parseDigest, type Digest, type DigestAlgorithm } from "../oci/digest.js";

export interface BlobInfo {
  digest: Digest;
  size: number;
}

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

export interface BlobStat {
  stat(digest: Digest): Promise<BlobInfo | null>;
}
export interface BlobRead extends BlobStat {
  read(digest: Digest, range?: ByteRange): Promise<Readable>;
  /** Opens a blob for positional reads into the caller's buffers; null when it is not in the store. */
  openFile(digest: Digest): Promise<BlobFile | null>;
  readBuffer(digest: Digest): Promise<Buffer>;
}
/** A committed blob opened for reading: callers that copy it out reuse their own buffers (no allocation per chunk). */
export interface BlobFile {
  readonly size: number;
  /** Reads up to `buffer.length` bytes starting at `position`; returns how many (0 past the end). */
  readInto(buffer: Uint8Array, position: number): Promise<number>;
  close(): Promise<void>;
}
export interface BlobIngest {
  /**
   * Starts a new write; `id` resumes an existing one (the bytes written so far are kept). With `size`, a resume
   * keeps only the first `size` bytes (dropping a chunk that did not arrive whole).
   */
  writer(options?: { id?: string; algorithm?: DigestAlgorithm; size?: number }): Promise<BlobWriter>;
  put(data: Uint8Array, expected?: Digest): Promise<BlobInfo>;
  putStream(source: Readable, expected?: { digest?: Digest; size?: number }): Promise<BlobInfo>;
}
export interface BlobDelete {
  delete(digest: Digest): Promise<boolean>;
}
export interface BlobStore extends BlobRead, BlobIngest, BlobDelete {
  /** The local file holding a blob, for consumers on this machine (hardlinking code files, unpacking). */
  localPath(digest: Digest): string;
  /** Every committed blob, for garbage collection. */
  list(): AsyncIterable<BlobInfo>;
  /** Ids of in-progress writes, with their last-modified time. */
  listWriters(): Promise<Array<{ id: string; modifiedMs: number; size: number }>>;
}

export interface BlobWriter {
  readonly id: string;
  readonly size: number;
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Streams a source into the writer. When the disk fails, the source is paused and left to the caller (an HTTP
   * request still needs its response); when the source fails, what it delivered is written.
   */
  writeFrom(source: Readable): Promise<void>;
  /** Verifies against what the caller expects and makes the blob visible. Idempotent. */
  commit(expected?: { digest?: Digest; size?: number }): Promise<BlobInfo>;
  /** Drops the write. Safe to call twice, and after commit. */
  cancel(): Promise<void>;
  /** Closes the file but keeps the bytes for a later resume. */
  suspend(): Promise<void>;
}

export class FsBlobStore implements BlobStore {
  private constructor(readonly root: string) {}

  static async open(root: string): Promise<FsBlobStore> {
    await mkdir(join(root, "blobs", "sha256"), { recursive: true });
    await mkdir(join(root, "ingest"), { recursive: true });
    return new FsBlobStore(root);
  }

  localPath(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.root, "blobs", algorithm, hex.slice(0, 2), hex);
  }

  /** A synchronous presence check: cheap enough to ask about thousands of blobs in one request. */
  hasSync(digest: Digest): boolean {
    return existsSync(this.localPath(digest));
  }

  async stat(digest: Digest): Promise<BlobInfo | null> {
    try {
      const st = await stat(this.localPath(digest));
      return { digest, size: st.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
  }

  async read(digest: Digest, range?: ByteRange): Promise<Readable> {
    const path = this.localPath(digest);
    const handle = await open(path, "r").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") throw new NotFoundError(`blob ${digest} is not in the store`, { digest });
      throw err;
    });
    return handle.createReadStream({ start: range?.start, end: range?.end, highWaterMark: 1 << 20 });
  }

  async openFile(digest: Digest): Promise<BlobFile | null> {
    let handle: FileHandle;
    try {
      handle = await open(this.localPath(digest), "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
    try {
      const { size } = await handle.stat();
      return {
        size,
        readInto: async (buffer, position) => (await handle.read(buffer, 0, buffer.length, position)).bytesRead,
        close: () => handle.close(),
      };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async readBuffer(digest: Digest): Promise<Buffer> {
    return readFile(this.localPath(digest)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") throw new NotFoundError(`blob ${digest} is not in the store`, { digest });
      throw err;
    });
  }

  async writer(options: { id?: string; algorithm?: DigestAlgorithm; size?: number } = {}): Promise<BlobWriter> {
    const id = options.id ?? newId();
    if (!/^[a-z0-9]{1,64}$/.test(id)) throw new InvalidError(`upload id ${JSON.stringify(id)} is invalid`, { id });
    const path = join(this.root, "ingest", id);
    const algorithm = options.algorithm ?? "sha256";
    const hash = createHash(algorithm);
    let size = 0;
    if (options.id) {
      // Resume: the hash state is not persisted, so re-read what is already on disk.
      const existing = await stat(path).catch(() => null);
      if (!existing) throw new NotFoundError(`upload ${id} is not in progress`, { id });
      if (options.size !== undefined && options.size !== existing.size) {
        if (options.size > existing.size) throw new InvalidError(`upload ${id} holds ${existing.size} bytes, fewer than ${options.size}`, { id });
        await truncate(path, options.size);
      }
      for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
        hash.update(chunk as Buffer);
        size += (chunk as Buffer).length;
      }
    }
    const file = await open(path, options.id ? "a" : "wx");
    return new FsBlobWriter(this, id, path, algorithm, hash, size, file);
  }

  async put(data: Uint8Array, expected?: Digest): Promise<BlobInfo> {
    const w = await this.writer({ algorithm: expected ? parseDigest(expected).algorithm : "sha256" });
    try {
      await w.write(data);
      return await w.commit(expected ? { digest: expected } : undefined);
    } finally {
      await w.cancel();
    }
  }

  async putStream(source: Readable, expected?: { digest?: Digest; size?: number }): Promise<BlobInfo> {
    const w = await this.writer({ algorithm: expected?.digest ? parseDigest(expected.digest).algorithm : "sha256" });
    try {
      await w.writeFrom(source).catch((err: unknown) => {
        source.destroy();
        throw err;
      });
      return await w.commit(expected);
    } finally {
      await w.cancel();
    }
  }

  /** Moves a verified file into place; an existing blob with that digest wins (same content by definition). */
  async adopt(tempPath: string, digest: Digest): Promise<void> {
    const final = this.localPath(digest);
    await mkdir(dirname(final), { recursive: true });
    await rename(tempPath, final);
  }

  async delete(digest: Digest): Promise<boolean> {
    try {
      await rm(this.localPath(digest));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw err;
    }
  }

  async *list(): AsyncIterable<BlobInfo> {
    for (const algorithm of ["sha256", "sha512"]) {
      const base = join(this.root, "blobs", algorithm);
      const prefixes = await readdir(base).catch(() => [] as string[]);
      for (const prefix of prefixes) {
        for (const hex of await readdir(join(base, prefix)).catch(() => [] as string[])) {
          const st = await stat(join(base, prefix, hex)).catch(() => null);
          if (st) yield { digest: `${algorithm}:${hex}` as Digest, size: st.size };
        }
      }
    }
  }

  async listWriters(): Promise<Array<{ id: string; modifiedMs: number; size: number }>> {
    const out = [];
    for (const id of await readdir(join(this.root, "ingest"))) {
      const st = await stat(join(this.root, "ingest", id)).catch(() => null);
      if (st) out.push({ id, modifiedMs: st.mtimeMs, size: st.size });
    }
    return out;
  }

  /** Hardlinks (or copies, across filesystems) a blob to a path outside the store. */
  async linkTo(digest: Digest, dest: string): Promise<void> {
    const src = this.localPath(digest);
    try {
      await link(src, dest);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
      await copyFile(src, dest);
    }
  }

  /** Marks a blob as recently used (garbage collection keeps blobs younger than its grace period). */
  async touch(digest: Digest): Promise<void> {
    const now = new Date();
    await utimes(this.localPath(digest), now, now).catch(() => undefined);
  }
}

/** Bytes gathered from a stream before one write to the disk: fewer, larger writes (a socket delivers ~64 KiB). */
const WRITE_BATCH_BYTES = 4 * 1024 * 1024;
/** Bytes held while a write is in flight before the source is paused: bounds memory whatever the sender does. */
const MAX_PENDING_BYTES = 8 * 1024 * 1024;
/**
 * Bytes written between two flushes started in the background while a large blob arrives: the disk then writes
 * while the network delivers, and the flush that commit waits for covers only the tail.
 */
const FLUSH_EVERY_BYTES = 32 * 1024 * 1024;

class FsBlobWriter implements BlobWriter {
  private committed: BlobInfo | null = null;
  private closed = false;
  /** A failed disk write: the hash may cover bytes the file lacks, so the writer takes nothing more. */
  private failure: Error | null = null;
  private unflushedBytes = 0;
  /** The background flush in flight (it never rejects: a failure is recorded as the writer's). */
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly store: FsBlobStore,
    readonly id: string,
    private readonly path: string,
    private readonly algorithm: DigestAlgorithm,
    private readonly hash: Hash,
    private bytes: number,
    private readonly file: FileHandle,
  ) {}

  get size(): number {
    return this.bytes;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.usable();
    this.hash.update(chunk);
    this.bytes += chunk.length;
    await this.append([chunk]);
  }

  /**
   * Reads the source in flowing mode (no pause per chunk), hashes each chunk as it arrives and writes batches with
   * one writev, without copying them together; the source pauses only while the disk is behind. When the source
   * fails, what it delivered is still written, so the size always matches the bytes on disk. When the disk fails,
   * reading stops and the source stays paused, undestroyed.
   */
  writeFrom(source: Readable): Promise<void> {
    this.usable();
    return new Promise<void>((resolve, reject) => {
      let batch: Uint8Array[] = [];
      let batchBytes = 0;
      let writing = false;
      let ended = false;
      let sourceError: Error | null = null;
      const settle = () => {
        source.off("data", onData);
        if (this.failure) reject(this.failure);
        else if (sourceError) reject(sourceError);
        else resolve();
      };
      const flush = () => {
        if (writing) return;
        if (batchBytes === 0 || (!ended && batchBytes < WRITE_BATCH_BYTES)) {
          if (ended && batchBytes === 0) settle();
          return;
        }
        const buffers = batch;
        batch = [];
        batchBytes = 0;
        writing = true;
        this.append(buffers).then(
          () => {
            writing = false;
            if (!ended && source.isPaused()) source.resume();
            flush();
          },
          () => {
            writing = false;
            ended = true;
            source.pause();
            settle();
          },
        );
      };
      const onData = (chunk: Uint8Array) => {
        this.hash.update(chunk);
        this.bytes += chunk.length;
        batch.push(chunk);
        batchBytes += chunk.length;
        if (!writing) flush();
        else if (batchBytes >= MAX_PENDING_BYTES) source.pause();
      };
      finished(source, { writable: false }, (err) => {
        if (ended) return;
        ended = true;
        sourceError = err ?? null;
        flush();
      });
      source.on("data", onData);
      source.resume();
    });
  }

  /**
   * Writes buffers at the end of the file. A failure poisons the writer: the hash then covers bytes the file may
   * lack, and the file may hold part of the buffers.
   */
  private async append(buffers: Uint8Array[]): Promise<void> {
    if (this.failure) throw this.failure;
    try {
      // Empty buffers (an empty blob, an empty chunk) have nothing to write; a writev of only those returns 0.
      let pending = buffers.filter((b) => b.length > 0);
      while (pending.length > 0) {
        // A full disk takes what fits and reports nothing; writing the rest then fails with the reason.
        const { bytesWritten } = await this.file.writev(pending);
        if (bytesWritten === 0) throw new Error("the disk accepted no bytes");
        pending = after(pending, bytesWritten);
        this.unflushedBytes += bytesWritten;
      }
    } catch (err) {
      this.failure = diskFailure(`writing blob upload ${this.id}`, "write", err);
      throw this.failure;
    }
    if (this.unflushedBytes >= FLUSH_EVERY_BYTES && !this.flushing) this.flushInBackground();
  }

  private flushInBackground(): void {
    this.unflushedBytes = 0;
    this.flushing = this.file.datasync().then(
      () => {
        this.flushing = null;
      },
      (err: unknown) => {
        this.flushing = null;
        this.failure ??= diskFailure(`writing blob upload ${this.id} to disk`, "sync", err);
      },
    );
  }

  private usable(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new Error(`blob write ${this.id} is closed`);
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.file.close();
  }

  async commit(expected?: { digest?: Digest; size?: number }): Promise<BlobInfo> {
    if (this.committed) return this.committed;
    if (this.failure) throw this.failure;
    const digest = `${this.algorithm}:${this.hash.copy().digest("hex")}` as Digest;
    const mismatch = this.mismatch(digest, expected);
    if (mismatch) {
      await this.close();
      throw mismatch;
    }
    // The bytes reach the disk before the name does: after a power cut, a blob's name never leads to torn bytes.
    await this.flushing;
    if (this.failure) throw this.failure;
    try {
      await this.file.datasync();
      await this.close();
    } catch (err) {
      throw diskFailure(`writing blob ${digest} to disk`, "sync", err);
    }
    await this.store.adopt(this.path, digest).catch((err: unknown) => {
      throw diskFailure(`storing blob ${digest}`, "write", err);
    });
    this.committed = { digest, size: this.bytes };
    return this.committed;
  }

  /** How the bytes written differ from what the caller expects, or null. */
  private mismatch(digest: Digest, expected?: { digest?: Digest; size?: number }): InvalidError | null {
    if (expected?.size !== undefined && expected.size !== this.bytes) {
      return new InvalidError(`blob size is ${this.bytes} bytes, expected ${expected.size}`, { size: this.bytes, expected: expected.size, reason: "size-mismatch" });
    }
    if (expected?.digest && expected.digest !== digest) {
      return new InvalidError(`blob digest is ${digest}, expected ${expected.digest}`, { digest, expected: expected.digest, reason: "digest-mismatch" });
    }
    return null;
  }

  async suspend(): Promise<void> {
    await this.close();
  }

  async cancel(): Promise<void> {
    await this.close().catch(() => undefined);
    if (!this.committed) await rm(this.path, { force: true });
  }
}

/** The buffers left after the first `n` bytes of them were written. */
function after(buffers: Uint8Array[], n: number): Uint8Array[] {
  let skip = n;
  let i = 0;
  while (i < buffers.length && skip >= buffers[i]!.length) skip -= buffers[i++]!.length;
  const rest = buffers.slice(i);
  if (skip > 0) rest[0] = rest[0]!.subarray(skip);
  return rest;
}

/**
 * A failed disk operation as the error callers handle: unavailable (retry later), with the errno for operators and
 * the stage that failed (a write, or a sync: after a failed sync, bytes written earlier may not be on disk either).
 */
function diskFailure(what: string, stage: "write" | "sync", err: unknown): UnavailableError {
  const errno = (err as NodeJS.ErrnoException).code;
  const reason = errno === "ENOSPC" || errno === "EDQUOT" ? `the disk is full (${errno})` : errno ? `the disk reported ${errno}` : (err as Error).message;
  return new UnavailableError(`${what} failed: ${reason}`, { errno: errno ?? null, stage }, { cause: err });
}
