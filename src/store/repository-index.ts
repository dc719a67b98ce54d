// Registry metadata: repositories, their links into the global blob store, manifests (with the edges to what they
// reference), tags, upload sessions and blob holds. Blob bytes live in the BlobStore; this records who may see them.
//
// Invariants the registry keeps through these methods:
// - a blob link is written only after the blob's bytes are in the store (verified and renamed into place);
// - a hold names a digest that is about to become visible, so garbage collection leaves it alone;
// - a manifest is recorded only when everything it names is linked in its repository, in the same transaction.
import type { Digest } from "../oci/digest.js";
import type { MetadataStore } from "./metadata-store.js";

export interface ManifestRecord {
  repo: string;
  digest: Digest;
  mediaType: string;
  size: number;
  artifactType: string | null;
  subject: Digest | null;
  annotations: Record<string, string> | null;
  createdAt: number;
}

export interface PutManifest {
  repo: string;
  digest: Digest;
  mediaType: string;
  size: number;
  /** Every digest the manifest names (config, layers, child manifests): the edges garbage collection walks. */
  refs: Digest[];
  artifactType?: string | null;
  subject?: Digest | null;
  annotations?: Record<string, string> | null;
  tag?: string;
  tags?: string[];
}

export interface CheckedPutManifest extends PutManifest {
  /** Blobs that must be linked in the repository, with the size the manifest gives them. */
  blobs: Array<{ digest: Digest; size: number }>;
  /** Manifests that must already be in the repository (an index's children). */
  children: Array<{ digest: Digest; size: number }>;
}

export interface SizeMismatch {
  digest: Digest;
  declared: number;
  actual: number;
}

export interface UploadRecord {
  id: string;
  repo: string;
  algorithm: string;
  createdAt: number;
  updatedAt: number;
}

/** Everything garbage collection reads, taken in one transaction. */
export interface RegistrySnapshot {
  manifests: Array<{ repo: string; digest: Digest; size: number; subject: Digest | null; createdAt: number; accessedAt: number }>;
  refs: Array<{ repo: string; digest: Digest; ref: Digest }>;
  tags: Array<{ repo: string; tag: string; digest: Digest }>;
  links: Array<{ repo: string; digest: Digest; size: number; createdAt: number; accessedAt: number }>;
  holds: Array<{ digest: Digest; holder: string; createdAt: number }>;
}

type ManifestRow = {
  repo: string;
  digest: Digest;
  media_type: string;
  size: number;
  artifact_type: string | null;
  subject: Digest | null;
  annotations: string | null;
  created_at: number;
};

/** How stale an access time may get before a read refreshes it (reads stay cheap; GC's grace is far longer). */
const TOUCH_EVERY_MS = 60_000;

export class RepositoryIndex {
  constructor(private readonly meta: MetadataStore) {}

  /** Runs fn in one transaction. */
  tx<T>(fn: () => T): T {
    return this.meta.tx(fn);
  }

  private ensureRepo(repo: string): void {
    this.meta.statement("INSERT OR IGNORE INTO repositories (name, created_at) VALUES (?, ?)").run(repo, Date.now());
  }

  linkBlob(repo: string, digest: Digest, size: number): void {
    this.meta.tx(() => {
      this.ensureRepo(repo);
      const now = Date.now();
      this.meta
        .statement(
          `INSERT INTO blob_links (repo, digest, size, created_at, accessed_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (repo, digest) DO UPDATE SET accessed_at = excluded.accessed_at`,
        )
        .run(repo, digest, size, now, now);
    });
  }

  /** A repository's link to a blob: the blob's size and when a client last saw the link. */
  blobLink(repo: string, digest: Digest): { size: number; accessedAt: number } | null {
    const link = this.meta.statement("SELECT size, accessed_at AS accessedAt FROM blob_links WHERE repo = ? AND digest = ?").get(repo, digest);
    return (link as { size: number; accessedAt: number } | undefined) ?? null;
  }

  /**
   * Records that a client just saw this link, so a collection running now keeps it for the push that follows.
   * Given the access time the caller just read, a link seen recently costs no write (re-pushes HEAD every blob).
   */
  touchBlobLink(repo: string, digest: Digest, accessedAt?: number): void {
    const now = Date.now();
    if (accessedAt !== undefined && now - accessedAt < TOUCH_EVERY_MS) return;
    this.meta
      .statement("UPDATE blob_links SET accessed_at = ? WHERE repo = ? AND digest = ? AND accessed_at < ?")
      .run(now, repo, digest, now - TOUCH_EVERY_MS);
  }

  unlinkBlob(repo: string, digest: Digest): boolean {
    return this.meta.statement("DELETE FROM blob_links WHERE repo = ? AND digest = ?").run(repo, digest).changes > 0;
  }

  /** Links a blob from one repository into another, if the source really holds it. One transaction. */
  mountBlob(from: string, to: string, digest: Digest): { size: number } | null {
    return this.meta.tx(() => {
      const link = this.blobLink(from, digest);
      if (!link) return null;
      this.linkBlob(to, digest, link.size);
      return link;
    });
  }

  /** Marks a digest as about to become visible; `release(holder)` ends every hold of that holder. */
  hold(digest: Digest, holder: string): void {
    this.meta.statement("INSERT OR IGNORE INTO blob_holds (digest, holder, created_at) VALUES (?, ?, ?)").run(digest, holder, Date.now());
  }

  release(holder: string): void {
    this.meta.statement("DELETE FROM blob_holds WHERE holder = ?").run(holder);
  }

  /** Records a manifest (its bytes are already in the blob store) and points any tags at it. */
  putManifest(m: PutManifest): void {
    this.meta.tx(() => this.writeManifest(m));
  }

  /** Links an image's blobs into its repository and records its manifest: one transaction, so never half an image. */
  putImage(blobs: Array<{ digest: Digest; size: number }>, m: PutManifest): void {
    this.meta.tx(() => {
      for (const b of blobs) this.linkBlob(m.repo, b.digest, b.size);
      this.writeManifest(m);
    });
  }

  /**
   * Records a manifest only if every blob and child it names is in the repository with the size it gives, checked
   * in the same transaction as the write (so no delete or collection can slip between). Returns what is wrong.
   */
  putManifestChecked(m: CheckedPutManifest): { missing: Digest[]; wrongSize: SizeMismatch[] } {
    return this.meta.tx(() => {
      const problems = this.checkManifestRefs(m);
      if (problems.missing.length === 0 && problems.wrongSize.length === 0) this.writeManifest(m);
      return problems;
    });
  }

  /** What putManifestChecked would refuse, without writing anything. */
  checkManifestRefs(m: Pick<CheckedPutManifest, "repo" | "blobs" | "children">): { missing: Digest[]; wrongSize: SizeMismatch[] } {
    const missing: Digest[] = [];
    const wrongSize: SizeMismatch[] = [];
    const link = this.meta.statement("SELECT size FROM blob_links WHERE repo = ? AND digest = ?");
    const manifest = this.meta.statement("SELECT size FROM manifests WHERE repo = ? AND digest = ?");
    const check = (query: typeof link, ref: { digest: Digest; size: number }) => {
      const row = query.get(m.repo, ref.digest) as { size: number } | undefined;
      if (!row) missing.push(ref.digest);
      else if (row.size !== ref.size) wrongSize.push({ digest: ref.digest, declared: ref.size, actual: row.size });
    };
    for (const ref of m.blobs) check(link, ref);
    for (const ref of m.children) check(manifest, ref);
    return { missing, wrongSize };
  }

  private writeManifest(m: PutManifest): void {
    this.ensureRepo(m.repo);
    const now = Date.now();
    this.meta
      .statement(
        `INSERT INTO manifests (repo, digest, media_type, size, artifact_type, subject, annotations, created_at, accessed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (repo, digest) DO UPDATE SET accessed_at = excluded.accessed_at`,
      )
      .run(
        m.repo,
        m.digest,
        m.mediaType,
        m.size,
        m.artifactType ?? null,
        m.subject ?? null,
        m.annotations && Object.keys(m.annotations).length ? JSON.stringify(m.annotations) : null,
        now,
        now,
      );
    const addRef = this.meta.statement("INSERT OR IGNORE INTO manifest_refs (repo, digest, ref) VALUES (?, ?, ?)");
    for (const ref of m.refs) addRef.run(m.repo, m.digest, ref);
    const tags = [...(m.tags ?? []), ...(m.tag !== undefined ? [m.tag] : [])];
    const setTag = this.meta.statement(
      `INSERT INTO tags (repo, tag, digest, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (repo, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
    );
    for (const tag of tags) setTag.run(m.repo, tag, m.digest, now);
  }

  manifest(repo: string, digest: Digest): ManifestRecord | null {
    const row = this.meta
      .statement("SELECT repo, digest, media_type, size, artifact_type, subject, annotations, created_at FROM manifests WHERE repo = ? AND digest = ?")
      .get(repo, digest) as ManifestRow | undefined;
    return row ? toRecord(row) : null;
  }

  touchManifest(repo: string, digest: Digest): void {
    const now = Date.now();
    this.meta
      .statement("UPDATE manifests SET accessed_at = ? WHERE repo = ? AND digest = ? AND accessed_at < ?")
      .run(now, repo, digest, now - TOUCH_EVERY_MS);
  }

  /** Removes a manifest, the tags that point at it and its edges. False when the repository does not hold it. */
  deleteManifest(repo: string, digest: Digest): boolean {
    return this.meta.tx(() => {
      const gone = this.meta.statement("DELETE FROM manifests WHERE repo = ? AND digest = ?").run(repo, digest).changes > 0;
      if (!gone) return false;
      this.meta.statement("DELETE FROM tags WHERE repo = ? AND digest = ?").run(repo, digest);
      this.meta.statement("DELETE FROM manifest_refs WHERE repo = ? AND digest = ?").run(repo, digest);
      return true;
    });
  }

  deleteTag(repo: string, tag: string): boolean {
    return this.meta.statement("DELETE FROM tags WHERE repo = ? AND tag = ?").run(repo, tag).changes > 0;
  }

  resolveTag(repo: string, tag: string): Digest | null {
    const row = this.meta.statement("SELECT digest FROM tags WHERE repo = ? AND tag = ?").get(repo, tag) as { digest: Digest } | undefined;
    return row?.digest ?? null;
  }

  /** Tags in lexical (byte) order, after `last` when given, at most `n`. */
  listTags(repo: string, n: number, last?: string): string[] {
    const rows = this.meta
      .statement("SELECT tag FROM tags WHERE repo = ? AND tag > ? ORDER BY tag LIMIT ?")
      .all(repo, last ?? "", n) as Array<{ tag: string }>;
    return rows.map((r) => r.tag);
  }

  /** Manifests in a repository whose subject is `subject`, in digest order after `last`, at most `n`. */
  referrers(repo: string, subject: Digest, options: { artifactType?: string; n: number; last?: string }): ManifestRecord[] {
    const filter = options.artifactType !== undefined ? " AND artifact_type = ?" : "";
    const sql =
      "SELECT repo, digest, media_type, size, artifact_type, subject, annotations, created_at FROM manifests " +
      `WHERE repo = ? AND subject = ? AND digest > ?${filter} ORDER BY digest LIMIT ?`;
    const args: unknown[] = [repo, subject, options.last ?? ""];
    if (options.artifactType !== undefined) args.push(options.artifactType);
    args.push(options.n);
    return (this.meta.statement(sql).all(...args) as ManifestRow[]).map(toRecord);
  }

  repositoryExists(repo: string): boolean {
    return this.meta.statement("SELECT 1 FROM repositories WHERE name = ?").get(repo) !== undefined;
  }

  listRepositories(n: number, last?: string): string[] {
    const rows = this.meta
      .statement("SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?")
      .all(last ?? "", n) as Array<{ name: string }>;
    return rows.map((r) => r.name);
  }

  createUpload(id: string, repo: string, algorithm: string): void {
    this.meta.tx(() => {
      this.ensureRepo(repo);
      const now = Date.now();
      this.meta.statement("INSERT INTO uploads (id, repo, algorithm, created_at, updated_at) VALUES (?, ?, ?, ?, ?)").run(id, repo, algorithm, now, now);
    });
  }

  upload(id: string): UploadRecord | null {
    const row = this.meta.statement("SELECT id, repo, algorithm, created_at, updated_at FROM uploads WHERE id = ?").get(id) as
      | { id: string; repo: string; algorithm: string; created_at: number; updated_at: number }
      | undefined;
    return row ? { id: row.id, repo: row.repo, algorithm: row.algorithm, createdAt: row.created_at, updatedAt: row.updated_at } : null;
  }

  touchUpload(id: string): void {
    this.meta.statement("UPDATE uploads SET updated_at = ? WHERE id = ?").run(Date.now(), id);
  }

  deleteUpload(id: string): boolean {
    return this.meta.statement("DELETE FROM uploads WHERE id = ?").run(id).changes > 0;
  }

  listUploads(): UploadRecord[] {
    const rows = this.meta.statement("SELECT id, repo, algorithm, created_at, updated_at FROM uploads").all() as Array<{
      id: string;
      repo: string;
      algorithm: string;
      created_at: number;
      updated_at: number;
    }>;
    return rows.map((row) => ({ id: row.id, repo: row.repo, algorithm: row.algorithm, createdAt: row.created_at, updatedAt: row.updated_at }));
  }

  snapshot(): RegistrySnapshot {
    return {
      manifests: this.meta
        .statement("SELECT repo, digest, size, subject, created_at AS createdAt, accessed_at AS accessedAt FROM manifests")
        .all() as RegistrySnapshot["manifests"],
      refs: this.meta.statement("SELECT repo, digest, ref FROM manifest_refs").all() as RegistrySnapshot["refs"],
      tags: this.meta.statement("SELECT repo, tag, digest FROM tags").all() as RegistrySnapshot["tags"],
      links: this.meta
        .statement("SELECT repo, digest, size, created_at AS createdAt, accessed_at AS accessedAt FROM blob_links")
        .all() as RegistrySnapshot["links"],
      holds: this.meta.statement("SELECT digest, holder, created_at AS createdAt FROM blob_holds").all() as RegistrySnapshot["holds"],
    };
  }

  /** Deletes manifests (with their edges), links and holds that garbage collection found unreachable. */
  removeUnreachable(plan: { manifests: Array<{ repo: string; digest: Digest }>; links: Array<{ repo: string; digest: Digest }>; holders: string[] }): void {
    this.meta.tx(() => {
      const manifest = this.meta.statement("DELETE FROM manifests WHERE repo = ? AND digest = ?");
      const refs = this.meta.statement("DELETE FROM manifest_refs WHERE repo = ? AND digest = ?");
      const link = this.meta.statement("DELETE FROM blob_links WHERE repo = ? AND digest = ?");
      const hold = this.meta.statement("DELETE FROM blob_holds WHERE holder = ?");
      for (const m of plan.manifests) {
        manifest.run(m.repo, m.digest);
        refs.run(m.repo, m.digest);
      }
      for (const l of plan.links) link.run(l.repo, l.digest);
      for (const h of plan.holders) hold.run(h);
    });
  }

  /** Whether any repository links, records or holds a digest (the check before a blob's bytes are deleted). */
  isReferenced(digest: Digest): boolean {
    return (
      this.meta.statement("SELECT 1 FROM blob_links WHERE digest = ? LIMIT 1").get(digest) !== undefined ||
      this.meta.statement("SELECT 1 FROM manifests WHERE digest = ? LIMIT 1").get(digest) !== undefined ||
      this.meta.statement("SELECT 1 FROM blob_holds WHERE digest = ? LIMIT 1").get(digest) !== undefined
    );
  }

  /** Finishes an upload: links the committed blob, ends the session and drops its hold, together. */
  completeUpload(id: string, repo: string, digest: Digest, size: number): void {
    this.meta.tx(() => {
      this.linkBlob(repo, digest, size);
      this.deleteUpload(id);
      this.release(id);
    });
  }
}

function toRecord(row: ManifestRow): ManifestRecord {
  return {
    repo: row.repo,
    digest: row.digest,
    mediaType: row.media_type,
    size: row.size,
    artifactType: row.artifact_type,
    subject: row.subject,
    annotations: row.annotations ? (JSON.parse(row.annotations) as Record<string, string>) : null,
    createdAt: row.created_at,
  };
}
