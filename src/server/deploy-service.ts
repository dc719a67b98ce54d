// The deploy controller: build every image (cached), check the code bundle, make a version when anything changed,
// and flip the deployment's pointer by compare-and-swap against the revision read when the deploy began.
import { InvalidError, NotFoundError } from "../core/errors.js";
import { checkName } from "../core/ids.js";
import { codeBundleSchema, deployRequestSchema, parseWith, type DeployRequest } from "../core/schemas.js";
import type { BuildEventOf, BuildService, ImageBuilds } from "./build-service.js";
import type { Deployments, MoveResult } from "../deploy/deployments.js";
import { releaseDigest, type FunctionRelease, type Version, type VersionContent, type Versions } from "../deploy/versions.js";
import type { FsBlobStore } from "../store/blob-store.js";

export type DeployEvent = BuildEventOf | { type: "message"; text: string };

export interface DeployOutcome {
  app: string;
  deployment: string;
  /** The version the deploy made, or the one that already had this content. */
  version: number;
  releaseDigest: string;
  created: boolean;
  moved: MoveResult | null;
  images: ImageBuilds;
  durationMs: number;
}

export class DeployService {
  constructor(
    private readonly deps: { buildService: BuildService; versions: Versions; deployments: Deployments; blobs: FsBlobStore },
  ) {}

  async deploy(raw: unknown, actor: string, onEvent: (e: DeployEvent) => void = () => undefined): Promise<DeployOutcome> {
    const started = performance.now();
    const req: DeployRequest = parseWith(deployRequestSchema, raw, "deploy request");
    checkName("app", req.app);
    checkName("deployment", req.deployment);
    for (const name of Object.keys(req.functions)) checkName("function", name);
    if (Object.keys(req.functions).length === 0) throw new InvalidError(`app ${req.app} defines no functions`);
    // The pointer is read before building, so a deploy that finishes after a newer one cannot silently win (DV2).
    const expectedRevision = this.deps.deployments.revisionOf(req.app, req.deployment);

    const bundleBytes = await this.deps.blobs.readBuffer(req.code).catch(() => {
      throw new NotFoundError(`code bundle ${req.code} was not uploaded`, { code: req.code });
    });
    const bundle = parseWith(codeBundleSchema, JSON.parse(bundleBytes.toString("utf8")), "code bundle");
    for (const [name, file] of Object.entries(bundle.files)) {
      if (!(await this.deps.blobs.stat(file))) throw new NotFoundError(`code file ${name} (${file}) was not uploaded`, { file: name });
    }

    const images = await this.deps.buildService.buildImages(req, onEvent);

    const functions: Record<string, FunctionRelease> = {};
    for (const [name, f] of Object.entries(req.functions)) {
      const image = images[f.image];
      if (!image) throw new InvalidError(`function ${name} uses image ${JSON.stringify(f.image)}, which the request does not define`);
      const handler = bundle.handlers[name];
      if (!handler || !bundle.files[handler]) throw new InvalidError(`the code bundle has no handler file for function ${name}`);
      const { image: _image, handler: _handler, ...settings } = f;
      functions[name] = { image: image.digest as FunctionRelease["image"], handler, ...settings };
    }

    const current = this.deps.deployments.get(req.app, req.deployment);
    const currentVersion: Version | null = current?.version ? this.deps.versions.get(req.app, current.version) : null;
    const content: VersionContent = {
      functions,
      code: req.code,
      config: currentVersion?.content.config ?? null,
    };
    const digest = releaseDigest(content);
    const base = { app: req.app, deployment: req.deployment, images };
    if (currentVersion && currentVersion.releaseDigest === digest) {
      onEvent({ type: "message", text: `no changes: ${req.deployment} already runs v${currentVersion.number}` });
      return { ...base, version: currentVersion.number, releaseDigest: digest, created: false, moved: null, durationMs: ms(started) };
    }
    const version = this.deps.versions.create(req.app, content, req.source, actor);
    onEvent({ type: "message", text: `created v${version.number} (${digest})` });
    let moved: MoveResult | null = null;
    if (req.promote) {
      moved = this.deps.deployments.move({
        app: req.app,
        deployment: req.deployment,
        expectedRevision,
        to: version.number,
        reason: "deploy",
        actor,
      });
      onEvent({ type: "message", text: `${req.deployment} → v${version.number}` });
    }
    return { ...base, version: version.number, releaseDigest: digest, created: true, moved, durationMs: ms(started) };
  }
}

function ms(since: number): number {
  return Math.round(performance.now() - since);
}

