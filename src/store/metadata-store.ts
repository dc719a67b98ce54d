// The metadata store: one SQLite database in WAL mode. Schema changes are numbered migrations (migrations/),
// applied in order inside a transaction at open. Domain stores (app-store, cache-index, repository-index, …)
// hold the SQL of their own tables and take this as their one dependency.
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { MIGRATIONS } from "./migrations/index.js";

export type Db = Database.Database;

export class MetadataStore {
  private readonly statements = new Map<string, Database.Statement>();

  private constructor(readonly db: Db) {}

  /**
   * The prepared statement for `sql`, compiled on first use and kept: compiling costs more than running a point
   * query, and the registry runs several per request. Not for statements iterated while another use may run.
   */
  statement(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  static open(path: string): MetadataStore {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("busy_timeout = 5000");
    db.pragma("foreign_keys = ON");
    migrate(db);
    return new MetadataStore(db);
  }

  /** Runs fn in one transaction: everything it writes lands together or not at all. */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  close(): void {
    this.db.close();
  }
}

function migrate(db: Db): void {
  db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
  const applied = new Set((db.prepare("SELECT id FROM schema_migrations").all() as Array<{ id: number }>).map((r) => r.id));
  for (const m of MIGRATIONS) {
    if (applied.has(m.id)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare("INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)").run(m.id, m.name, Date.now());
    }).immediate();
  }
}
