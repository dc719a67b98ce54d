// Registry metadata: repositories, their links into the global blob store, manifests (with the edges to what they
// reference) and tags. Blob bytes live in the BlobStore; this records who may see them.
import type { Digest } from "../oci/digest.js";
import type { MetadataStore } from "./metadata-store.js";

export interface ManifestRecord {
  repo: string;
  digest: Digest;
  mediaType: string;
  size: number;
  artifactType: string | null;
  subject: Digest | null;
  createdAt: number;
}

export interface PutManifest {
  repo: string;
  digest: Digest;
  mediaType: string;
  size: number;
  refs: Digest[];
  artifactType?: string | null;
  subject?: Digest | null;
  tag?: string;
}

export class RepositoryIndex {
  constructor(private readonly meta: MetadataStore) {}

  private ensureRepo(repo: string): void {
    this.meta.db.prepare("INSERT OR IGNORE INTO repositories (name, created_at) VALUES (?, ?)").run(repo, Date.now());
  }

  linkBlob(repo: string, digest: Digest, size: number): void {
    this.meta.tx(() => {
      this.ensureRepo(repo);
      this.meta.db
        .prepare("INSERT OR IGNORE INTO blob_links (repo, digest, size, created_at) VALUES (?, ?, ?, ?)")
        .run(repo, digest, size, Date.now());
    });
  }

  blobLink(repo: string, digest: Digest): { size: number } | null {
    return (this.meta.db.prepare("SELECT size FROM blob_links WHERE repo = ? AND digest = ?").get(repo, digest) as { size: number } | undefined) ?? null;
  }

  unlinkBlob(repo: string, digest: Digest): boolean {
    return this.meta.db.prepare("DELETE FROM blob_links WHERE repo = ? AND digest = ?").run(repo, digest).changes > 0;
  }

  /** Records a manifest (its bytes are already in the blob store) and, optionally, points a tag at it. */
  putManifest(m: PutManifest): void {
    this.meta.tx(() => {
      this.ensureRepo(m.repo);
      const now = Date.now();
      this.meta.db
        .prepare(
          `INSERT INTO manifests (repo, digest, media_type, size, artifact_type, subject, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (repo, digest) DO NOTHING`,
        )
        .run(m.repo, m.digest, m.mediaType, m.size, m.artifactType ?? null, m.subject ?? null, now);
      const addRef = this.meta.db.prepare("INSERT OR IGNORE INTO manifest_refs (repo, digest, ref) VALUES (?, ?, ?)");
      for (const ref of m.refs) addRef.run(m.repo, m.digest, ref);
      if (m.tag !== undefined) {
        this.meta.db
          .prepare(
            `INSERT INTO tags (repo, tag, digest, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (repo, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
          )
          .run(m.repo, m.tag, m.digest, now);
      }
    });
  }

  manifest(repo: string, digest: Digest): ManifestRecord | null {
    const row = this.meta.db
      .prepare("SELECT repo, digest, media_type, size, artifact_type, subject, created_at FROM manifests WHERE repo = ? AND digest = ?")
      .get(repo, digest) as
      | { repo: string; digest: Digest; media_type: string; size: number; artifact_type: string | null; subject: Digest | null; created_at: number }
      | undefined;
    if (!row) return null;
    return {
      repo: row.repo,
      digest: row.digest,
      mediaType: row.media_type,
      size: row.size,
      artifactType: row.artifact_type,
      subject: row.subject,
      createdAt: row.created_at,
    };
  }

  resolveTag(repo: string, tag: string): Digest | null {
    const row = this.meta.db.prepare("SELECT digest FROM tags WHERE repo = ? AND tag = ?").get(repo, tag) as { digest: Digest } | undefined;
    return row?.digest ?? null;
  }

  /** Tags in lexical order, after `last` when given, at most `n`. */
  listTags(repo: string, n: number, last?: string): string[] {
    const rows = this.meta.db
      .prepare("SELECT tag FROM tags WHERE repo = ? AND tag > ? ORDER BY tag LIMIT ?")
      .all(repo, last ?? "", n) as Array<{ tag: string }>;
    return rows.map((r) => r.tag);
  }

  repositoryExists(repo: string): boolean {
    return this.meta.db.prepare("SELECT 1 FROM repositories WHERE name = ?").get(repo) !== undefined;
  }

  listRepositories(n: number, last?: string): string[] {
    const rows = this.meta.db
      .prepare("SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?")
      .all(last ?? "", n) as Array<{ name: string }>;
    return rows.map((r) => r.name);
  }
}
