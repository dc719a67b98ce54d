// Garbage collection of the registry: mark, then sweep, while pushes go on.
//
// Mark (one transaction, so it sees one consistent state): live manifests are those a tag points at, those whose
// digest another module still uses (`extraRoots`: versions and deployments name image digests), those pushed or
// read within the grace period (a push in progress uploads children before the index that names them), and,
// transitively, everything a live manifest names in its repository plus every referrer of a live manifest. A blob
// link is live when a live manifest names it or it was created or read within the grace period (a client that
// just saw the blob with HEAD is about to name it in a manifest). The rest is deleted in the same transaction.
//
// Sweep (per blob, each in its own short transaction): a blob's bytes go only when no link, manifest or hold names
// the digest at that moment, it is not a root, and the file is older than the grace period. Holds are written
// before a blob is renamed into the store, so a concurrent upload is never swept. Upload sessions untouched for
// `uploadTtlMs` are ended, and ingest files no session owns are removed once older than the grace period.
//
// Killed at any point, the store is consistent: the metadata transaction lands whole or not at all, and a blob file
// is only deleted after nothing refers to it.
import { rmSync, statSync } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import type { Digest } from "../oci/digest.js";
import { FsBlobStore, type BlobInfo, type BlobWriter } from "../store/blob-store.js";
import { MetadataStore } from "../store/metadata-store.js";
import { RepositoryIndex, type RegistrySnapshot } from "../store/repository-index.js";
import { UploadSessions } from "./uploads.js";

export interface GcBlobStore {
  list(): AsyncIterable<BlobInfo>;
  localPath(digest: Digest): string;
  listWriters(): Promise<Array<{ id: string; modifiedMs: number; size: number }>>;
  writer(options: { id: string; size: number }): Promise<BlobWriter>;
}

export interface GcDeps {
  blobs: GcBlobStore;
  repos: RepositoryIndex;
  uploads: UploadSessions;
  /** Digests other modules still use: manifests of versions and deployments, and any blob they keep. */
  extraRoots?: () => Iterable<Digest>;
}

export interface GcOptions {
  dryRun?: boolean;
  /** Anything newer than this is kept, whatever references it (default 1 hour). */
  gracePeriodMs?: number;
  /** Upload sessions untouched this long are ended (default 24 hours). */
  uploadTtlMs?: number;
  now?: number;
}

export interface GcReport {
  dryRun: boolean;
  manifests: Array<{ repo: string; digest: Digest; size: number }>;
  links: Array<{ repo: string; digest: Digest }>;
  blobs: Array<{ digest: Digest; size: number }>;
  uploads: Array<{ id: string; size: number }>;
  /** Bytes freed (or that would be): blobs, plus the data of ended uploads and orphaned ingest files. */
  bytes: number;
  durationMs: number;
}

export const DEFAULT_GRACE_MS = 60 * 60 * 1000;
export const DEFAULT_UPLOAD_TTL_MS = 24 * 60 * 60 * 1000;

const key = (repo: string, digest: string) => `${repo}\n${digest}`;

export interface CollectionPlan {
  manifests: Array<{ repo: string; digest: Digest; size: number }>;
  links: Array<{ repo: string; digest: Digest }>;
  holders: string[];
  /** Digests that stay named by something after the plan is applied. */
  referenced: Set<string>;
}

/** The mark phase as a pure function of one snapshot: what is unreachable. */
export function planCollection(snap: RegistrySnapshot, roots: ReadonlySet<string>, now: number, graceMs: number): CollectionPlan {
  const recent = (t: { createdAt: number; accessedAt: number }) => now - Math.max(t.createdAt, t.accessedAt) < graceMs;
  const manifests = new Map(snap.manifests.map((m) => [key(m.repo, m.digest), m]));
  const refsOf = new Map<string, Digest[]>();
  for (const r of snap.refs) {
    const k = key(r.repo, r.digest);
    refsOf.set(k, [...(refsOf.get(k) ?? []), r.ref]);
  }
  const referrersOf = new Map<string, string[]>();
  for (const m of snap.manifests) {
    if (!m.subject) continue;
    const k = key(m.repo, m.subject);
    referrersOf.set(k, [...(referrersOf.get(k) ?? []), key(m.repo, m.digest)]);
  }

  const live = new Set<string>();
  const queue: string[] = [];
  const mark = (k: string) => {
    if (manifests.has(k) && !live.has(k)) {
      live.add(k);
      queue.push(k);
    }
  };
  for (const t of snap.tags) mark(key(t.repo, t.digest));
  for (const m of snap.manifests) if (roots.has(m.digest) || recent(m)) mark(key(m.repo, m.digest));
  const liveLinks = new Set<string>();
  while (queue.length > 0) {
    const k = queue.pop()!;
    const repo = k.slice(0, k.indexOf("\n"));
    for (const ref of refsOf.get(k) ?? []) {
      liveLinks.add(key(repo, ref));
      mark(key(repo, ref));
    }
    for (const referrer of referrersOf.get(k) ?? []) mark(referrer);
  }

  const plan: CollectionPlan = { manifests: [], links: [], holders: [], referenced: new Set() };
  for (const m of snap.manifests) {
    if (live.has(key(m.repo, m.digest))) plan.referenced.add(m.digest);
    else plan.manifests.push({ repo: m.repo, digest: m.digest, size: m.size });
  }
  for (const l of snap.links) {
    if (liveLinks.has(key(l.repo, l.digest)) || recent(l)) plan.referenced.add(l.digest);
    else plan.links.push({ repo: l.repo, digest: l.digest });
  }
  for (const h of snap.holds) {
    // A hold outlives its writer only when that writer died; after the grace period it protects nothing.
    if (now - h.createdAt < graceMs) plan.referenced.add(h.digest);
    else plan.holders.push(h.holder);
  }
  return plan;
}

export class GarbageCollector {
  private running: Promise<GcReport> | null = null;

  constructor(private readonly deps: GcDeps) {}

  /** Runs one collection; a second call while one runs waits for it and gets its report. */
  collect(options: GcOptions = {}): Promise<GcReport> {
    this.running ??= this.run(options).finally(() => (this.running = null));
    return this.running;
  }

  private async run(options: GcOptions): Promise<GcReport> {
    const started = performance.now();
    const { blobs, repos, uploads } = this.deps;
    const dryRun = options.dryRun ?? false;
    const graceMs = options.gracePeriodMs ?? DEFAULT_GRACE_MS;
    const uploadTtlMs = options.uploadTtlMs ?? DEFAULT_UPLOAD_TTL_MS;
    const now = options.now ?? Date.now();
    const roots = new Set<string>(this.deps.extraRoots?.() ?? []);

    const plan = repos.tx(() => {
      const p = planCollection(repos.snapshot(), roots, now, graceMs);
      if (!dryRun) repos.removeUnreachable(p);
      return p;
    });

    const report: GcReport = { dryRun, manifests: plan.manifests, links: plan.links, blobs: [], uploads: [], bytes: 0, durationMs: 0 };
    for await (const blob of blobs.list()) {
      if (plan.referenced.has(blob.digest) || roots.has(blob.digest)) continue;
      const path = blobs.localPath(blob.digest);
      const st = await stat(path).catch(() => null);
      if (!st || now - st.mtimeMs < graceMs) continue;
      if (!dryRun && !this.deleteIfUnreferenced(blob.digest, path, now, graceMs)) continue;
      report.blobs.push({ digest: blob.digest, size: blob.size });
      report.bytes += blob.size;
    }

    const writers = new Map((await blobs.listWriters()).map((w) => [w.id, w]));
    const sessions = new Set<string>();
    for (const session of repos.listUploads()) {
      if (now - session.updatedAt < uploadTtlMs) sessions.add(session.id);
    }
    const stale = repos.listUploads().filter((s) => !sessions.has(s.id));
    if (!dryRun) await uploads.expire(uploadTtlMs, now);
    for (const s of stale) {
      const size = writers.get(s.id)?.size ?? 0;
      report.uploads.push({ id: s.id, size });
      report.bytes += size;
      writers.delete(s.id);
    }
    for (const w of writers.values()) {
      // Ingest files without a session: a single-request upload or another module's write in progress (fresh), or
      // the leftovers of a crash (old).
      if (sessions.has(w.id) || repos.upload(w.id) || now - w.modifiedMs < graceMs) continue;
      if (!dryRun) await (await blobs.writer({ id: w.id, size: 0 })).cancel();
      report.uploads.push({ id: w.id, size: w.size });
      report.bytes += w.size;
    }
    report.durationMs = Math.round(performance.now() - started);
    return report;
  }

  /** Deletes a blob's file if, inside one transaction, nothing names it and it is still old. */
  private deleteIfUnreferenced(digest: Digest, path: string, now: number, graceMs: number): boolean {
    const { repos } = this.deps;
    return repos.tx(() => {
      if (repos.isReferenced(digest)) return false;
      // The builder and other writers add blobs without links; a rename just now gives the file a fresh mtime.
      const st = statSync(path, { throwIfNoEntry: false });
      if (!st || now - st.mtimeMs < graceMs) return false;
      rmSync(path);
      return true;
    });
  }
}

export interface RunGcOptions extends GcOptions {
  dataDir: string;
  /** Given the opened metadata store, the digests other modules still use (see GcDeps.extraRoots). */
  extraRoots?: (meta: MetadataStore, blobs: FsBlobStore) => Iterable<Digest> | Promise<Iterable<Digest>>;
}

/**
 * One collection over a data directory, from outside the server (`slipway gc`). Safe while a server pushes into
 * the same directory: the decisions are made in SQLite transactions and respect holds and the grace period.
 */
export async function runGc(options: RunGcOptions): Promise<GcReport> {
  const meta = MetadataStore.open(join(options.dataDir, "slipway.db"));
  try {
    const blobs = await FsBlobStore.open(options.dataDir);
    const repos = new RepositoryIndex(meta);
    const uploads = new UploadSessions(blobs, repos);
    try {
      const roots = options.extraRoots ? [...(await options.extraRoots(meta, blobs))] : [];
      return await new GarbageCollector({ blobs, repos, uploads, extraRoots: () => roots }).collect(options);
    } finally {
      await uploads.close();
    }
  } finally {
    meta.close();
  }
}
