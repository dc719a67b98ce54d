// Runtime configuration revisions: numbered per app, each the whole set of keys after one change. The deploy
// module's config.ts holds the rules (sealing, masking, merging); this file holds the SQL.
import type { MetadataStore } from "./metadata-store.js";

/** A stored entry: a plain value, or a secret sealed with the data directory's key. */
export type StoredEntry = { value: string } | { sealed: string };

export interface ConfigChange {
  key: string;
  op: "set" | "unset";
  secret: boolean;
}

export interface ConfigRevisionRow {
  app: string;
  revision: number;
  deployment: string;
  parent: number | null;
  entries: Record<string, StoredEntry>;
  changes: ConfigChange[];
  actor: string;
  at: number;
}

export class ConfigStore {
  constructor(readonly meta: MetadataStore) {}

  insert(r: Omit<ConfigRevisionRow, "revision">): ConfigRevisionRow {
    const next = this.meta.statement("SELECT COALESCE(MAX(revision), 0) + 1 AS n FROM config_revisions WHERE app = ?").get(r.app) as { n: number };
    this.meta
      .statement("INSERT INTO config_revisions (app, revision, deployment, parent, entries, changes, actor, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
      .run(r.app, next.n, r.deployment, r.parent, JSON.stringify(r.entries), JSON.stringify(r.changes), r.actor, r.at);
    return { ...r, revision: next.n };
  }

  get(app: string, revision: number): ConfigRevisionRow | null {
    const r = this.meta.statement("SELECT * FROM config_revisions WHERE app = ? AND revision = ?").get(app, revision) as Raw | undefined;
    return r ? toRow(r) : null;
  }

  list(app: string, deployment?: string): ConfigRevisionRow[] {
    const rows = (
      deployment
        ? this.meta.statement("SELECT * FROM config_revisions WHERE app = ? AND deployment = ? ORDER BY revision").all(app, deployment)
        : this.meta.statement("SELECT * FROM config_revisions WHERE app = ? ORDER BY revision").all(app)
    ) as Raw[];
    return rows.map(toRow);
  }
}

interface Raw {
  app: string;
  revision: number;
  deployment: string;
  parent: number | null;
  entries: string;
  changes: string;
  actor: string;
  at: number;
}

function toRow(r: Raw): ConfigRevisionRow {
  return {
    app: r.app,
    revision: r.revision,
    deployment: r.deployment,
    parent: r.parent,
    entries: JSON.parse(r.entries) as Record<string, StoredEntry>,
    changes: JSON.parse(r.changes) as ConfigChange[],
    actor: r.actor,
    at: r.at,
  };
}
