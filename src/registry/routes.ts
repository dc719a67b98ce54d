// The registry as a fastify plugin: every OCI Distribution 1.1 endpoint under the prefix it is registered at
// (the server mounts it at /v2). It takes the request body away from fastify's parsers so blobs stream from the
// socket to the store, names the access each endpoint needs, and answers every error through errors.ts.
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { Access } from "./access.js";
import { deleteBlob, getBlob } from "./blob-handlers.js";
import { DEFAULT_LIMITS, type RegistryContext, type RegistryDeps } from "./context.js";
import { RegistryError, sendRegistryError, toRegistryError } from "./errors.js";
import { listCatalog, listReferrers, listTags } from "./listing-handlers.js";
import { deleteManifest, getManifest, putManifest } from "./manifest-handlers.js";
import { checkDigest, checkRepositoryName, matchRoute, type Route } from "./paths.js";
import { hasBody, readSmallBody } from "./request-body.js";
import { cancelUpload, finishUpload, patchUpload, startUpload, uploadStatus } from "./upload-handlers.js";
import { UploadSessions } from "./uploads.js";

export type { RegistryDeps } from "./context.js";

const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] as const;
/** Largest OAuth2 token request form (credentials and a few scopes). */
const TOKEN_FORM_BYTES = 64 * 1024;

export function registryPlugin(deps: RegistryDeps): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    const uploads = deps.uploads ?? new UploadSessions(deps.blobs, deps.repos);
    if (!deps.uploads) app.addHook("onClose", async () => uploads.close());
    // After a crash, sessions whose bytes never reached the disk are dropped; the rest resume where they stopped.
    await uploads.recover();
    const ctx: RegistryContext = {
      blobs: deps.blobs,
      repos: deps.repos,
      auth: deps.auth,
      uploads,
      limits: { ...DEFAULT_LIMITS, ...deps.limits },
      deletes: deps.deletes ?? true,
      prefix: app.prefix,
      manifestInUse: deps.manifestInUse,
    };

    // Bodies are read by the handlers themselves: streamed for blobs, bounded for manifests.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser("*", (_request, _payload, done) => done(null));
    app.setErrorHandler((err, request, reply) => {
      const error = toRegistryError(err);
      // A refused request may still be sending its body; closing is cheaper than reading gigabytes to discard.
      if (error.status >= 400 && !request.raw.complete && hasBodySafe(request)) reply.header("connection", "close");
      return sendRegistryError(reply, error, request.method);
    });

    const handler = (request: FastifyRequest, reply: FastifyReply) => dispatch(ctx, request, reply);
    app.route({ method: [...METHODS], url: "/", handler });
    app.route({ method: [...METHODS], url: "/*", handler });
  };
}

function hasBodySafe(request: FastifyRequest): boolean {
  try {
    return hasBody(request);
  } catch {
    return true;
  }
}

async function dispatch(ctx: RegistryContext, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | unknown> {
  reply.header("docker-distribution-api-version", "registry/2.0");
  const path = request.url.split("?")[0]!.slice(ctx.prefix.length);
  const route = matchRoute(path);
  if (!route) throw new RegistryError("NAME_UNKNOWN", `no registry endpoint at ${ctx.prefix}${path}`, { status: 404 });
  const method = request.method;
  if (route.kind === "token") {
    allow(route, method, ["GET", "POST"]);
    if (method === "GET") return ctx.auth.tokenEndpoint(request, reply);
    const form = await readSmallBody(request, TOKEN_FORM_BYTES, "token request");
    return ctx.auth.tokenEndpoint(request, reply, new URLSearchParams(form.toString("utf8")));
  }
  if (route.kind === "base") {
    allow(route, method, ["GET", "HEAD"]);
    await authorize(ctx, request, []);
    return reply.status(200).header("content-type", "application/json").send("{}");
  }
  if (route.kind === "catalog") {
    allow(route, method, ["GET"]);
    await authorize(ctx, request, [{ type: "registry", name: "catalog", actions: ["*"] }]);
    return listCatalog(ctx, request, reply);
  }
  const name = checkRepositoryName(route.name);
  const pull: Access = { type: "repository", name, actions: ["pull"] };
  const push: Access = { type: "repository", name, actions: ["pull", "push"] };
  const del: Access = { type: "repository", name, actions: ["delete"] };

  switch (route.kind) {
    case "blob": {
      allow(route, method, ["GET", "HEAD", "DELETE"]);
      const digest = checkDigest(route.digest);
      if (method === "DELETE") {
        deletesEnabled(ctx);
        await authorize(ctx, request, [del]);
        return deleteBlob(ctx, reply, name, digest);
      }
      await authorize(ctx, request, [pull]);
      return getBlob(ctx, request, reply, name, digest);
    }
    case "uploads":
      allow(route, method, ["POST"]);
      await authorize(ctx, request, [push]);
      return startUpload(ctx, request, reply, name);
    case "upload":
      allow(route, method, ["GET", "PATCH", "PUT", "DELETE"]);
      await authorize(ctx, request, [push]);
      if (method === "GET") return uploadStatus(ctx, reply, name, route.id);
      if (method === "PATCH") return patchUpload(ctx, request, reply, name, route.id);
      if (method === "PUT") return finishUpload(ctx, request, reply, name, route.id);
      return cancelUpload(ctx, reply, name, route.id);
    case "manifest":
      allow(route, method, ["GET", "HEAD", "PUT", "DELETE"]);
      if (method === "PUT") {
        await authorize(ctx, request, [push]);
        return putManifest(ctx, request, reply, name, route.reference);
      }
      if (method === "DELETE") {
        deletesEnabled(ctx);
        await authorize(ctx, request, [del]);
        return deleteManifest(ctx, reply, name, route.reference);
      }
      await authorize(ctx, request, [pull]);
      return getManifest(ctx, request, reply, name, route.reference);
    case "tags":
      allow(route, method, ["GET"]);
      await authorize(ctx, request, [pull]);
      return listTags(ctx, request, reply, name);
    case "referrers": {
      allow(route, method, ["GET"]);
      const subject = checkDigest(route.digest);
      await authorize(ctx, request, [pull]);
      return listReferrers(ctx, request, reply, name, subject);
    }
  }
}

function allow(route: Route, method: string, methods: string[]): void {
  if (!methods.includes(method)) {
    throw new RegistryError("UNSUPPORTED", `${method} is not supported on this ${route.kind} endpoint (allowed: ${methods.join(", ")})`, {
      headers: { allow: methods.join(", ") },
    });
  }
}

function deletesEnabled(ctx: RegistryContext): void {
  if (!ctx.deletes) throw new RegistryError("UNSUPPORTED", "deletes are disabled on this registry");
}

async function authorize(ctx: RegistryContext, request: FastifyRequest, access: Access[]): Promise<void> {
  const decision = await ctx.auth.check(request, access);
  if (decision.allowed) return;
  if (decision.reason === "denied") throw new RegistryError("DENIED", decision.message, { detail: access });
  const error = decision.reason === "insufficient-scope" ? "insufficient_scope" : undefined;
  throw new RegistryError("UNAUTHORIZED", decision.message, {
    detail: access.length > 0 ? access : undefined,
    headers: { "www-authenticate": ctx.auth.challenge(request, access, error) },
  });
}
