// The deploy controller: build every image (cached), check the code bundle, make a version when anything changed,
// warm it and run the smoke input, and flip the deployment's pointer by compare-and-swap against the revision read
// when the deploy began. Each deploy has a persisted status (pending → building → warming → live, created for
// --no-promote, or failed) and writes its events to the outbox as it goes.
import { z } from "zod";
import { FailedError, InvalidError, NotFoundError, isSlipwayError } from "../core/errors.js";
import { checkName, newId } from "../core/ids.js";
import { codeBundleSchema, deployRequestSchema, parseWith } from "../core/schemas.js";
import type { Deployments, MoveResult } from "../deploy/deployments.js";
import type { EventLog } from "../deploy/events.js";
import { releaseDigest, type FunctionRelease, type Version, type VersionContent, type Versions } from "../deploy/versions.js";
import type { FsBlobStore } from "../store/blob-store.js";
import type { DeployRow, DeployStore } from "../store/deploy-store.js";
import { pause, type FaultPlan } from "./faults.js";
import type { InvokeService } from "./invoke-service.js";
import type { BuildEventOf, BuildService, ImageBuilds } from "./build-service.js";
import type { PointerService } from "./pointer-service.js";

export type DeployEvent =
  | { type: "accepted"; deploy: string }
  | BuildEventOf
  | { type: "message"; text: string };

export interface DeployOutcome {
  /** The deploy's id, for the status API. */
  id: string;
  app: string;
  deployment: string;
  /** The version the deploy made, or the one that already had this content. */
  version: number;
  releaseDigest: string;
  created: boolean;
  moved: MoveResult | null;
  status: DeployRow["status"];
  smoke: { function: string; output: unknown; durationMs: number } | null;
  images: ImageBuilds;
  durationMs: number;
}

const requestSchema = deployRequestSchema.extend({
  /** Call the new version with this input before flipping; a failure leaves the pointer where it was. */
  smoke: z.object({ function: z.string().optional(), input: z.unknown() }).optional(),
});
type Request = z.infer<typeof requestSchema>;

export interface DeployServiceDeps {
  buildService: BuildService;
  versions: Versions;
  deployments: Deployments;
  blobs: FsBlobStore;
  deploys: DeployStore;
  events: EventLog;
  pointers: PointerService;
  invoke: InvokeService;
  faults?: FaultPlan;
}

export class DeployService {
  constructor(private readonly deps: DeployServiceDeps) {}

  /**
   * Checks a deploy request and starts it. The deploy runs to its end whether or not anyone is still listening;
   * its status stays readable by id.
   */
  start(raw: unknown, actor: string, onEvent: (e: DeployEvent) => void = () => undefined): { id: string; done: Promise<DeployOutcome> } {
    const req: Request = parseWith(requestSchema, raw, "deploy request");
    checkName("app", req.app);
    checkName("deployment", req.deployment);
    for (const name of Object.keys(req.functions)) checkName("function", name);
    if (Object.keys(req.functions).length === 0) throw new InvalidError(`app ${req.app} defines no functions`);
    if (req.smoke?.function !== undefined && !req.functions[req.smoke.function]) {
      throw new InvalidError(`--smoke-function ${req.smoke.function}: app ${req.app} has no such function (it has ${Object.keys(req.functions).join(", ")})`);
    }
    if (req.smoke && req.smoke.function === undefined && Object.keys(req.functions).length > 1) {
      throw new InvalidError(`app ${req.app} has several functions (${Object.keys(req.functions).join(", ")}): name the one to smoke-test with --smoke-function`);
    }
    const id = newId("dep_");
    this.deps.deploys.insert({ id, app: req.app, deployment: req.deployment, promote: req.promote, actor, createdAt: Date.now() });
    const safeEmit = (e: DeployEvent) => {
      try {
        onEvent(e);
      } catch {
        // A listener that went away does not stop the deploy.
      }
    };
    safeEmit({ type: "accepted", deploy: id });
    const done = this.run(id, req, actor, safeEmit).catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      if (this.deps.deploys.update(id, "failed", { error: message })) {
        this.deps.events.emit("deploy.failed", req.app, { deploy: id, deployment: req.deployment, version: this.deps.deploys.get(id)?.version ?? null, error: message });
      }
      throw err;
    });
    return { id, done };
  }

  /** Deploys and waits for the outcome. */
  async deploy(raw: unknown, actor: string, onEvent?: (e: DeployEvent) => void): Promise<DeployOutcome> {
    return this.start(raw, actor, onEvent).done;
  }

  status(id: string): DeployRow {
    const row = this.deps.deploys.get(id);
    if (!row) throw new NotFoundError(`no deploy ${id}`, { deploy: id });
    return row;
  }

  /** At start: deploys that a previous process was running when it stopped end as failed. */
  recoverInterrupted(): number {
    const cut = this.deps.deploys.unfinished();
    for (const d of cut) {
      const error = `the server stopped while this deploy was ${d.status}; ${d.deployment} was left where the history shows`;
      this.deps.versions.store.meta.tx(() => {
        if (this.deps.deploys.update(d.id, "failed", { error })) {
          this.deps.events.emit("deploy.failed", d.app, { deploy: d.id, deployment: d.deployment, version: d.version, error });
        }
      });
    }
    return cut.length;
  }

  private async run(id: string, req: Request, actor: string, onEvent: (e: DeployEvent) => void): Promise<DeployOutcome> {
    const started = performance.now();
    const { deploys, events, versions, deployments, blobs } = this.deps;
    // The pointer is read before building, so a deploy that finishes after a newer one cannot silently win (DV2).
    const expectedRevision = deployments.revisionOf(req.app, req.deployment);

    const bundleBytes = await blobs.readBuffer(req.code).catch(() => {
      throw new NotFoundError(`code bundle ${req.code} was not uploaded`, { code: req.code });
    });
    const bundle = parseWith(codeBundleSchema, JSON.parse(bundleBytes.toString("utf8")), "code bundle");
    for (const [name, file] of Object.entries(bundle.files)) {
      if (!(await blobs.stat(file))) throw new NotFoundError(`code file ${name} (${file}) was not uploaded`, { file: name });
    }

    deploys.update(id, "building");
    const used = [...new Set(Object.values(req.functions).map((f) => f.image))].sort();
    events.emit("build.started", req.app, { deploy: id, images: used });
    let images: ImageBuilds;
    try {
      images = await this.deps.buildService.buildImages(req, onEvent);
    } catch (err) {
      events.emit("build.finished", req.app, { deploy: id, ok: false, error: err instanceof Error ? err.message : String(err) });
      throw err;
    }
    events.emit("build.finished", req.app, {
      deploy: id,
      ok: true,
      images: Object.fromEntries(
        Object.entries(images).map(([name, b]) => [
          name,
          {
            digest: b.digest,
            durationMs: b.durationMs,
            hits: b.steps.filter((s) => s.status === "hit").length,
            misses: b.steps.filter((s) => s.status === "miss").length,
            steps: b.steps.map((s) => ({ index: s.index, text: s.text, status: s.status, durationMs: s.durationMs, ...(s.reason ? { reason: s.reason } : {}) })),
          },
        ]),
      ),
    });

    const functions: Record<string, FunctionRelease> = {};
    for (const [name, f] of Object.entries(req.functions)) {
      const image = images[f.image];
      if (!image) throw new InvalidError(`function ${name} uses image ${JSON.stringify(f.image)}, which the request does not define`);
      const handler = bundle.handlers[name];
      if (!handler || !bundle.files[handler]) throw new InvalidError(`the code bundle has no handler file for function ${name}`);
      const { image: _image, handler: _handler, ...settings } = f;
      functions[name] = { image: image.digest as FunctionRelease["image"], handler, ...settings };
    }

    const current = deployments.get(req.app, req.deployment);
    const currentVersion: Version | null = current?.version ? versions.get(req.app, current.version) : null;
    const content: VersionContent = { functions, code: req.code, config: currentVersion?.content.config ?? null };
    const digest = releaseDigest(content);
    const base = { id, app: req.app, deployment: req.deployment, images, smoke: null };
    if (currentVersion && currentVersion.releaseDigest === digest && !current?.traffic) {
      deploys.update(id, "live", { version: currentVersion.number });
      onEvent({ type: "message", text: `no changes: ${req.deployment} already runs v${currentVersion.number}` });
      return { ...base, version: currentVersion.number, releaseDigest: digest, created: false, moved: null, status: "live", durationMs: ms(started) };
    }
    // Equal content is the same version: a deploy that matches an earlier one (another deployment's, or one made
    // with --no-promote) points at it instead of numbering a copy.
    const reuse = currentVersion && currentVersion.releaseDigest === digest ? currentVersion : versions.findByReleaseDigest(req.app, digest);
    const version =
      reuse ??
      versions.store.meta.tx(() => {
        const v = versions.create(req.app, content, req.source, actor);
        deploys.update(id, "warming", { version: v.number });
        events.emit("version.created", req.app, { deploy: id, version: v.number, releaseDigest: v.releaseDigest, config: content.config, reason: "deploy" });
        return v;
      });
    if (reuse) {
      deploys.update(id, "warming", { version: reuse.number });
      onEvent({ type: "message", text: `same content as v${reuse.number}: no new version` });
    }
    else onEvent({ type: "message", text: `created v${version.number} (${digest})` });

    let smoke: DeployOutcome["smoke"] = null;
    if (req.smoke) {
      const fn = req.smoke.function ?? Object.keys(functions)[0]!;
      onEvent({ type: "message", text: `smoke test: calling ${req.app}/${fn} v${version.number}` });
      try {
        const res = await this.deps.invoke.invoke({
          app: req.app,
          function: fn,
          version: version.number,
          input: Buffer.from(JSON.stringify(req.smoke.input ?? null)),
          contentType: "application/json",
        });
        const output = res.contentType.startsWith("application/json") ? (JSON.parse(res.body.toString("utf8")) as unknown) : `${res.body.length} bytes of ${res.contentType}`;
        smoke = { function: fn, output, durationMs: res.durationMs };
        onEvent({ type: "message", text: `smoke test passed in ${res.durationMs} ms` });
      } catch (err) {
        const holds = current?.version ? `stays on v${current.version}` : "was not created";
        const reason = err instanceof Error ? err.message : String(err);
        throw new FailedError(`smoke test of ${req.app}/${fn} v${version.number} failed, so ${req.deployment} ${holds}: ${reason}`, {
          ...(isSlipwayError(err) ? err.details : {}),
          version: version.number,
          smoke: true,
        });
      }
    }

    if (!req.promote) {
      deploys.update(id, "created");
      onEvent({ type: "message", text: `v${version.number} is callable by number; no deployment moved` });
      return { ...base, smoke, version: version.number, releaseDigest: digest, created: !reuse, moved: null, status: "created", durationMs: ms(started) };
    }
    await pause("pause-before-flip", this.deps.faults?.pauseBeforeFlipMs);
    const moved = await this.deps.pointers.flip({
      app: req.app,
      deployment: req.deployment,
      expectedRevision,
      to: version.number,
      reason: "deploy",
      actor,
      inTransaction: () => deploys.update(id, "live"),
    });
    onEvent({ type: "message", text: `${req.deployment} → v${version.number}` });
    await pause("pause-after-flip", this.deps.faults?.pauseAfterFlipMs);
    return { ...base, smoke, version: version.number, releaseDigest: digest, created: !reuse, moved, status: "live", durationMs: ms(started) };
  }
}

function ms(since: number): number {
  return Math.round(performance.now() - since);
}
