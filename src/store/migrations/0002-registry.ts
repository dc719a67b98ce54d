import type { Migration } from "./index.js";

export const m0002Registry: Migration = {
  id: 2,
  name: "registry repositories, links, tags",
  sql: `
    CREATE TABLE repositories (
      name TEXT PRIMARY KEY,
      created_at INTEGER NOT NULL
    );
    -- A repository holds links into the global blob store; access to a blob goes through its repository.
    CREATE TABLE blob_links (
      repo TEXT NOT NULL REFERENCES repositories(name),
      digest TEXT NOT NULL,
      size INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      PRIMARY KEY (repo, digest)
    );
    CREATE INDEX blob_links_by_digest ON blob_links (digest);
    CREATE TABLE manifests (
      repo TEXT NOT NULL REFERENCES repositories(name),
      digest TEXT NOT NULL,
      media_type TEXT NOT NULL,
      size INTEGER NOT NULL,
      artifact_type TEXT,
      subject TEXT,
      created_at INTEGER NOT NULL,
      PRIMARY KEY (repo, digest)
    );
    CREATE INDEX manifests_by_subject ON manifests (repo, subject);
    -- What each manifest references (config, layers, child manifests): the edges garbage collection walks.
    CREATE TABLE manifest_refs (
      repo TEXT NOT NULL,
      digest TEXT NOT NULL,
      ref TEXT NOT NULL,
      PRIMARY KEY (repo, digest, ref)
    );
    CREATE TABLE tags (
      repo TEXT NOT NULL REFERENCES repositories(name),
      tag TEXT NOT NULL,
      digest TEXT NOT NULL,
      updated_at INTEGER NOT NULL,
      PRIMARY KEY (repo, tag)
    );
  `,
};
