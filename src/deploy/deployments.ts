// Deployments: named pointers (main, staging, …) to a version. A pointer moves only by compare-and-swap against
// the revision its writer read, and every move appends to its history (actor, time, from, to, reason).
import { ConflictError, InvalidError, NotFoundError } from "../core/errors.js";
import { checkName } from "../core/ids.js";
import type { AppStore, DeploymentRow, HistoryRow } from "../store/app-store.js";
import type { Versions } from "./versions.js";

export type MoveReason = "deploy" | "promote" | "rollback" | "config";

export interface Deployment {
  app: string;
  name: string;
  version: number | null;
  revision: number;
  updatedAt: number;
}

export interface PointerMove {
  app: string;
  deployment: string;
  /** The revision the writer read; 0 when the deployment does not exist yet. */
  expectedRevision: number;
  to: number;
  reason: MoveReason;
  actor: string;
  note?: string;
}

export interface MoveResult {
  app: string;
  deployment: string;
  from: number | null;
  to: number;
  revision: number;
  reason: MoveReason;
}

export class Deployments {
  constructor(
    private readonly store: AppStore,
    private readonly versions: Versions,
  ) {}

  get(app: string, name: string): Deployment | null {
    return this.store.deployment(app, name);
  }

  require(app: string, name: string): Deployment & { version: number } {
    this.versions.requireApp(app);
    const d = this.store.deployment(app, name);
    if (!d || d.version === null) {
      const names = this.store.listDeployments(app).map((x) => x.name);
      throw new NotFoundError(`app ${app} has no deployment ${JSON.stringify(name)}${names.length ? ` (it has ${names.join(", ")})` : ""}`, {
        app,
        deployment: name,
      });
    }
    return d as Deployment & { version: number };
  }

  list(app: string): Deployment[] {
    this.versions.requireApp(app);
    return this.store.listDeployments(app);
  }

  /** The pointer's revision as a writer reads it before deciding where to move it. */
  revisionOf(app: string, name: string): number {
    return this.store.deployment(app, name)?.revision ?? 0;
  }

  /** Moves a pointer by compare-and-swap; a stale writer gets a conflict naming what the pointer now holds. */
  move(m: PointerMove): MoveResult {
    checkName("deployment", m.deployment);
    this.versions.get(m.app, m.to);
    return this.store.meta.tx(() => {
      const before: DeploymentRow | null = this.store.deployment(m.app, m.deployment);
      const revision = this.store.casDeployment(m.app, m.deployment, m.expectedRevision, m.to);
      if (revision === null) {
        const now = this.store.deployment(m.app, m.deployment);
        throw new ConflictError(
          `deployment ${m.app}/${m.deployment} moved while this ${m.reason} was in progress: it now points at v${now?.version} (revision ${now?.revision}, expected ${m.expectedRevision}); nothing was changed`,
          { app: m.app, deployment: m.deployment, current: now?.version ?? null, revision: now?.revision ?? 0, expectedRevision: m.expectedRevision },
        );
      }
      const from = before?.version ?? null;
      const reason: MoveReason = m.reason === "promote" && from !== null && m.to < from ? "rollback" : m.reason;
      this.store.appendHistory({
        app: m.app,
        deployment: m.deployment,
        revision,
        fromVersion: from,
        toVersion: m.to,
        reason,
        actor: m.actor,
        at: Date.now(),
        note: m.note ?? null,
      });
      return { app: m.app, deployment: m.deployment, from, to: m.to, revision, reason };
    });
  }

  history(app: string, deployment?: string): HistoryRow[] {
    this.versions.requireApp(app);
    return this.store.history(app, deployment);
  }

  /**
   * Where a rollback goes: the version the deployment held before its latest forward move. Rollbacks are
   * undone moves, so walking the history as a stack makes two rollbacks in a row go back two steps.
   */
  rollbackTarget(app: string, deployment: string): number {
    const stack: number[] = [];
    for (const h of this.store.history(app, deployment)) {
      if (h.toVersion === null) continue;
      if (h.reason === "rollback") {
        while (stack.length && stack[stack.length - 1] !== h.toVersion) stack.pop();
        if (!stack.length) stack.push(h.toVersion);
      } else {
        stack.push(h.toVersion);
      }
    }
    const target = stack[stack.length - 2];
    if (target === undefined) {
      throw new InvalidError(`deployment ${app}/${deployment} has no earlier version to roll back to`, { app, deployment });
    }
    return target;
  }
}
