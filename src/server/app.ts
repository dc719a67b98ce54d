// The HTTP app as a value built from its dependencies: the control-plane API under /api/v1 and the OCI registry
// under /v2/. Handlers parse, call a service, and map the result; errors map in http-errors.ts.
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import { z } from "zod";
import { deployRequestSchema, digestSchema, parseWith } from "../core/schemas.js";
import { InvalidError } from "../core/errors.js";
import { digestOf, parseDigest, type Digest } from "../oci/digest.js";
import { registryPlugin } from "../registry/routes.js";
import type { Slipway } from "./context.js";
import { errorHandler } from "./http-errors.js";
import { requireRequestBlobs } from "./request-blobs.js";
import { parseJsonBody, streamNdjson } from "./routes/common.js";
import { registerConfigRoutes } from "./routes/config-routes.js";
import { registerDeployRoutes } from "./routes/deploy-routes.js";
import { registerInvokeRoutes } from "./routes/invoke-routes.js";
import { registerWebhookRoutes } from "./routes/webhook-routes.js";

export interface AppOptions {
  logger?: boolean;
}

const missingBody = z.object({ digests: z.array(digestSchema).max(100_000) });
const batchHead = z.object({ blobs: z.array(z.object({ digest: digestSchema, size: z.number().int().nonnegative() })).max(100_000) });

export function buildApp(sw: Slipway, options: AppOptions = {}): FastifyInstance {
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 64 * 1024 * 1024 });
  app.setErrorHandler(errorHandler);

  app.get("/api/v1/health", async () => ({ ok: true }));
  app.register(
    registryPlugin({
      blobs: sw.blobs,
      repos: sw.repos,
      auth: sw.auth.registry,
      uploads: sw.uploads,
      // An app's images live in the repository named after it; its versions keep them from being deleted.
      manifestInUse: (repo, digest) => {
        const versions = sw.versions.naming(repo, digest);
        return versions.length ? `${repo} ${versions.map((v) => `v${v}`).join(", ")}` : null;
      },
    }),
    { prefix: "/v2" },
  );

  app.register(async (api) => {
    api.addHook("onRequest", async (request: FastifyRequest & { actor?: string }) => {
      request.actor = sw.authenticate(request.headers.authorization);
    });
    // Bodies of blobs and invocations are bytes, not JSON documents.
    api.removeContentTypeParser(["application/json", "text/plain"]);
    api.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));

    api.head("/api/v1/blobs/:digest", async (request, reply) => {
      const { digest } = parseDigest((request.params as { digest: string }).digest);
      const info = await sw.blobs.stat(digest);
      return reply.status(info ? 200 : 404).header("content-length", info?.size ?? 0).send();
    });

    api.post("/api/v1/blobs/missing", async (request) => {
      const { digests } = parseWith(missingBody, parseJsonBody(request.body), "missing-blobs request");
      return { missing: digests.filter((d) => !sw.blobs.hasSync(d)) };
    });

    // Many small blobs in one request (a deploy's copied files): a JSON line naming each blob's digest and size, then
    // their bytes in that order. Every digest is checked before any blob is stored.
    api.post("/api/v1/blobs", async (request, reply) => {
      const body = request.body;
      if (!Buffer.isBuffer(body)) throw new InvalidError("a blob batch needs a binary body (Content-Type: application/octet-stream)");
      const nl = body.indexOf(10);
      if (nl < 0) throw new InvalidError("a blob batch starts with a JSON line naming its blobs");
      const { blobs } = parseWith(batchHead, parseJsonBody(body.subarray(0, nl)), "blob batch");
      const parts: Array<{ digest: Digest; data: Buffer }> = [];
      let offset = nl + 1;
      for (const [i, b] of blobs.entries()) {
        if (offset + b.size > body.length) {
          throw new InvalidError(`blob batch: blob ${i} (${b.digest}) needs ${b.size} bytes, but the body ends ${body.length - offset} bytes later`, { digest: b.digest });
        }
        const data = body.subarray(offset, offset + b.size);
        offset += b.size;
        const actual = digestOf(data, parseDigest(b.digest).algorithm);
        if (actual !== b.digest) throw new InvalidError(`blob batch: blob ${i} is ${actual}, not ${b.digest}; nothing was stored`, { digest: b.digest, actual });
        parts.push({ digest: b.digest, data });
      }
      if (offset !== body.length) throw new InvalidError(`blob batch: ${body.length - offset} bytes follow the last blob`);
      for (let i = 0; i < parts.length; i += 8) {
        await Promise.all(parts.slice(i, i + 8).map((p) => (sw.blobs.hasSync(p.digest) ? null : sw.blobs.put(p.data, p.digest))));
      }
      return reply.status(201).send({ stored: parts.length });
    });

    api.put("/api/v1/blobs/:digest", { bodyLimit: 8 * 1024 ** 3 }, async (request, reply) => {
      const { digest } = parseDigest((request.params as { digest: string }).digest);
      const body = request.body;
      if (!Buffer.isBuffer(body)) throw new InvalidError("blob upload needs a binary body (Content-Type: application/octet-stream)");
      const info = await sw.blobs.put(body, digest);
      return reply.status(201).send(info);
    });

    api.post("/api/v1/build", async (request, reply) => {
      const body = parseWith(deployRequestSchema, parseJsonBody(request.body), "build request");
      await requireRequestBlobs(body, sw.blobs, (d) => sw.builder.loadTree(d));
      await streamNdjson(reply, async (emit) => ({ app: body.app, images: await sw.buildService.buildImages(body, emit) }));
    });

    // Same wire shape as before: one object per app.
    api.get("/api/v1/apps", async () => ({ apps: sw.versions.apps().map((name) => ({ name })) }));

    registerDeployRoutes(api, sw);
    registerInvokeRoutes(api, sw);
    registerConfigRoutes(api, sw);
    registerWebhookRoutes(api, sw);
  });

  return app;
}
