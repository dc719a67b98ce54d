// What the worker needs to run one function of one version: its image, code, settings and runtime configuration.
import { NotFoundError } from "../core/errors.js";
import type { RuntimeConfig } from "../deploy/config.js";
import type { Version } from "../deploy/versions.js";
import type { FunctionTarget } from "../runtime/worker.js";

export function functionTarget(version: Version, fn: string, config: RuntimeConfig): FunctionTarget {
  const f = version.content.functions[fn];
  if (!f) {
    throw new NotFoundError(
      `app ${version.app} v${version.number} has no function ${JSON.stringify(fn)} (it has ${Object.keys(version.content.functions).join(", ")})`,
      { app: version.app, function: fn, version: version.number },
    );
  }
  return {
    app: version.app,
    version: version.number,
    function: fn,
    image: f.image,
    code: version.content.code,
    handler: f.handler,
    settings: f,
    env: config.env(version.app, version.content.config),
  };
}

/** The functions of a version that keep warm containers: these are started before a pointer flips to it. */
export function warmTargets(version: Version, config: RuntimeConfig): FunctionTarget[] {
  return Object.entries(version.content.functions)
    .filter(([, f]) => f.minContainers > 0)
    .map(([name]) => functionTarget(version, name, config));
}
