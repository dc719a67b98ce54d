// Invocations: resolve the deployment pointer exactly once, when the call is accepted, then run on that version
// until the call ends. Every result names the version and image digest that served it.
import { NotFoundError } from "../core/errors.js";
import { newId } from "../core/ids.js";
import type { Deployments } from "../deploy/deployments.js";
import type { Versions } from "../deploy/versions.js";
import type { FunctionTarget, InvokeResult, Worker } from "../runtime/worker.js";

export interface InvokeRequest {
  app: string;
  function: string;
  /** Pin a version; otherwise the deployment's pointer decides. */
  version?: number;
  deployment?: string;
  input: Buffer;
  contentType: string;
}

export interface Invocation extends InvokeResult {
  id: string;
  app: string;
  function: string;
  version: number;
  deployment: string | null;
  image: string;
}

export class InvokeService {
  constructor(private readonly deps: { versions: Versions; deployments: Deployments; worker: Worker; configEnv?: (app: string, version: number) => Record<string, string> }) {}

  async invoke(req: InvokeRequest): Promise<Invocation> {
    const id = newId("inv-");
    const deployment = req.version === undefined ? (req.deployment ?? "main") : null;
    const number = req.version ?? this.deps.deployments.require(req.app, deployment!).version;
    const version = this.deps.versions.get(req.app, number);
    const fn = version.content.functions[req.function];
    if (!fn) {
      throw new NotFoundError(
        `app ${req.app} v${number} has no function ${JSON.stringify(req.function)} (it has ${Object.keys(version.content.functions).join(", ")})`,
        { app: req.app, function: req.function, version: number },
      );
    }
    const target: FunctionTarget = {
      app: req.app,
      version: number,
      function: req.function,
      image: fn.image,
      code: version.content.code,
      handler: fn.handler,
      settings: fn,
      env: this.deps.configEnv?.(req.app, number) ?? {},
    };
    const result = await this.deps.worker.invoke(target, req.input, req.contentType, id);
    return { ...result, id, app: req.app, function: req.function, version: number, deployment, image: fn.image };
  }
}
