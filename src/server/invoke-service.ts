// Invocations: resolve the deployment pointer exactly once, when the call is accepted (one read gives the version
// or split and the pointer's revision), then run on that version until the call ends. A split routes by the
// caller's routing key, or at random by weight. Every result names the version, image digest and the revision
// it resolved; errors are scrubbed of the version's secret values.
import { SlipwayError, isSlipwayError } from "../core/errors.js";
import { newId } from "../core/ids.js";
import { scrub, scrubDeep, type RuntimeConfig } from "../deploy/config.js";
import type { Deployments } from "../deploy/deployments.js";
import { keyBucket, route } from "../deploy/traffic.js";
import type { Versions } from "../deploy/versions.js";
import type { InvokeResult, Worker } from "../runtime/worker.js";
import { functionTarget } from "./targets.js";

export interface InvokeRequest {
  app: string;
  function: string;
  /** Pin a version; otherwise the deployment's pointer decides. */
  version?: number;
  deployment?: string;
  /** Calls with the same key land on the same version of a split while the split is unchanged. */
  routingKey?: string;
  input: Buffer;
  contentType: string;
}

export interface Resolved {
  version: number;
  deployment: string | null;
  /** The pointer's revision when the call was accepted; null for a pinned version. */
  revision: number | null;
}

export interface Invocation extends InvokeResult, Resolved {
  id: string;
  app: string;
  function: string;
  image: string;
}

export class InvokeService {
  constructor(private readonly deps: { versions: Versions; deployments: Deployments; worker: Worker; config: RuntimeConfig }) {}

  /** Which version serves a call, read from the pointer once. */
  resolve(req: Pick<InvokeRequest, "app" | "version" | "deployment" | "routingKey">): Resolved {
    if (req.version !== undefined) return { version: req.version, deployment: null, revision: null };
    const deployment = req.deployment ?? "main";
    const d = this.deps.deployments.require(req.app, deployment);
    const version = d.traffic ? route(d.traffic, req.routingKey !== undefined ? keyBucket(req.app, deployment, req.routingKey) : undefined) : d.version;
    return { version, deployment, revision: d.revision };
  }

  async invoke(req: InvokeRequest): Promise<Invocation> {
    const id = newId("inv-");
    const resolved = this.resolve(req);
    const version = this.deps.versions.get(req.app, resolved.version);
    const target = functionTarget(version, req.function, this.deps.config);
    try {
      const result = await this.deps.worker.invoke(target, req.input, req.contentType, id);
      return { ...result, ...resolved, id, app: req.app, function: req.function, image: target.image };
    } catch (err) {
      throw this.scrubbed(err, req.app, version.content.config);
    }
  }

  /** Handler errors and container output can echo configuration; secret values never leave in them. */
  private scrubbed(err: unknown, app: string, revision: number | null): unknown {
    const secrets = this.deps.config.secretValues(app, revision);
    if (!secrets.length || !isSlipwayError(err)) return err;
    return new SlipwayError(err.code, scrub(err.message, secrets), scrubDeep(err.details, secrets) as Record<string, unknown>);
  }
}
