// Blob upload sessions: a row in the metadata store (which repository, which hash) plus the bytes in the blob store's
// ingest area under the same id. Writers stay open between chunks so each byte is hashed once; an idle or restarted
// session resumes from the bytes on disk. A chunk that arrives short of its declared size is dropped whole, and so is
// one the disk failed to take (full, I/O error): the session goes back to the bytes it held before that chunk. A
// blob becomes visible only after its digest is verified, under a hold that garbage collection respects.
import type { Readable } from "node:stream";
import { InvalidError, isSlipwayError, NotFoundError, type SlipwayError } from "../core/errors.js";
import { parseDigest, type Digest, type DigestAlgorithm } from "../oci/digest.js";
import type { BlobInfo, BlobIngest, BlobWriter } from "../store/blob-store.js";
import type { RepositoryIndex, UploadRecord } from "../store/repository-index.js";
import { RegistryError } from "./errors.js";
import { incomplete } from "./request-body.js";

export type UploadBlobStore = Pick<BlobIngest, "writer"> & { listWriters(): Promise<Array<{ id: string }>> };

/** A chunk of an upload: its bytes, and the range and length the client declared for it (when it did). */
export interface Chunk {
  body: Readable;
  range?: { start: number; end: number };
  length?: number;
}

interface OpenWriter {
  writer: BlobWriter;
  algorithm: DigestAlgorithm;
  lastUsedMs: number;
}

export interface UploadSessionsOptions {
  /** Writers idle this long are closed (their bytes stay; the next chunk reopens them). */
  idleCloseMs?: number;
}

export class UploadSessions {
  private readonly open = new Map<string, OpenWriter>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly idleCloseMs: number;

  constructor(
    private readonly blobs: UploadBlobStore,
    private readonly repos: RepositoryIndex,
    options: UploadSessionsOptions = {},
  ) {
    this.idleCloseMs = options.idleCloseMs ?? 60_000;
    this.sweeper = setInterval(() => void this.closeIdle(), Math.min(this.idleCloseMs, 30_000));
    this.sweeper.unref();
  }

  async start(repo: string, algorithm: DigestAlgorithm): Promise<string> {
    const writer = await this.blobs.writer({ algorithm });
    this.repos.createUpload(writer.id, repo, algorithm);
    this.open.set(writer.id, { writer, algorithm, lastUsedMs: Date.now() });
    return writer.id;
  }

  /** Bytes received so far. */
  async status(repo: string, id: string): Promise<number> {
    return this.locked(id, async () => (await this.writerFor(this.session(repo, id))).size);
  }

  /** Appends a chunk; returns the new size. */
  async append(repo: string, id: string, chunk: Chunk): Promise<number> {
    return this.locked(id, async () => {
      const session = this.session(repo, id);
      const writer = await this.appendChunk(session, await this.writerFor(session), chunk);
      this.repos.touchUpload(id);
      return writer.size;
    });
  }

  /** Appends an optional final chunk, verifies the whole blob against `digest` and links it into the repository. */
  async finish(repo: string, id: string, digest: Digest, chunk?: Chunk): Promise<BlobInfo> {
    return this.locked(id, async () => {
      const session = this.session(repo, id);
      let writer = await this.writerFor(session, parseDigest(digest).algorithm);
      if (chunk) writer = await this.appendChunk(session, writer, chunk);
      this.repos.hold(digest, id);
      let info: BlobInfo;
      try {
        info = await writer.commit({ digest });
      } catch (err) {
        // A mismatch, or a disk that failed to store the blob, ends the session (the client must start over) and
        // leaves nothing behind.
        await writer.cancel().catch(() => undefined);
        this.open.delete(id);
        this.forget(id);
        if (isDiskFailure(err)) throw unavailable(err, "the upload was cancelled: start a new one", { id });
        throw mismatch(err, digest);
      }
      this.open.delete(id);
      this.repos.completeUpload(id, repo, info.digest, info.size);
      return info;
    });
  }

  async cancel(repo: string, id: string): Promise<void> {
    await this.locked(id, async () => {
      const session = this.session(repo, id);
      await this.drop(session.id);
    });
  }

  /** A single-request upload (POST ?digest=): no session row, the body verified and linked or nothing kept. */
  async monolithic(repo: string, digest: Digest, body: Readable, length: number | undefined): Promise<BlobInfo> {
    const writer = await this.blobs.writer({ algorithm: parseDigest(digest).algorithm });
    try {
      try {
        await writer.writeFrom(body);
      } catch (err) {
        if (isDiskFailure(err)) throw unavailable(err, "nothing was stored: send the blob again", {});
        throw incomplete("blob", writer.size, length);
      }
      if (length !== undefined && writer.size !== length) throw incomplete("blob", writer.size, length);
      this.repos.hold(digest, writer.id);
      let info: BlobInfo;
      try {
        info = await writer.commit({ digest });
      } catch (err) {
        if (isDiskFailure(err)) throw unavailable(err, "nothing was stored: send the blob again", {});
        throw mismatch(err, digest);
      }
      this.repos.completeUpload(writer.id, repo, info.digest, info.size);
      return info;
    } finally {
      await writer.cancel();
      this.repos.release(writer.id);
    }
  }

  /** Ends sessions untouched for `olderThanMs`, with their bytes. Returns their ids. */
  async expire(olderThanMs: number, now = Date.now()): Promise<string[]> {
    const expired: string[] = [];
    for (const session of this.repos.listUploads()) {
      if (now - session.updatedAt < olderThanMs) continue;
      await this.locked(session.id, () => this.drop(session.id));
      expired.push(session.id);
    }
    return expired;
  }

  /** After a restart: ends sessions whose bytes never reached the disk (a crash between the two). Returns them. */
  async recover(): Promise<string[]> {
    const onDisk = new Set((await this.blobs.listWriters()).map((w) => w.id));
    const lost = this.repos.listUploads().filter((s) => !onDisk.has(s.id) && !this.open.has(s.id));
    this.repos.tx(() => {
      for (const s of lost) {
        this.repos.deleteUpload(s.id);
        this.repos.release(s.id);
      }
    });
    return lost.map((s) => s.id);
  }

  /** Closes every open writer (bytes stay on disk, so sessions resume after a restart). */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    for (const [id, open] of [...this.open]) {
      this.open.delete(id);
      await open.writer.suspend();
    }
  }

  private session(repo: string, id: string): UploadRecord {
    const session = /^[a-z0-9]{1,64}$/.test(id) ? this.repos.upload(id) : null;
    if (!session || session.repo !== repo) {
      throw new RegistryError("BLOB_UPLOAD_UNKNOWN", `upload ${JSON.stringify(id)} is not in progress in ${repo}`, { detail: { id } });
    }
    return session;
  }

  /** The session's open writer, reopened from disk (and rehashed with `algorithm`) when needed. */
  private async writerFor(session: UploadRecord, algorithm?: DigestAlgorithm): Promise<BlobWriter> {
    const open = this.open.get(session.id);
    if (open && (algorithm === undefined || open.algorithm === algorithm)) {
      open.lastUsedMs = Date.now();
      return open.writer;
    }
    if (open) {
      this.open.delete(session.id);
      await open.writer.suspend();
    }
    return this.reopen(session, algorithm ?? (session.algorithm as DigestAlgorithm));
  }

  private async reopen(session: UploadRecord, algorithm: DigestAlgorithm, size?: number): Promise<BlobWriter> {
    let writer: BlobWriter;
    try {
      writer = await this.blobs.writer({ id: session.id, algorithm, size });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      // The row outlived its bytes (a crash between creating them, or a cleanup): the session is gone.
      this.repos.deleteUpload(session.id);
      throw new RegistryError("BLOB_UPLOAD_UNKNOWN", `upload ${session.id} lost its data; start a new upload`, { detail: { id: session.id } });
    }
    this.open.set(session.id, { writer, algorithm, lastUsedMs: Date.now() });
    return writer;
  }

  private async appendChunk(session: UploadRecord, writer: BlobWriter, chunk: Chunk): Promise<BlobWriter> {
    const start = writer.size;
    const { range, length } = chunk;
    if (range && range.start !== start) {
      throw new RegistryError("BLOB_UPLOAD_INVALID", `chunk starts at byte ${range.start} but the upload holds ${start} bytes`, {
        status: 416,
        detail: { expected: start, got: range.start },
        headers: { range: rangeHeader(start), connection: "close" },
      });
    }
    const expected = range ? range.end - range.start + 1 : length;
    if (range && length !== undefined && expected !== length) {
      throw new RegistryError("SIZE_INVALID", `Content-Range ${range.start}-${range.end} is ${expected} bytes but Content-Length is ${length}`, {
        headers: { connection: "close" },
      });
    }
    let failure: unknown = null;
    try {
      await writer.writeFrom(chunk.body);
    } catch (err) {
      failure = isDiskFailure(err) ? err : incomplete("chunk", writer.size - start, expected);
    }
    if (!failure && expected !== undefined && writer.size - start !== expected) failure = incomplete("chunk", writer.size - start, expected);
    if (!failure) return writer;
    if (isDiskFailure(failure)) {
      // The file may hold part of the chunk and the hash all of it: back to the last offset the client was told.
      // After a failed sync not even the bytes before it are known to be on disk: the session ends.
      if (failure.details.stage === "write" && (await this.rewind(session, writer, start))) {
        throw unavailable(failure, `the upload still holds its first ${start} bytes: send the rest from there`, { id: session.id, offset: start });
      }
      await this.end(session.id);
      throw unavailable(failure, "the upload could not be kept and was cancelled: start a new one", { id: session.id });
    }
    // A chunk with a declared size is all or nothing; a streamed one keeps what arrived, for the client to resume.
    if (expected !== undefined && !(await this.rewind(session, writer, start))) await this.end(session.id);
    throw failure;
  }

  /** Reopens the session at `size` bytes, dropping what came after; false when even that fails. */
  private async rewind(session: UploadRecord, writer: BlobWriter, size: number): Promise<boolean> {
    const algorithm = this.open.get(session.id)?.algorithm ?? (session.algorithm as DigestAlgorithm);
    this.open.delete(session.id);
    await writer.suspend().catch(() => undefined);
    try {
      await this.reopen(session, algorithm, size);
      return true;
    } catch {
      return false;
    }
  }

  /** Ends a session whose bytes can no longer be trusted, removing them if the disk allows. */
  private async end(id: string): Promise<void> {
    await this.drop(id).catch(() => this.forget(id));
  }

  /** Ends a session in the metadata (bytes that could not be removed are swept by garbage collection). */
  private forget(id: string): void {
    this.repos.tx(() => {
      this.repos.deleteUpload(id);
      this.repos.release(id);
    });
  }

  private async drop(id: string): Promise<void> {
    const open = this.open.get(id);
    this.open.delete(id);
    if (open) await open.writer.cancel();
    else {
      // Reopening at size 0 truncates first, so dropping a large upload does not rehash it.
      const writer = await this.blobs.writer({ id, size: 0 }).catch((err: unknown) => {
        if (err instanceof NotFoundError) return null;
        throw err;
      });
      await writer?.cancel();
    }
    this.forget(id);
  }

  private async closeIdle(): Promise<void> {
    const now = Date.now();
    for (const [id, open] of [...this.open]) {
      if (now - open.lastUsedMs < this.idleCloseMs || this.locks.has(id)) continue;
      this.open.delete(id);
      await open.writer.suspend().catch(() => undefined);
    }
  }

  /** Runs fn with the session to itself: chunks of one upload never interleave. */
  private async locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(id, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    }
  }
}

/** The Range header of an upload holding `size` bytes (distribution answers "0-0" for an empty upload). */
export function rangeHeader(size: number): string {
  return `0-${Math.max(size - 1, 0)}`;
}

/** A failure of the blob store's disk (full, I/O error), as opposed to a client that stopped sending. */
function isDiskFailure(err: unknown): err is SlipwayError {
  return isSlipwayError(err) && err.code === "unavailable";
}

/** The answer to a disk failure: 503, with what became of the upload. */
function unavailable(err: SlipwayError, outcome: string, detail: Record<string, unknown>): RegistryError {
  return new RegistryError("UNAVAILABLE", `${err.message}; ${outcome}`, { detail: { ...detail, ...err.details } });
}

function mismatch(err: unknown, digest: Digest): unknown {
  if (err instanceof InvalidError && err.details.reason === "digest-mismatch") {
    return new RegistryError("DIGEST_INVALID", `uploaded content has digest ${String(err.details.digest)}, not ${digest}`, {
      detail: { expected: digest, actual: err.details.digest },
    });
  }
  return err;
}
