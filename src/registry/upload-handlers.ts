// Upload endpoints: POST to start a session (or to upload in one request with ?digest=, or to mount a blob from
// another repository), then GET status, PATCH chunks, PUT to finish, DELETE to cancel.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Digest, DigestAlgorithm } from "../oci/digest.js";
import type { RegistryContext } from "./context.js";
import { RegistryError } from "./errors.js";
import { blobLocation, checkDigest, checkRepositoryName, uploadLocation } from "./paths.js";
import { declaredLength, hasBody } from "./request-body.js";
import { rangeHeader, type Chunk } from "./uploads.js";

type Query = Record<string, string | string[] | undefined>;

function single(query: Query, key: string): string | undefined {
  const value = query[key];
  return Array.isArray(value) ? value[0] : value;
}

export async function startUpload(ctx: RegistryContext, request: FastifyRequest, reply: FastifyReply, name: string): Promise<FastifyReply> {
  const query = request.query as Query;
  const mount = single(query, "mount");
  if (mount !== undefined) {
    const mounted = await tryMount(ctx, request, name, mount, single(query, "from"));
    if (mounted) return created(ctx, reply, name, mounted);
  }
  const digest = single(query, "digest");
  if (digest !== undefined && mount === undefined) {
    const expected = checkDigest(digest);
    const length = checkBlobLength(ctx, request);
    const info = await ctx.uploads.monolithic(name, expected, request.raw, length);
    return created(ctx, reply, name, info.digest);
  }
  const algorithm = digestAlgorithm(single(query, "digest-algorithm"));
  const id = await ctx.uploads.start(name, algorithm);
  return accepted(ctx, reply.status(202), name, id, 0);
}

/** Mounts when the source repository holds the blob and the caller may pull from it; otherwise null (the caller
 * then gets an upload session, as the spec asks of a registry that cannot mount). */
async function tryMount(ctx: RegistryContext, request: FastifyRequest, name: string, mount: string, from: string | undefined): Promise<Digest | null> {
  if (from === undefined) return null;
  let digest: Digest;
  try {
    digest = checkDigest(mount);
    checkRepositoryName(from);
  } catch {
    return null;
  }
  const decision = await ctx.auth.check(request, [{ type: "repository", name: from, actions: ["pull"] }]);
  if (!decision.allowed) return null;
  if (!(await ctx.blobs.stat(digest))) return null;
  return ctx.repos.mountBlob(from, name, digest) ? digest : null;
}

export async function uploadStatus(ctx: RegistryContext, reply: FastifyReply, name: string, id: string): Promise<FastifyReply> {
  const size = await ctx.uploads.status(name, id);
  return accepted(ctx, reply.status(204), name, id, size);
}

export async function patchUpload(ctx: RegistryContext, request: FastifyRequest, reply: FastifyReply, name: string, id: string): Promise<FastifyReply> {
  const size = await ctx.uploads.append(name, id, chunkOf(ctx, request));
  return accepted(ctx, reply.status(202), name, id, size);
}

export async function finishUpload(ctx: RegistryContext, request: FastifyRequest, reply: FastifyReply, name: string, id: string): Promise<FastifyReply> {
  const digest = single(request.query as Query, "digest");
  if (digest === undefined) throw new RegistryError("DIGEST_INVALID", "finishing an upload needs ?digest=<digest of the whole blob>");
  const expected = checkDigest(digest);
  const info = await ctx.uploads.finish(name, id, expected, hasBody(request) ? chunkOf(ctx, request) : undefined);
  return created(ctx, reply, name, info.digest);
}

export async function cancelUpload(ctx: RegistryContext, reply: FastifyReply, name: string, id: string): Promise<FastifyReply> {
  await ctx.uploads.cancel(name, id);
  return reply.status(204).send();
}

function chunkOf(ctx: RegistryContext, request: FastifyRequest): Chunk {
  const length = checkBlobLength(ctx, request);
  const header = request.headers["content-range"];
  if (header === undefined) return { body: request.raw, length };
  const m = /^(?:bytes[ =])?(\d{1,16})-(\d{1,16})(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!m || Number(m[2]) < Number(m[1])) {
    throw new RegistryError("BLOB_UPLOAD_INVALID", `Content-Range ${JSON.stringify(header)} is not <start>-<end> with end >= start`, {
      status: 416,
      headers: { connection: "close" },
    });
  }
  return { body: request.raw, range: { start: Number(m[1]), end: Number(m[2]) }, length };
}

function checkBlobLength(ctx: RegistryContext, request: FastifyRequest): number | undefined {
  const length = declaredLength(request);
  if (length !== undefined && length > ctx.limits.blobBytes) {
    throw new RegistryError("SIZE_INVALID", `blob body is ${length} bytes; the limit is ${ctx.limits.blobBytes}`, {
      status: 413,
      headers: { connection: "close" },
    });
  }
  return length;
}

function digestAlgorithm(value: string | undefined): DigestAlgorithm {
  if (value === undefined || value === "sha256") return "sha256";
  if (value === "sha512") return "sha512";
  throw new RegistryError("DIGEST_INVALID", `digest-algorithm ${JSON.stringify(value)} is not supported; use sha256 or sha512`);
}

function accepted(ctx: RegistryContext, reply: FastifyReply, name: string, id: string, size: number): FastifyReply {
  return reply
    .header("location", uploadLocation(ctx.prefix, name, id))
    .header("range", rangeHeader(size))
    .header("docker-upload-uuid", id)
    .header("content-length", "0")
    .send();
}

function created(ctx: RegistryContext, reply: FastifyReply, name: string, digest: Digest): FastifyReply {
  return reply
    .status(201)
    .header("location", blobLocation(ctx.prefix, name, digest))
    .header("docker-content-digest", digest)
    .header("content-length", "0")
    .send();
}
