// Blob endpoints: GET and HEAD (with single byte ranges) and DELETE. A blob is visible in a repository only through
// that repository's link, and only once its bytes are in the store.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Digest } from "../oci/digest.js";
import { sendBlobBody } from "./blob-body.js";
import type { RegistryContext } from "./context.js";
import { RegistryError } from "./errors.js";

export async function getBlob(ctx: RegistryContext, request: FastifyRequest, reply: FastifyReply, name: string, digest: Digest): Promise<FastifyReply> {
  const link = ctx.repos.blobLink(name, digest);
  const info = link ? await ctx.blobs.stat(digest) : null;
  if (!link || !info) throw new RegistryError("BLOB_UNKNOWN", `blob ${digest} is not in repository ${name}`, { detail: { digest } });
  ctx.repos.touchBlobLink(name, digest, link.accessedAt);
  reply
    .header("docker-content-digest", digest)
    .header("etag", `"${digest}"`)
    .header("accept-ranges", "bytes")
    .header("cache-control", "max-age=31536000")
    .header("content-type", "application/octet-stream");
  const range = parseRange(request.headers.range, info.size);
  if (range === "unsatisfiable") {
    throw new RegistryError("SIZE_INVALID", `range ${request.headers.range} is outside the blob's ${info.size} bytes`, {
      status: 416,
      headers: { "content-range": `bytes */${info.size}` },
    });
  }
  if (range) {
    reply.status(206).header("content-range", `bytes ${range.start}-${range.end}/${info.size}`).header("content-length", String(range.end - range.start + 1));
  } else {
    reply.status(200).header("content-length", String(info.size));
  }
  if (request.method === "HEAD") return reply.send();
  // Garbage collection may have taken it since the stat; nothing is sent yet, so this is still a clean 404.
  const file = await ctx.blobs.openFile(digest);
  if (!file) throw new RegistryError("BLOB_UNKNOWN", `blob ${digest} is not in repository ${name}`, { detail: { digest } });
  await sendBlobBody(reply, file, range?.start ?? 0, range?.end ?? info.size - 1);
  return reply;
}

export async function deleteBlob(ctx: RegistryContext, reply: FastifyReply, name: string, digest: Digest): Promise<FastifyReply> {
  // The bytes stay until garbage collection finds no repository linking them.
  if (!ctx.repos.unlinkBlob(name, digest)) throw new RegistryError("BLOB_UNKNOWN", `blob ${digest} is not in repository ${name}`, { detail: { digest } });
  return reply.status(202).header("content-length", "0").send();
}

/**
 * A single `bytes=` range (RFC 9110 §14): null for none or forms served whole (several ranges, other units),
 * "unsatisfiable" when it starts past the end. A malformed range is ignored, as the RFC asks.
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | "unsatisfiable" {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return null;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(size - suffix, 0), end: size - 1 };
  }
  const start = Number(m[1]);
  if (m[2] !== "" && Number(m[2]) < start) return null;
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return "unsatisfiable";
  return { start, end };
}
