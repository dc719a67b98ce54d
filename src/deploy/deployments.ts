// Deployments: named pointers (main, staging, …) to a version or to a weighted split of versions. A pointer moves
// only by compare-and-swap against the revision its writer read, and every move appends to its history (actor,
// time, from, to, reason) and writes its events to the outbox in the same transaction.
import { ConflictError, InvalidError, NotFoundError } from "../core/errors.js";
import { checkName } from "../core/ids.js";
import type { AppStore, DeploymentRow, HistoryRow } from "../store/app-store.js";
import type { EventLog } from "./events.js";
import { describeSplit, primaryVersion, type TrafficEntry } from "./traffic.js";
import type { Versions } from "./versions.js";

export type MoveReason = "deploy" | "promote" | "rollback" | "config" | "traffic";

/** A named pointer: one version, or a weighted split of versions; `revision` counts its moves. */
export type Deployment = DeploymentRow;

/** Where a pointer stands: one version, or a split whose heaviest entry is `version`. */
export interface PointerState {
  version: number;
  traffic: TrafficEntry[] | null;
}

export interface PointerMove {
  app: string;
  deployment: string;
  /** The revision the writer read; 0 when the deployment does not exist yet. */
  expectedRevision: number;
  to: number;
  /** A checked split (see traffic.ts); `to` must be its primary version. */
  traffic?: TrafficEntry[] | null;
  reason: MoveReason;
  actor: string;
  note?: string;
  /** Runs inside the transaction after the move is written and before it commits (fault injection). */
  beforeCommit?: () => void;
}

export interface MoveResult {
  app: string;
  deployment: string;
  from: number | null;
  to: number;
  fromTraffic: TrafficEntry[] | null;
  traffic: TrafficEntry[] | null;
  revision: number;
  reason: MoveReason;
}

export class Deployments {
  constructor(
    private readonly store: AppStore,
    private readonly versions: Versions,
    private readonly events: EventLog,
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

  /** Every version some deployment of the app routes calls to. */
  activeVersions(app: string): Set<number> {
    const active = new Set<number>();
    for (const d of this.store.listDeployments(app)) {
      if (d.traffic) d.traffic.forEach((e) => active.add(e.version));
      else if (d.version !== null) active.add(d.version);
    }
    return active;
  }

  /** Moves a pointer by compare-and-swap; a stale writer gets a conflict naming what the pointer now holds. */
  move(m: PointerMove): MoveResult {
    checkName("deployment", m.deployment);
    this.versions.get(m.app, m.to);
    const traffic = m.traffic && m.traffic.length > 1 ? m.traffic : null;
    if (traffic && primaryVersion(traffic) !== m.to) throw new InvalidError(`a split's pointer version must be its heaviest entry (v${primaryVersion(traffic)})`);
    return this.store.meta.tx(() => {
      const before: DeploymentRow | null = this.store.deployment(m.app, m.deployment);
      const revision = this.store.casDeployment(m.app, m.deployment, m.expectedRevision, m.to, traffic);
      if (revision === null) {
        const now = this.store.deployment(m.app, m.deployment);
        const holds = now?.traffic ? describeSplit(now.traffic) : `v${now?.version}`;
        throw new ConflictError(
          `deployment ${m.app}/${m.deployment} moved while this ${m.reason} was in progress: it now points at ${holds} (revision ${now?.revision}, expected ${m.expectedRevision}); nothing was changed`,
          {
            app: m.app,
            deployment: m.deployment,
            current: now?.version ?? null,
            traffic: now?.traffic ?? null,
            revision: now?.revision ?? 0,
            expectedRevision: m.expectedRevision,
          },
        );
      }
      const from = before?.version ?? null;
      const fromTraffic = before?.traffic ?? null;
      const reason: MoveReason = m.reason === "promote" && from !== null && !traffic && m.to < from ? "rollback" : m.reason;
      const at = Date.now();
      this.store.appendHistory({
        app: m.app,
        deployment: m.deployment,
        revision,
        fromVersion: from,
        toVersion: m.to,
        fromTraffic,
        toTraffic: traffic,
        reason,
        actor: m.actor,
        at,
        note: m.note ?? null,
      });
      const data = { deployment: m.deployment, from, to: m.to, fromTraffic, traffic, revision, reason, actor: m.actor, note: m.note ?? null };
      this.events.emit("deployment.moved", m.app, data);
      if (reason === "rollback") this.events.emit("deployment.rolled_back", m.app, data);
      this.events.emit("deployment.live", m.app, { deployment: m.deployment, version: m.to, traffic, revision });
      m.beforeCommit?.();
      return { app: m.app, deployment: m.deployment, from, to: m.to, fromTraffic, traffic, revision, reason };
    });
  }

  history(app: string, deployment?: string): HistoryRow[] {
    this.versions.requireApp(app);
    return this.store.history(app, deployment);
  }

  /**
   * Where a rollback goes: the state (a version, or a split) the deployment held before its latest forward move.
   * Rollbacks are undone moves, so walking the history as a stack makes two rollbacks in a row go back two steps;
   * a rollback to a state not on the stack (`--to` an older version) starts the stack afresh.
   */
  rollbackTarget(app: string, deployment: string): PointerState {
    const stack: PointerState[] = [];
    const same = (a: PointerState | undefined, b: PointerState) => a !== undefined && stateKey(a) === stateKey(b);
    for (const h of this.store.history(app, deployment)) {
      if (h.toVersion === null) continue;
      const state: PointerState = { version: h.toVersion, traffic: h.toTraffic };
      if (h.reason === "rollback") {
        if (stack.some((s) => same(s, state))) while (stack.length && !same(stack[stack.length - 1], state)) stack.pop();
        else stack.splice(0, stack.length, state);
      } else if (!same(stack[stack.length - 1], state)) {
        stack.push(state);
      }
    }
    const target = stack[stack.length - 2];
    if (target === undefined) {
      throw new InvalidError(`deployment ${app}/${deployment} has no earlier version to roll back to`, { app, deployment });
    }
    return target;
  }
}

function stateKey(s: PointerState): string {
  return s.traffic ? describeSplit(s.traffic) : `v${s.version}`;
}
