// Manifest endpoints: PUT (stored byte for byte, digest of the bytes received, everything it names checked to be in
// the repository), GET and HEAD by tag or digest (the stored bytes and media type, whatever the Accept header),
// DELETE by digest (the manifest and its tags) or by tag (the tag alone).
import type { FastifyReply, FastifyRequest } from "fastify";
import { newId } from "../core/ids.js";
import { digestOf, parseDigest, type Digest } from "../oci/digest.js";
import type { SizeMismatch } from "../store/repository-index.js";
import type { RegistryContext } from "./context.js";
import { RegistryError } from "./errors.js";
import { parseManifest } from "./manifest-parse.js";
import { checkDigest, checkTag, isDigestReference, isTag, manifestLocation } from "./paths.js";
import { readSmallBody } from "./request-body.js";

function resolve(ctx: RegistryContext, name: string, reference: string): Digest {
  if (isDigestReference(reference)) {
    const digest = checkDigest(reference);
    if (ctx.repos.manifest(name, digest)) return digest;
  } else if (isTag(reference)) {
    const digest = ctx.repos.resolveTag(name, reference);
    if (digest) return digest;
  }
  throw new RegistryError("MANIFEST_UNKNOWN", `manifest ${reference} is not in repository ${name}`, { detail: { name, reference } });
}

export async function getManifest(ctx: RegistryContext, request: FastifyRequest, reply: FastifyReply, name: string, reference: string): Promise<FastifyReply> {
  const digest = resolve(ctx, name, reference);
  const record = ctx.repos.manifest(name, digest)!;
  ctx.repos.touchManifest(name, digest);
  reply
    .status(200)
    .header("content-type", record.mediaType)
    .header("docker-content-digest", digest)
    .header("etag", `"${digest}"`)
    .header("content-length", String(record.size));
  if (request.method === "HEAD") return reply.send();
  return reply.send(await ctx.blobs.readBuffer(digest));
}

export async function putManifest(ctx: RegistryContext, request: FastifyRequest, reply: FastifyReply, name: string, reference: string): Promise<FastifyReply> {
  const byDigest = isDigestReference(reference);
  const pinned = byDigest ? checkDigest(reference) : null;
  const tags = extraTags(request, byDigest);
  if (!byDigest) tags.unshift(checkTag(reference));
  const bytes = await readSmallBody(request, ctx.limits.manifestBytes, "manifest");
  const digest = digestOf(bytes, pinned ? parseDigest(pinned).algorithm : "sha256");
  if (pinned && pinned !== digest) {
    throw new RegistryError("DIGEST_INVALID", `manifest bytes have digest ${digest}, not ${pinned}`, { detail: { expected: pinned, actual: digest } });
  }
  const parsed = parseManifest(bytes, request.headers["content-type"]);

  const refs = { repo: name, blobs: parsed.blobs, children: parsed.children };
  // Checked before the bytes are stored (a refused manifest leaves nothing behind), and again in the transaction
  // that records it (so a delete racing this push cannot leave a manifest naming something gone).
  refuseBroken(name, ctx.repos.checkManifestRefs(refs));
  // Held from before the bytes land until the record names them, so a collection running now leaves them be.
  const holder = newId("m");
  ctx.repos.hold(digest, holder);
  try {
    if (!(await ctx.blobs.stat(digest))) await ctx.blobs.put(bytes, digest);
    refuseBroken(
      name,
      ctx.repos.putManifestChecked({
        ...refs,
        digest,
        mediaType: parsed.mediaType,
        size: bytes.length,
        refs: [...parsed.blobs, ...parsed.children].map((r) => r.digest),
        artifactType: parsed.artifactType,
        subject: parsed.subject,
        annotations: parsed.annotations,
        tags,
      }),
    );
  } finally {
    ctx.repos.release(holder);
  }
  reply.status(201).header("location", manifestLocation(ctx.prefix, name, digest)).header("docker-content-digest", digest).header("content-length", "0");
  if (parsed.subject) reply.header("oci-subject", parsed.subject);
  if (byDigest && tags.length > 0) reply.header("oci-tag", tags.join(", "));
  return reply.send();
}

function refuseBroken(name: string, problems: { missing: Digest[]; wrongSize: SizeMismatch[] }): void {
  const { missing, wrongSize } = problems;
  if (missing.length > 0) {
    throw new RegistryError("MANIFEST_BLOB_UNKNOWN", `manifest names ${missing.length === 1 ? "a blob" : "blobs"} not in repository ${name}: ${missing.join(", ")}`, {
      detail: missing.map((digest) => ({ digest })),
    });
  }
  if (wrongSize.length > 0) {
    throw new RegistryError("MANIFEST_INVALID", `manifest gives the wrong size for ${wrongSize.map((w) => `${w.digest} (${w.actual} bytes, not ${w.declared})`).join(", ")}`, {
      detail: wrongSize,
    });
  }
}

/** Tags given as ?tag= on a PUT by digest (distribution-spec end-7b). */
function extraTags(request: FastifyRequest, byDigest: boolean): string[] {
  const raw = (request.query as Record<string, string | string[] | undefined>).tag;
  if (raw === undefined) return [];
  if (!byDigest) throw new RegistryError("MANIFEST_INVALID", "?tag= is only for a PUT by digest");
  const tags = Array.isArray(raw) ? raw : [raw];
  if (tags.length > 100) throw new RegistryError("MANIFEST_INVALID", `${tags.length} tags in one request; the limit is 100`, { status: 414 });
  return tags.map(checkTag);
}

export async function deleteManifest(ctx: RegistryContext, reply: FastifyReply, name: string, reference: string): Promise<FastifyReply> {
  if (isDigestReference(reference)) {
    const digest = checkDigest(reference);
    // A manifest a version runs stays: deleting it would break rollbacks to that version and every new container.
    const user = ctx.manifestInUse?.(name, digest);
    if (user) throw new RegistryError("DENIED", `manifest ${digest} is in use by ${user}; it cannot be deleted`, { detail: { name, reference } });
    if (!ctx.repos.deleteManifest(name, digest)) {
      throw new RegistryError("MANIFEST_UNKNOWN", `manifest ${digest} is not in repository ${name}`, { detail: { name, reference } });
    }
  } else if (!ctx.repos.deleteTag(name, checkTag(reference))) {
    throw new RegistryError("MANIFEST_UNKNOWN", `tag ${reference} is not in repository ${name}`, { detail: { name, reference } });
  }
  return reply.status(202).header("content-length", "0").send();
}
