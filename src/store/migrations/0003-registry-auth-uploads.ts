import type { Migration } from "./index.js";

export const m0003RegistryAuthUploads: Migration = {
  id: 3,
  name: "api tokens, upload sessions, blob holds, referrer fields",
  sql: `
    -- API tokens: only a hash of the secret is kept; scopes is a JSON array of strings (see store/token-store.ts).
    CREATE TABLE api_tokens (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      secret_hash TEXT NOT NULL UNIQUE,
      scopes TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      last_used_at INTEGER,
      revoked_at INTEGER
    );
    -- Keys that sign short-lived registry tokens; kept so tokens survive a restart.
    CREATE TABLE auth_keys (
      name TEXT PRIMARY KEY,
      key BLOB NOT NULL,
      created_at INTEGER NOT NULL
    );
    -- Blob upload sessions; the bytes live in the blob store's ingest area under the same id.
    CREATE TABLE uploads (
      id TEXT PRIMARY KEY,
      repo TEXT NOT NULL,
      algorithm TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    );
    -- A hold is written before a blob is renamed into the store and removed once a link or manifest names it, so
    -- garbage collection never deletes a blob that a concurrent push is about to make visible.
    CREATE TABLE blob_holds (
      digest TEXT NOT NULL,
      holder TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      PRIMARY KEY (digest, holder)
    );
    ALTER TABLE blob_links ADD COLUMN accessed_at INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE manifests ADD COLUMN annotations TEXT;
    ALTER TABLE manifests ADD COLUMN accessed_at INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX manifest_refs_by_ref ON manifest_refs (repo, ref);
    CREATE INDEX tags_by_digest ON tags (repo, digest);
    CREATE INDEX manifests_by_digest ON manifests (digest);
    CREATE INDEX blob_holds_by_holder ON blob_holds (holder);
  `,
};
