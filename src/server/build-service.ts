// Builds the images an app's functions use, without making a version: `slipway build` and the first half of a
// deploy. Each image is built under the name `<app>/<image>` so that its next build can explain its misses.
import { InvalidError } from "../core/errors.js";
import { checkName } from "../core/ids.js";
import type { DeployRequest } from "../core/schemas.js";
import type { Builder, BuildEvent, BuildResult } from "../build/builder.js";

export type BuildEventOf = { type: "build"; image: string; event: BuildEvent };

export type ImageBuilds = Record<string, { digest: string; steps: BuildResult["steps"]; durationMs: number }>;

export class BuildService {
  constructor(private readonly deps: { builder: Builder }) {}

  async buildImages(req: DeployRequest, onEvent: (e: BuildEventOf) => void = () => undefined): Promise<ImageBuilds> {
    checkName("app", req.app);
    const used = new Set(Object.values(req.functions).map((f) => f.image));
    for (const name of used) if (!req.images[name]) throw new InvalidError(`a function uses image ${JSON.stringify(name)}, which the request does not define`);
    const images: ImageBuilds = {};
    for (const name of [...used].sort()) {
      const result = await this.deps.builder.build(req.images[name]!, {
        image: `${req.app}/${name}`,
        repo: req.app,
        forceBuild: req.forceBuild,
        auth: req.registryAuth,
        onEvent: (event) => onEvent({ type: "build", image: name, event }),
      });
      images[name] = { digest: result.digest, steps: result.steps, durationMs: result.durationMs };
    }
    return images;
  }
}
