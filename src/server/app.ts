// The HTTP app as a value built from its dependencies: the control-plane API under /api/v1 (and, registered by
// the registry module, /v2/). Handlers parse, call a service, and map the result; errors map in http-errors.ts.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { z } from "zod";
import { deployRequestSchema, digestSchema, parseWith } from "../core/schemas.js";
import { InvalidError } from "../core/errors.js";
import { parseDigest } from "../oci/digest.js";
import type { Slipway } from "./context.js";
import { errorHandler, toSlipwayError } from "./http-errors.js";

export interface AppOptions {
  logger?: boolean;
}

const versionParam = z.coerce.number().int().positive();
const missingBody = z.object({ digests: z.array(digestSchema).max(100_000) });
const rollbackBody = z.object({ deployment: z.string().default("main"), to: z.number().int().positive().optional() });
const promoteBody = z
  .object({ to: z.string().default("main"), from: z.string().optional(), version: z.number().int().positive().optional() })
  .refine((b) => (b.from === undefined) !== (b.version === undefined), { message: "give exactly one of from (a deployment) or version" });

export function buildApp(sw: Slipway, options: AppOptions = {}): FastifyInstance {
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 64 * 1024 * 1024 });
  app.setErrorHandler(errorHandler);

  app.get("/api/v1/health", async () => ({ ok: true }));

  app.register(async (api) => {
    api.addHook("onRequest", async (request: FastifyRequest & { actor?: string }) => {
      request.actor = sw.authenticate(request.headers.authorization);
    });
    // Bodies of blobs and invocations are bytes, not JSON documents.
    api.removeContentTypeParser(["application/json", "text/plain"]);
    api.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
    const actorOf = (r: FastifyRequest) => (r as FastifyRequest & { actor?: string }).actor ?? "anonymous";

    api.head("/api/v1/blobs/:digest", async (request, reply) => {
      const { digest } = parseDigest((request.params as { digest: string }).digest);
      const info = await sw.blobs.stat(digest);
      return reply.status(info ? 200 : 404).header("content-length", info?.size ?? 0).send();
    });

    api.post("/api/v1/blobs/missing", async (request) => {
      const { digests } = parseWith(missingBody, parseJsonBody(request.body), "missing-blobs request");
      return { missing: digests.filter((d) => !sw.blobs.hasSync(d)) };
    });

    api.put("/api/v1/blobs/:digest", { bodyLimit: 8 * 1024 ** 3 }, async (request, reply) => {
      const { digest } = parseDigest((request.params as { digest: string }).digest);
      const body = request.body;
      if (!Buffer.isBuffer(body)) throw new InvalidError("blob upload needs a binary body (Content-Type: application/octet-stream)");
      const info = await sw.blobs.put(body, digest);
      return reply.status(201).send(info);
    });

    api.post("/api/v1/deploy", async (request, reply) => {
      const body = parseJsonBody(request.body);
      await streamNdjson(reply, (emit) => sw.deployService.deploy(body, actorOf(request), emit));
    });

    api.post("/api/v1/build", async (request, reply) => {
      const body = parseWith(deployRequestSchema, parseJsonBody(request.body), "build request");
      await streamNdjson(reply, async (emit) => ({ app: body.app, images: await sw.buildService.buildImages(body, emit) }));
    });

    api.get("/api/v1/apps", async () => ({ apps: sw.meta.db.prepare("SELECT name FROM apps ORDER BY name").all() }));

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
      const current = sw.deployments.require(app, body.deployment);
      const to = body.to ?? sw.deployments.rollbackTarget(app, body.deployment);
      return sw.deployments.move({ app, deployment: body.deployment, expectedRevision: current.revision, to, reason: "rollback", actor: actorOf(request) });
    });

    api.post("/api/v1/apps/:app/promote", async (request) => {
      const { app } = request.params as { app: string };
      const body = parseWith(promoteBody, parseJsonBody(request.body) ?? {}, "promote request");
      const to = body.version ?? sw.deployments.require(app, body.from!).version;
      const expectedRevision = sw.deployments.revisionOf(app, body.to);
      return sw.deployments.move({ app, deployment: body.to, expectedRevision, to, reason: "promote", actor: actorOf(request), note: body.from ? `from ${body.from}` : undefined });
    });

    api.post("/api/v1/apps/:app/functions/:fn/invoke", async (request, reply) => {
      const { app, fn } = request.params as { app: string; fn: string };
      const query = request.query as { version?: string; deployment?: string };
      const input = Buffer.isBuffer(request.body) ? request.body : Buffer.from(request.body === undefined ? "" : JSON.stringify(request.body));
      const result = await sw.invokeService.invoke({
        app,
        function: fn,
        version: query.version ? parseWith(versionParam, query.version.replace(/^v/, ""), "version") : undefined,
        deployment: query.deployment,
        input,
        contentType: String(request.headers["content-type"] ?? "application/json"),
      });
      return reply
        .header("content-type", result.contentType)
        .header("slipway-version", String(result.version))
        .header("slipway-image-digest", result.image)
        .header("slipway-invocation", result.id)
        .header("slipway-container", result.containerId)
        .header("slipway-duration-ms", String(result.durationMs))
        .header("slipway-cold-start", result.coldStart ? JSON.stringify(result.coldStart) : "")
        .send(result.body);
    });

    api.get("/api/v1/status", async () => ({ containers: sw.worker.stats() }));
  });

  return app;
}

/** Streams progress events as NDJSON lines, then one `result` (or `error`) line: long operations stay observable. */
async function streamNdjson(reply: FastifyReply, run: (emit: (event: unknown) => void) => Promise<unknown>): Promise<void> {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, { "content-type": "application/x-ndjson" });
  const write = (line: unknown) => raw.write(JSON.stringify(line) + "\n");
  try {
    const result = await run((event) => write({ type: "event", event }));
    write({ type: "result", result });
  } catch (err) {
    write({ type: "error", error: toSlipwayError(err).toJSON() });
  }
  raw.end();
}

function parseJsonBody(body: unknown): unknown {
  if (Buffer.isBuffer(body)) {
    if (body.length === 0) return undefined;
    try {
      return JSON.parse(body.toString("utf8"));
    } catch (err) {
      throw new InvalidError(`request body is not valid JSON: ${(err as Error).message}`);
    }
  }
  return body;
}
