// Apps, their immutable versions, deployment pointers and the history of every pointer move. The deploy module
// holds the rules (compare-and-swap, rollback); this file holds the SQL.
import type { MetadataStore } from "./metadata-store.js";

export interface VersionRow {
  app: string;
  number: number;
  releaseDigest: string;
  content: string;
  createdBy: string;
  createdAt: number;
}

/** One entry of a traffic split: a version and its whole-percent weight. */
export interface TrafficEntry {
  version: number;
  weight: number;
}

export interface DeploymentRow {
  app: string;
  name: string;
  version: number | null;
  /** A weighted split of versions, or null when the pointer holds `version` alone. */
  traffic: TrafficEntry[] | null;
  revision: number;
  updatedAt: number;
}

export interface HistoryRow {
  id: number;
  app: string;
  deployment: string;
  revision: number;
  fromVersion: number | null;
  toVersion: number | null;
  fromTraffic: TrafficEntry[] | null;
  toTraffic: TrafficEntry[] | null;
  reason: string;
  actor: string;
  at: number;
  note: string | null;
}

export class AppStore {
  constructor(readonly meta: MetadataStore) {}

  ensureApp(app: string): void {
    this.meta.statement("INSERT OR IGNORE INTO apps (name, created_at) VALUES (?, ?)").run(app, Date.now());
  }

  appExists(app: string): boolean {
    return this.meta.statement("SELECT 1 FROM apps WHERE name = ?").get(app) !== undefined;
  }

  listApps(): string[] {
    return (this.meta.statement("SELECT name FROM apps ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name);
  }

  insertVersion(app: string, releaseDigest: string, content: string, createdBy: string): VersionRow {
    const row = this.meta.statement("SELECT COALESCE(MAX(number), 0) + 1 AS next FROM versions WHERE app = ?").get(app) as { next: number };
    const createdAt = Date.now();
    this.meta
      .statement("INSERT INTO versions (app, number, release_digest, content, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)")
      .run(app, row.next, releaseDigest, content, createdBy, createdAt);
    return { app, number: row.next, releaseDigest, content, createdBy, createdAt };
  }

  version(app: string, number: number): VersionRow | null {
    const r = this.meta.statement("SELECT * FROM versions WHERE app = ? AND number = ?").get(app, number) as RawVersion | undefined;
    return r ? toVersion(r) : null;
  }

  /** The newest version of an app with this content, if any. */
  versionByReleaseDigest(app: string, releaseDigest: string): VersionRow | null {
    const r = this.meta
      .statement("SELECT * FROM versions WHERE app = ? AND release_digest = ? ORDER BY number DESC LIMIT 1")
      .get(app, releaseDigest) as RawVersion | undefined;
    return r ? toVersion(r) : null;
  }

  listVersions(app: string): VersionRow[] {
    return (this.meta.statement("SELECT * FROM versions WHERE app = ? ORDER BY number").all(app) as RawVersion[]).map(toVersion);
  }

  /** The versions of an app whose content names this digest (an image, say), oldest first. */
  versionsNaming(app: string, digest: string): number[] {
    const rows = this.meta
      .statement("SELECT number FROM versions WHERE app = ? AND instr(content, ?) > 0 ORDER BY number")
      .all(app, `"${digest}"`) as Array<{ number: number }>;
    return rows.map((r) => r.number);
  }

  /** Every version's content, for garbage collection roots. */
  allVersionContents(): string[] {
    return (this.meta.statement("SELECT content FROM versions").all() as Array<{ content: string }>).map((r) => r.content);
  }

  deployment(app: string, name: string): DeploymentRow | null {
    const r = this.meta.statement("SELECT * FROM deployments WHERE app = ? AND name = ?").get(app, name) as RawDeployment | undefined;
    return r ? toDeployment(r) : null;
  }

  listDeployments(app: string): DeploymentRow[] {
    return (this.meta.statement("SELECT * FROM deployments WHERE app = ? ORDER BY name").all(app) as RawDeployment[]).map(toDeployment);
  }

  /**
   * Moves a pointer if its revision is still `expectedRevision` (0: the deployment must not exist yet). Returns
   * the new revision, or null when another writer moved it first.
   */
  casDeployment(app: string, name: string, expectedRevision: number, version: number, traffic: TrafficEntry[] | null = null): number | null {
    const now = Date.now();
    const split = traffic ? JSON.stringify(traffic) : null;
    if (expectedRevision === 0) {
      const r = this.meta
        .statement("INSERT OR IGNORE INTO deployments (app, name, version, traffic, revision, updated_at) VALUES (?, ?, ?, ?, 1, ?)")
        .run(app, name, version, split, now);
      return r.changes === 1 ? 1 : null;
    }
    const r = this.meta
      .statement("UPDATE deployments SET version = ?, traffic = ?, revision = revision + 1, updated_at = ? WHERE app = ? AND name = ? AND revision = ?")
      .run(version, split, now, app, name, expectedRevision);
    return r.changes === 1 ? expectedRevision + 1 : null;
  }

  appendHistory(h: Omit<HistoryRow, "id">): void {
    this.meta
      .statement(
        "INSERT INTO deployment_history (app, deployment, revision, from_version, to_version, from_traffic, to_traffic, reason, actor, at, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      )
      .run(h.app, h.deployment, h.revision, h.fromVersion, h.toVersion, splitJson(h.fromTraffic), splitJson(h.toTraffic), h.reason, h.actor, h.at, h.note);
  }

  history(app: string, deployment?: string): HistoryRow[] {
    const rows = (
      deployment
        ? this.meta.statement("SELECT * FROM deployment_history WHERE app = ? AND deployment = ? ORDER BY id").all(app, deployment)
        : this.meta.statement("SELECT * FROM deployment_history WHERE app = ? ORDER BY id").all(app)
    ) as RawHistory[];
    return rows.map((r) => ({
      id: r.id,
      app: r.app,
      deployment: r.deployment,
      revision: r.revision,
      fromVersion: r.from_version,
      toVersion: r.to_version,
      fromTraffic: parseSplit(r.from_traffic),
      toTraffic: parseSplit(r.to_traffic),
      reason: r.reason,
      actor: r.actor,
      at: r.at,
      note: r.note,
    }));
  }
}

interface RawVersion {
  app: string;
  number: number;
  release_digest: string;
  content: string;
  created_by: string;
  created_at: number;
}
interface RawDeployment {
  app: string;
  name: string;
  version: number | null;
  traffic: string | null;
  revision: number;
  updated_at: number;
}
interface RawHistory {
  id: number;
  app: string;
  deployment: string;
  revision: number;
  from_version: number | null;
  to_version: number | null;
  from_traffic: string | null;
  to_traffic: string | null;
  reason: string;
  actor: string;
  at: number;
  note: string | null;
}

function toVersion(r: RawVersion): VersionRow {
  return { app: r.app, number: r.number, releaseDigest: r.release_digest, content: r.content, createdBy: r.created_by, createdAt: r.created_at };
}
function toDeployment(r: RawDeployment): DeploymentRow {
  return { app: r.app, name: r.name, version: r.version, traffic: parseSplit(r.traffic), revision: r.revision, updatedAt: r.updated_at };
}
function parseSplit(text: string | null): TrafficEntry[] | null {
  return text ? (JSON.parse(text) as TrafficEntry[]) : null;
}
function splitJson(split: TrafficEntry[] | null): string | null {
  return split ? JSON.stringify(split) : null;
}
