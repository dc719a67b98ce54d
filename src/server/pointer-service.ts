// Moves deployment pointers for every reason (deploy, promote, rollback, traffic, config): warms the versions a
// move routes to when their functions keep warm containers, moves the pointer by compare-and-swap, and then tells
// the worker which versions are routed to, so that the others drain.
import { InvalidError } from "../core/errors.js";
import type { ConfigEdit, ConfigRevisionView, RuntimeConfig } from "../deploy/config.js";
import type { Deployments, MoveResult, PointerMove } from "../deploy/deployments.js";
import type { EventLog } from "../deploy/events.js";
import { checkSplit, primaryVersion, type TrafficEntry } from "../deploy/traffic.js";
import type { Version, Versions } from "../deploy/versions.js";
import type { Worker } from "../runtime/worker.js";
import { block, type FaultPlan } from "./faults.js";
import { warmTargets } from "./targets.js";

export interface FlipRequest extends Omit<PointerMove, "beforeCommit"> {
  /** More writes that must land in the move's transaction (a deploy's status). */
  inTransaction?: () => void;
}

export interface PointerServiceDeps {
  versions: Versions;
  deployments: Deployments;
  worker: Worker;
  config: RuntimeConfig;
  events: EventLog;
  faults?: FaultPlan;
}

export class PointerService {
  constructor(private readonly deps: PointerServiceDeps) {}

  /** Warms what the move routes to, then moves the pointer; the worker learns the new routing either way. */
  async flip(req: FlipRequest): Promise<MoveResult> {
    const { versions, deployments, worker, config } = this.deps;
    const routed = req.traffic && req.traffic.length > 1 ? req.traffic.map((e) => e.version) : [req.to];
    try {
      await worker.warm(routed.flatMap((v) => warmTargets(versions.get(req.app, v), config)));
      return deployments.move({
        ...req,
        beforeCommit: () => {
          req.inTransaction?.();
          block("pause-in-flip", this.deps.faults?.pauseInFlipMs);
        },
      });
    } finally {
      worker.setActive(req.app, deployments.activeVersions(req.app));
    }
  }

  /** Points a deployment at a version, or at another deployment's version (no rebuild). */
  async promote(app: string, p: { to: string; from?: string; version?: number }, actor: string): Promise<MoveResult> {
    const { deployments } = this.deps;
    if ((p.from === undefined) === (p.version === undefined)) throw new InvalidError("give exactly one of from (a deployment) or version");
    const expectedRevision = deployments.revisionOf(app, p.to);
    const source = p.from !== undefined ? deployments.require(app, p.from) : null;
    const to = source ? source.version : p.version!;
    return this.flip({
      app,
      deployment: p.to,
      expectedRevision,
      to,
      traffic: source?.traffic ?? null,
      reason: "promote",
      actor,
      note: p.from ? `from ${p.from}` : undefined,
    });
  }

  /** Moves a deployment back along its own history, or to a given version. */
  async rollback(app: string, p: { deployment: string; to?: number }, actor: string): Promise<MoveResult> {
    const { deployments } = this.deps;
    const current = deployments.require(app, p.deployment);
    const target = p.to !== undefined ? { version: p.to, traffic: null } : deployments.rollbackTarget(app, p.deployment);
    return this.flip({ app, deployment: p.deployment, expectedRevision: current.revision, to: target.version, traffic: target.traffic, reason: "rollback", actor });
  }

  /** Splits a deployment's calls between versions by whole-percent weights; one version at 100 is a plain move. */
  async traffic(app: string, deployment: string, split: TrafficEntry[], actor: string): Promise<MoveResult> {
    const { deployments, versions } = this.deps;
    // A split is set on a deployment that exists (deploy or promote makes one): a mistyped name is refused, not made.
    const current = deployments.require(app, deployment);
    const checked = checkSplit(split, (v) => versions.exists(app, v), `${app}/${deployment}`);
    return this.flip({
      app,
      deployment,
      expectedRevision: current.revision,
      to: primaryVersion(checked),
      traffic: checked.length > 1 ? checked : null,
      reason: "traffic",
      actor,
    });
  }

  /**
   * Changes runtime configuration: a config revision and a new version with the same images and code (no build),
   * then the deployment flips to it. Returns null when the change changes nothing.
   */
  async configure(
    app: string,
    deployment: string,
    edit: ConfigEdit,
    actor: string,
  ): Promise<{ config: ConfigRevisionView; version: number; moved: MoveResult } | null> {
    const { deployments, versions, config, events } = this.deps;
    const current = deployments.require(app, deployment);
    if (current.traffic) {
      throw new InvalidError(`${app}/${deployment} is splitting traffic between versions; set its traffic to one version before changing its configuration`);
    }
    const base: Version = versions.get(app, current.version);
    const made = versions.store.meta.tx(() => {
      const revision = config.revise(app, deployment, base.content.config, edit, actor);
      if (!revision) return null;
      const version = versions.create(app, { ...base.content, config: revision.revision }, { ...base.source }, actor);
      events.emit("config.changed", app, { deployment, revision: revision.revision, parent: revision.parent, changes: revision.changes, version: version.number });
      events.emit("version.created", app, { version: version.number, releaseDigest: version.releaseDigest, config: revision.revision, reason: "config" });
      return { revision: revision.revision, version };
    });
    if (!made) return null;
    const moved = await this.flip({
      app,
      deployment,
      expectedRevision: current.revision,
      to: made.version.number,
      reason: "config",
      actor,
      note: `config revision ${made.revision}`,
    });
    return { config: config.view(app, made.revision, deployment), version: made.version.number, moved };
  }

  /** At start: tell the worker what each app routes to, and warm the functions that keep warm containers. */
  reconcile(apps: string[]): void {
    const { deployments, versions, worker, config } = this.deps;
    for (const app of apps) {
      const active = deployments.activeVersions(app);
      worker.setActive(app, active);
      const targets = [...active].flatMap((v) => warmTargets(versions.get(app, v), config));
      if (targets.length) {
        void worker.warm(targets).catch((err: Error) => process.stderr.write(`slipway: warming ${app} at start failed: ${err.message}\n`));
      }
    }
  }
}
