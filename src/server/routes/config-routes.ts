// Runtime configuration: show (secrets masked), change (a config revision and a new version, then a flip), and
// its history.
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { parseWith } from "../../core/schemas.js";
import type { Slipway } from "../context.js";
import { actorOf, parseJsonBody } from "./common.js";

const configBody = z.object({
  deployment: z.string().default("main"),
  set: z.record(z.string(), z.string()).default({}),
  unset: z.array(z.string()).default([]),
  secret: z.boolean().default(false),
});

export function registerConfigRoutes(api: FastifyInstance, sw: Slipway): void {
  api.get("/api/v1/apps/:app/config", async (request) => {
    const { app } = request.params as { app: string };
    const { deployment = "main" } = request.query as { deployment?: string };
    const d = sw.deployments.require(app, deployment);
    const version = sw.versions.get(app, d.version);
    return { ...sw.config.view(app, version.content.config, deployment), version: d.version };
  });

  api.post("/api/v1/apps/:app/config", async (request) => {
    const { app } = request.params as { app: string };
    const body = parseWith(configBody, parseJsonBody(request.body), "config change");
    const changed = await sw.pointers.configure(app, body.deployment, { set: body.set, unset: body.unset, secret: body.secret }, actorOf(request));
    if (!changed) {
      const d = sw.deployments.require(app, body.deployment);
      return { changed: false, version: d.version, config: sw.config.view(app, sw.versions.get(app, d.version).content.config, body.deployment), moved: null };
    }
    return { changed: true, ...changed };
  });

  api.get("/api/v1/apps/:app/config/history", async (request) => {
    const { app } = request.params as { app: string };
    const { deployment } = request.query as { deployment?: string };
    sw.versions.requireApp(app);
    return { app, revisions: sw.config.history(app, deployment) };
  });
}
