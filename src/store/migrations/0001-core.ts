import type { Migration } from "./index.js";

export const m0001Core: Migration = {
  id: 1,
  name: "apps, versions, deployments, build cache",
  sql: `
    CREATE TABLE apps (
      name TEXT PRIMARY KEY,
      created_at INTEGER NOT NULL
    );
    CREATE TABLE versions (
      app TEXT NOT NULL REFERENCES apps(name),
      number INTEGER NOT NULL,
      release_digest TEXT NOT NULL,
      content TEXT NOT NULL,
      created_by TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      PRIMARY KEY (app, number)
    );
    CREATE TABLE deployments (
      app TEXT NOT NULL REFERENCES apps(name),
      name TEXT NOT NULL,
      version INTEGER,
      revision INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      PRIMARY KEY (app, name)
    );
    CREATE TABLE deployment_history (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      app TEXT NOT NULL,
      deployment TEXT NOT NULL,
      revision INTEGER NOT NULL,
      from_version INTEGER,
      to_version INTEGER,
      reason TEXT NOT NULL,
      actor TEXT NOT NULL,
      at INTEGER NOT NULL,
      note TEXT
    );
    CREATE INDEX deployment_history_by_deployment ON deployment_history (app, deployment, id);
    CREATE TABLE build_cache (
      key TEXT PRIMARY KEY,
      result TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      used_at INTEGER NOT NULL
    );
    CREATE TABLE build_records (
      image TEXT NOT NULL,
      step INTEGER NOT NULL,
      key TEXT NOT NULL,
      inputs TEXT NOT NULL,
      built_at INTEGER NOT NULL,
      PRIMARY KEY (image, step)
    );
  `,
};
