// Deploys, versions and pointer moves: deploy (streamed), deploy status, app status, versions, deployments,
// history, rollback, promote and traffic splits.
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { deployRequestSchema, parseWith } from "../../core/schemas.js";
import type { Slipway } from "../context.js";
import { requireRequestBlobs } from "../request-blobs.js";
import { actorOf, parseJsonBody, streamNdjson, versionParam } from "./common.js";

const rollbackBody = z.object({ deployment: z.string().default("main"), to: z.number().int().positive().optional() });
const promoteBody = z
  .object({ to: z.string().default("main"), from: z.string().optional(), version: z.number().int().positive().optional() })
  .refine((b) => (b.from === undefined) !== (b.version === undefined), { message: "give exactly one of from (a deployment) or version" });
const trafficBody = z.object({
  deployment: z.string().default("main"),
  split: z.array(z.object({ version: z.number().int(), weight: z.number() })).min(1),
});

export function registerDeployRoutes(api: FastifyInstance, sw: Slipway): void {
  api.post("/api/v1/deploy", async (request, reply) => {
    // Validated before the stream starts, so a malformed request is a 400, not a 200 carrying an error line.
    const body = parseJsonBody(request.body);
    await requireRequestBlobs(parseWith(deployRequestSchema, body, "deploy request"), sw.blobs, (d) => sw.builder.loadTree(d));
    await streamNdjson(reply, (emit) => sw.deployService.start(body, actorOf(request), emit).done);
  });

  api.get("/api/v1/deploys/:id", async (request) => sw.deployService.status((request.params as { id: string }).id));

  api.get("/api/v1/apps/:app/status", async (request) => {
    const { app } = request.params as { app: string };
    const deploys = sw.deploys.recent(app, 10);
    // An app's first deploy has a status before the app has a version.
    const deployments = deploys.length && !sw.versions.store.appExists(app) ? [] : sw.deployments.list(app);
    const pools = sw.worker.stats(app);
    const byVersion = new Map<number, typeof pools>();
    for (const p of pools) byVersion.set(p.version, [...(byVersion.get(p.version) ?? []), p]);
    const routed = sw.deployments.activeVersions(app);
    const versions = [...new Set([...routed, ...byVersion.keys()])].sort((a, b) => a - b).map((version) => {
      const fns = byVersion.get(version) ?? [];
      const sum = (k: "idle" | "busy" | "starting") => fns.reduce((n, f) => n + f[k], 0);
      return {
        version,
        routed: routed.has(version),
        containers: { idle: sum("idle"), busy: sum("busy"), starting: sum("starting"), total: sum("idle") + sum("busy") + sum("starting") },
        functions: fns.map(({ function: fn, active, idle, busy, starting }) => ({ function: fn, active, idle, busy, starting })),
      };
    });
    return { app, deployments, versions, deploys };
  });

  api.get("/api/v1/apps/:app/versions", async (request) => {
    const { app } = request.params as { app: string };
    const deployments = sw.deployments.list(app);
    return { app, versions: sw.versions.list(app), deployments };
  });

  api.get("/api/v1/apps/:app/versions/:version", async (request) => {
    const { app, version } = request.params as { app: string; version: string };
    return sw.versions.get(app, parseWith(versionParam, version.replace(/^v/, ""), "version number"));
  });

  api.get("/api/v1/apps/:app/deployments", async (request) => {
    const { app } = request.params as { app: string };
    return { app, deployments: sw.deployments.list(app) };
  });

  api.get("/api/v1/apps/:app/history", async (request) => {
    const { app } = request.params as { app: string };
    const { deployment } = request.query as { deployment?: string };
    return { app, history: sw.deployments.history(app, deployment) };
  });

  api.post("/api/v1/apps/:app/rollback", async (request) => {
    const { app } = request.params as { app: string };
    const body = parseWith(rollbackBody, parseJsonBody(request.body) ?? {}, "rollback request");
    return sw.pointers.rollback(app, body, actorOf(request));
  });

  api.post("/api/v1/apps/:app/promote", async (request) => {
    const { app } = request.params as { app: string };
    const body = parseWith(promoteBody, parseJsonBody(request.body) ?? {}, "promote request");
    return sw.pointers.promote(app, body, actorOf(request));
  });

  api.post("/api/v1/apps/:app/traffic", async (request) => {
    const { app } = request.params as { app: string };
    const body = parseWith(trafficBody, parseJsonBody(request.body), "traffic request");
    return sw.pointers.traffic(app, body.deployment, body.split, actorOf(request));
  });
}
