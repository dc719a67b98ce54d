import type { Migration } from "./index.js";

export const m0004DeployTrafficConfigEvents: Migration = {
  id: 4,
  name: "traffic splits, config revisions, deploy status, events outbox, webhooks",
  sql: `
    -- A deployment points at one version, or at a weighted split of versions: traffic is then a JSON array of
    -- {version, weight} (whole percents summing to 100) and version names its heaviest entry.
    ALTER TABLE deployments ADD COLUMN traffic TEXT;
    ALTER TABLE deployment_history ADD COLUMN from_traffic TEXT;
    ALTER TABLE deployment_history ADD COLUMN to_traffic TEXT;
    -- Runtime configuration of an app, numbered per app. entries is the whole set of keys after the change
    -- (values, or secrets sealed with the data directory's key); a version names the revision it runs with.
    CREATE TABLE config_revisions (
      app TEXT NOT NULL REFERENCES apps(name),
      revision INTEGER NOT NULL,
      deployment TEXT NOT NULL,
      parent INTEGER,
      entries TEXT NOT NULL,
      changes TEXT NOT NULL,
      actor TEXT NOT NULL,
      at INTEGER NOT NULL,
      PRIMARY KEY (app, revision)
    );
    -- One row per deploy request, so that its status outlives the connection that started it.
    CREATE TABLE deploys (
      id TEXT PRIMARY KEY,
      app TEXT NOT NULL,
      deployment TEXT NOT NULL,
      promote INTEGER NOT NULL,
      status TEXT NOT NULL,
      version INTEGER,
      error TEXT,
      actor TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    );
    CREATE INDEX deploys_by_app ON deploys (app, created_at);
    -- The events outbox: an event is written in the transaction that made it happen, together with one pending
    -- delivery per webhook that wants it; body is the exact JSON document every delivery sends.
    CREATE TABLE events (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      type TEXT NOT NULL,
      app TEXT,
      body TEXT NOT NULL,
      at INTEGER NOT NULL
    );
    CREATE INDEX events_by_app ON events (app, seq);
    CREATE TABLE webhooks (
      id TEXT PRIMARY KEY,
      url TEXT NOT NULL,
      app TEXT,
      events TEXT NOT NULL,
      secret TEXT NOT NULL,
      created_by TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      removed_at INTEGER
    );
    CREATE TABLE webhook_deliveries (
      id TEXT PRIMARY KEY,
      webhook TEXT NOT NULL REFERENCES webhooks(id),
      event TEXT NOT NULL REFERENCES events(id),
      status TEXT NOT NULL,
      attempts INTEGER NOT NULL,
      next_at INTEGER NOT NULL,
      last_status INTEGER,
      last_error TEXT,
      created_at INTEGER NOT NULL,
      delivered_at INTEGER,
      UNIQUE (webhook, event)
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_at);
    CREATE TABLE webhook_attempts (
      delivery TEXT NOT NULL REFERENCES webhook_deliveries(id),
      attempt INTEGER NOT NULL,
      at INTEGER NOT NULL,
      status INTEGER,
      error TEXT,
      duration_ms INTEGER NOT NULL,
      PRIMARY KEY (delivery, attempt)
    );
  `,
};
