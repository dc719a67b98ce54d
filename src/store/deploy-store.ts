// Deploy requests and their status (pending → building → warming → live | created | failed), kept so that a
// deploy can be followed after its connection is gone and a restart can tell which deploys it cut short.
import type { MetadataStore } from "./metadata-store.js";

export type DeployStatus = "pending" | "building" | "warming" | "live" | "created" | "failed";
export const UNFINISHED: DeployStatus[] = ["pending", "building", "warming"];

export interface DeployRow {
  id: string;
  app: string;
  deployment: string;
  promote: boolean;
  status: DeployStatus;
  version: number | null;
  error: string | null;
  actor: string;
  createdAt: number;
  updatedAt: number;
}

export class DeployStore {
  constructor(readonly meta: MetadataStore) {}

  insert(r: Omit<DeployRow, "updatedAt" | "status" | "version" | "error">): void {
    this.meta
      .statement("INSERT INTO deploys (id, app, deployment, promote, status, version, error, actor, created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', NULL, NULL, ?, ?, ?)")
      .run(r.id, r.app, r.deployment, r.promote ? 1 : 0, r.actor, r.createdAt, r.createdAt);
  }

  /** Moves a deploy to a new status only from an unfinished one; false when it had already ended. */
  update(id: string, status: DeployStatus, fields: { version?: number | null; error?: string | null } = {}): boolean {
    const r = this.meta
      .statement(
        `UPDATE deploys SET status = ?, version = COALESCE(?, version), error = COALESCE(?, error), updated_at = ?
         WHERE id = ? AND status IN (${UNFINISHED.map(() => "?").join(", ")})`,
      )
      .run(status, fields.version ?? null, fields.error ?? null, Date.now(), id, ...UNFINISHED);
    return r.changes === 1;
  }

  get(id: string): DeployRow | null {
    const r = this.meta.statement("SELECT * FROM deploys WHERE id = ?").get(id) as Raw | undefined;
    return r ? toRow(r) : null;
  }

  recent(app: string, limit: number): DeployRow[] {
    return (this.meta.statement("SELECT * FROM deploys WHERE app = ? ORDER BY created_at DESC, rowid DESC LIMIT ?").all(app, limit) as Raw[]).map(toRow);
  }

  unfinished(): DeployRow[] {
    return (this.meta.statement(`SELECT * FROM deploys WHERE status IN (${UNFINISHED.map(() => "?").join(", ")})`).all(...UNFINISHED) as Raw[]).map(toRow);
  }
}

interface Raw {
  id: string;
  app: string;
  deployment: string;
  promote: number;
  status: DeployStatus;
  version: number | null;
  error: string | null;
  actor: string;
  created_at: number;
  updated_at: number;
}

function toRow(r: Raw): DeployRow {
  return {
    id: r.id,
    app: r.app,
    deployment: r.deployment,
    promote: r.promote === 1,
    status: r.status,
    version: r.version,
    error: r.error,
    actor: r.actor,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}
