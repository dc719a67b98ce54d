// Content discovery: tags of a repository, the catalog of repositories (only those the caller may see), and the
// referrers of a manifest. Each is paged: `n` asks for a page size (cut to the registry's limit), `last` continues
// after an entry, and a Link header with rel="next" is present exactly when more entries follow.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Digest } from "../oci/digest.js";
import { MediaType } from "../oci/media-types.js";
import type { RegistryContext } from "./context.js";
import { RegistryError } from "./errors.js";

type Query = Record<string, string | string[] | undefined>;

interface Page {
  n: number;
  last: string | undefined;
}

function pageOf(ctx: RegistryContext, request: FastifyRequest): Page {
  const query = request.query as Query;
  const rawN = Array.isArray(query.n) ? query.n[0] : query.n;
  const rawLast = Array.isArray(query.last) ? query.last[0] : query.last;
  let n = ctx.limits.pageSize;
  if (rawN !== undefined) {
    if (!/^\d{1,12}$/.test(rawN)) {
      throw new RegistryError("UNSUPPORTED", `n=${JSON.stringify(rawN)} is not a page size (a whole number)`, { status: 400, detail: { n: rawN } });
    }
    // A larger n is answered with a full page and a Link to the rest, which the spec allows instead of n entries.
    n = Math.min(Number(rawN), ctx.limits.pageSize);
  }
  return { n, last: rawLast === "" ? undefined : rawLast };
}

/** Fetches one more than a page to learn whether a next page exists. */
function paged<T>(page: Page, fetch: (limit: number) => T[]): { items: T[]; more: boolean } {
  if (page.n === 0) return { items: [], more: false };
  const items = fetch(page.n + 1);
  return { items: items.slice(0, page.n), more: items.length > page.n };
}

function nextLink(path: string, n: number, last: string, extra = ""): string {
  return `<${path}?n=${n}&last=${encodeURIComponent(last)}${extra}>; rel="next"`;
}

function json(reply: FastifyReply, body: unknown, contentType = "application/json"): FastifyReply {
  // A Buffer, so fastify adds no charset parameter (the referrers API's Content-Type is exactly the index type).
  const bytes = Buffer.from(JSON.stringify(body));
  return reply.status(200).header("content-type", contentType).header("content-length", String(bytes.length)).send(bytes);
}

export async function listTags(ctx: RegistryContext, request: FastifyRequest, reply: FastifyReply, name: string): Promise<FastifyReply> {
  if (!ctx.repos.repositoryExists(name)) throw new RegistryError("NAME_UNKNOWN", `repository ${name} is not known to this registry`, { detail: { name } });
  const page = pageOf(ctx, request);
  const { items, more } = paged(page, (limit) => ctx.repos.listTags(name, limit, page.last));
  if (more) reply.header("link", nextLink(`${ctx.prefix}/${name}/tags/list`, page.n, items[items.length - 1]!));
  return json(reply, { name, tags: items });
}

export async function listCatalog(ctx: RegistryContext, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const page = pageOf(ctx, request);
  const visible = ctx.auth.catalogFilter(request);
  const { items, more } = paged(page, (limit) => (visible === "all" ? ctx.repos.listRepositories(limit, page.last) : visibleRepositories(ctx, visible, limit, page.last)));
  if (more) reply.header("link", nextLink(`${ctx.prefix}/_catalog`, page.n, items[items.length - 1]!));
  return json(reply, { repositories: items });
}

/** Up to `limit` repository names after `last` that pass `visible`, read from the index in batches. */
function visibleRepositories(ctx: RegistryContext, visible: (repository: string) => boolean, limit: number, last: string | undefined): string[] {
  const batchSize = Math.max(limit, 256);
  const found: string[] = [];
  for (let cursor = last; ; ) {
    const batch = ctx.repos.listRepositories(batchSize, cursor);
    for (const name of batch) {
      if (!visible(name)) continue;
      found.push(name);
      if (found.length === limit) return found;
    }
    if (batch.length < batchSize) return found;
    cursor = batch[batch.length - 1];
  }
}

export async function listReferrers(ctx: RegistryContext, request: FastifyRequest, reply: FastifyReply, name: string, subject: Digest): Promise<FastifyReply> {
  const query = request.query as Query;
  const artifactType = Array.isArray(query.artifactType) ? query.artifactType[0] : query.artifactType;
  const page = pageOf(ctx, request);
  const { items, more } = paged(page, (limit) => ctx.repos.referrers(name, subject, { artifactType, n: limit, last: page.last }));
  if (artifactType !== undefined) reply.header("oci-filters-applied", "artifactType");
  if (more) {
    const filter = artifactType !== undefined ? `&artifactType=${encodeURIComponent(artifactType)}` : "";
    reply.header("link", nextLink(`${ctx.prefix}/${name}/referrers/${subject}`, page.n, items[items.length - 1]!.digest, filter));
  }
  return json(
    reply,
    {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: items.map((m) => ({
        mediaType: m.mediaType,
        digest: m.digest,
        size: m.size,
        ...(m.artifactType ? { artifactType: m.artifactType } : {}),
        ...(m.annotations ? { annotations: m.annotations } : {}),
      })),
    },
    MediaType.ociIndex,
  );
}
