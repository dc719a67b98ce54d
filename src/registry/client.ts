// The client for other OCI registries (the pull side): resolves a reference to its top-level digest with the full
// Accept list, picks the platform's manifest from an index, and streams blobs into Slipway's store, verified.
// Everything it returns was checked against a digest; nothing unverified is stored.
import { Readable, Transform } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { InvalidError, NotFoundError, DeniedError, UnavailableError } from "../core/errors.js";
import { digestOf, isDigest, parseDigest, type Digest } from "../oci/digest.js";
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform } from "../oci/manifest.js";
import { INDEX_MEDIA_TYPES, MediaType } from "../oci/media-types.js";
import { DOCKER_HUB, formatReference, normalizeRegistryHost, parseReference, pinReference, type ImageReference } from "../oci/reference.js";
import type { BlobInfo, BlobIngest, BlobRead, BlobStat } from "../store/blob-store.js";
import { ClientAuth, describeFetchError, type RegistryCredentials } from "./client-auth.js";

export type { RegistryCredentials };

export interface RegistryClientOptions {
  /** Credentials by registry host as written in references: `docker.io`, `ghcr.io`, `127.0.0.1:5000`. */
  auth?: Record<string, RegistryCredentials>;
  /** Hosts reached over plain http. Loopback hosts (`localhost`, 127.0.0.0/8, `[::1]`) always are; others use https. */
  insecureHosts?: string[];
  /** The platform picked from multi-platform images; linux/amd64 unless set. */
  platform?: Platform;
  /** Limit for each request up to its response headers (blob bodies may take longer). */
  timeoutMs?: number;
  userAgent?: string;
}

/** A verified document: its descriptor (digest of the bytes), the bytes as served, and the parsed form. */
export interface Fetched<T> {
  descriptor: Descriptor;
  bytes: Buffer;
  parsed: T;
}

export interface ResolvedImage {
  /** The reference as asked for, normalised. */
  reference: ImageReference;
  /** The top-level digest the reference names now: an index for multi-platform images. Pin versions to this. */
  digest: Digest;
  mediaType: string;
  /** `reference` pinned to `digest`: `docker.io/library/nginx:1.25@sha256:…`. */
  pinned: string;
  /** The top-level index, when there is one. */
  index?: Fetched<ImageIndex>;
  /** The chosen platform's image manifest (the top-level document itself for single-platform images). */
  manifest: Fetched<ImageManifest>;
  platform: Platform;
  config: Fetched<ImageConfig>;
}

/** Where resolve keeps what it fetched and looks first: with a store, a digest-pinned reference needs no network. */
export type DocumentStore = BlobStat & BlobRead & BlobIngest;

export const MANIFEST_ACCEPT: readonly string[] = [MediaType.ociIndex, MediaType.dockerManifestList, MediaType.ociManifest, MediaType.dockerManifest];
const SCHEMA1_TYPES = ["application/vnd.docker.distribution.manifest.v1+json", "application/vnd.docker.distribution.manifest.v1+prettyjws"];
const MAX_MANIFEST_BYTES = 4 << 20;
const MAX_CONFIG_BYTES = 16 << 20;
const MAX_INDEX_DEPTH = 4;
const MAX_REDIRECTS = 5;
const DEFAULT_PLATFORM: Platform = { os: "linux", architecture: "amd64" };

interface Target {
  ref: ImageReference;
  /** `repository:<name>:pull`, the token scope of every request this client makes. */
  scope: string;
}

export class RegistryClient {
  private readonly auth: ClientAuth;
  private readonly credentials = new Map<string, RegistryCredentials>();
  private readonly insecure: Set<string>;
  private readonly platform: Platform;
  private readonly timeoutMs: number;
  private readonly userAgent: string;

  constructor(options: RegistryClientOptions = {}) {
    for (const [host, creds] of Object.entries(options.auth ?? {})) this.credentials.set(normalizeRegistryHost(host), creds);
    this.insecure = new Set((options.insecureHosts ?? []).map(normalizeRegistryHost));
    this.platform = options.platform ?? DEFAULT_PLATFORM;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.userAgent = options.userAgent ?? "slipway";
    this.auth = new ClientAuth({
      credentials: (registry) => this.credentials.get(registry),
      allowHttp: (host) => this.allowsHttp(host),
      timeoutMs: this.timeoutMs,
      userAgent: this.userAgent,
    });
  }

  /**
   * Resolves a reference to its top-level digest and the platform's manifest and config. A tag is pinned to the
   * digest of what the registry serves for it (the index for multi-platform images, case EP1); a reference with a
   * digest is fetched by digest. With `store`, documents are read from it when present and kept in it.
   */
  async resolve(reference: string | ImageReference, params: { store?: DocumentStore } = {}): Promise<ResolvedImage> {
    const ref = typeof reference === "string" ? parseReference(reference) : reference;
    const target = this.target(ref);
    const { store } = params;

    let top: { bytes: Buffer; digest: Digest; contentType: string };
    if (ref.digest) {
      top = await this.manifestByDigest(target, ref.digest, undefined, store);
    } else {
      top = await this.manifestByTag(target, ref.tag ?? "latest", store);
    }
    const topDoc = classify(top.bytes, top.contentType, `${formatReference(ref)}`);
    const topDescriptor: Descriptor = { mediaType: topDoc.mediaType, digest: top.digest, size: top.bytes.length };

    let index: Fetched<ImageIndex> | undefined;
    let doc = topDoc;
    let descriptor = topDescriptor;
    let bytes = top.bytes;
    for (let depth = 0; doc.kind === "index"; depth++) {
      if (depth >= MAX_INDEX_DEPTH) throw new InvalidError(`${formatReference(ref)}: indexes nest deeper than ${MAX_INDEX_DEPTH}`, { reference: formatReference(ref) });
      if (depth === 0) index = { descriptor, bytes, parsed: doc.index };
      const child = this.choosePlatform(doc.index, ref, descriptor.digest);
      const fetched = await this.manifestByDigest(target, child.digest, child.size, store);
      doc = classify(fetched.bytes, fetched.contentType || child.mediaType, `${formatReference(ref)} (${child.digest})`);
      descriptor = { ...child, mediaType: doc.mediaType };
      bytes = fetched.bytes;
    }
    const manifest: Fetched<ImageManifest> = { descriptor, bytes, parsed: doc.manifest };
    const config = await this.fetchConfig(target, manifest, store);
    if (!index) this.checkPlatform(config.parsed, ref);

    return {
      reference: ref,
      digest: top.digest,
      mediaType: topDoc.mediaType,
      pinned: formatReference(pinReference(ref, top.digest)),
      ...(index ? { index } : {}),
      manifest,
      platform: { os: config.parsed.os, architecture: config.parsed.architecture, ...(variantOf(config.parsed) ? { variant: variantOf(config.parsed)! } : {}) },
      config,
    };
  }

  /**
   * Streams a blob of the reference's repository into `into`, verified against the descriptor's digest and size;
   * a blob already there costs nothing. A registry that serves other bytes gets the blob refused, nothing stored.
   */
  async fetchBlob(reference: string | ImageReference, descriptor: Pick<Descriptor, "digest" | "size">, into: BlobStat & BlobIngest): Promise<BlobInfo> {
    const ref = typeof reference === "string" ? parseReference(reference) : reference;
    const present = await into.stat(descriptor.digest);
    if (present && present.size === descriptor.size) return present;
    const target = this.target(ref);
    const res = await this.get(target, `blobs/${descriptor.digest}`, {});
    if (!res.ok) await this.fail(res, target, `blob ${descriptor.digest}`);
    const declared = res.headers.get("content-length");
    if (declared !== null && Number(declared) !== descriptor.size) {
      await res.body?.cancel().catch(() => undefined);
      throw new InvalidError(
        `registry ${ref.registry} serves blob ${descriptor.digest} of ${ref.repository} with ${declared} bytes; the manifest says ${descriptor.size}`,
        { registry: ref.registry, digest: descriptor.digest, size: descriptor.size, served: Number(declared) },
      );
    }
    try {
      return await into.putStream(limitBytes(bodyStream(res, this.timeoutMs), descriptor.size), { digest: descriptor.digest, size: descriptor.size });
    } catch (err) {
      throw this.blobError(err, ref, descriptor);
    }
  }

  private blobError(err: unknown, ref: ImageReference, descriptor: Pick<Descriptor, "digest" | "size">): Error {
    const details = { registry: ref.registry, repository: ref.repository, digest: descriptor.digest };
    if (err instanceof InvalidError || (err as { code?: string }).code === "ERR_SLIPWAY_TOO_LONG") {
      return new InvalidError(
        `registry ${ref.registry} served blob ${descriptor.digest} of ${ref.repository} with other content (${(err as Error).message}); nothing was stored`,
        details,
      );
    }
    return new UnavailableError(`download of blob ${descriptor.digest} from ${ref.registry} broke off: ${describeFetchError(err)}`, details, { cause: err });
  }

  private target(ref: ImageReference): Target {
    return { ref, scope: `repository:${ref.repository}:pull` };
  }

  private async manifestByTag(target: Target, tag: string, store: DocumentStore | undefined): Promise<{ bytes: Buffer; digest: Digest; contentType: string }> {
    const path = `manifests/${tag}`;
    if (store) {
      // A HEAD names the digest; when the store has it, the document itself need not travel again.
      const head = await this.request(target, "HEAD", path, { accept: MANIFEST_ACCEPT.join(", ") });
      const named = head.headers.get("docker-content-digest");
      if (head.ok && named && isDigest(named)) {
        const local = await this.fromStore(store, named as Digest);
        if (local) return { bytes: local, digest: named as Digest, contentType: head.headers.get("content-type") ?? "" };
      }
    }
    const res = await this.get(target, path, { accept: MANIFEST_ACCEPT.join(", ") });
    if (!res.ok) await this.fail(res, target, `manifest ${JSON.stringify(tag)}`);
    const bytes = await readLimited(res, MAX_MANIFEST_BYTES, `manifest ${JSON.stringify(tag)} of ${target.ref.registry}/${target.ref.repository}`, this.timeoutMs);
    const named = res.headers.get("docker-content-digest");
    const algorithm = named && isDigest(named) ? parseDigest(named).algorithm : "sha256";
    const digest = digestOf(bytes, algorithm);
    if (named && isDigest(named) && named !== digest) {
      throw new InvalidError(`registry ${target.ref.registry} says ${target.ref.repository}:${tag} is ${named}, but the bytes it sent hash to ${digest}`, {
        registry: target.ref.registry,
        tag,
      });
    }
    if (store) await store.put(bytes, digest);
    return { bytes, digest, contentType: res.headers.get("content-type") ?? "" };
  }

  private async manifestByDigest(
    target: Target,
    digest: Digest,
    size: number | undefined,
    store: DocumentStore | undefined,
  ): Promise<{ bytes: Buffer; digest: Digest; contentType: string }> {
    const local = store ? await this.fromStore(store, digest) : null;
    if (local) return { bytes: local, digest, contentType: "" };
    const res = await this.get(target, `manifests/${digest}`, { accept: MANIFEST_ACCEPT.join(", ") });
    if (!res.ok) await this.fail(res, target, `manifest ${digest}`);
    const bytes = await readLimited(res, MAX_MANIFEST_BYTES, `manifest ${digest} of ${target.ref.registry}/${target.ref.repository}`, this.timeoutMs);
    this.verify(bytes, digest, size, target, "manifest");
    if (store) await store.put(bytes, digest);
    return { bytes, digest, contentType: res.headers.get("content-type") ?? "" };
  }

  private async fetchConfig(target: Target, manifest: Fetched<ImageManifest>, store: DocumentStore | undefined): Promise<Fetched<ImageConfig>> {
    const descriptor = manifest.parsed.config;
    const where = `config ${descriptor.digest} of ${formatReference(target.ref)}`;
    if (descriptor.size > MAX_CONFIG_BYTES) throw new InvalidError(`${where} is ${descriptor.size} bytes, more than the ${MAX_CONFIG_BYTES} allowed`, { digest: descriptor.digest });
    let bytes = store ? await this.fromStore(store, descriptor.digest) : null;
    if (!bytes) {
      const res = await this.get(target, `blobs/${descriptor.digest}`, {});
      if (!res.ok) await this.fail(res, target, `config blob ${descriptor.digest}`);
      bytes = await readLimited(res, MAX_CONFIG_BYTES, where, this.timeoutMs);
      this.verify(bytes, descriptor.digest, descriptor.size, target, "config blob");
      if (store) await store.put(bytes, descriptor.digest);
    }
    const parsed = parseConfig(bytes, where);
    const layers = manifest.parsed.layers.length;
    if (parsed.rootfs.diff_ids.length !== layers) {
      throw new InvalidError(`${where} lists ${parsed.rootfs.diff_ids.length} diff_ids for ${layers} layers`, { digest: descriptor.digest });
    }
    return { descriptor, bytes, parsed };
  }

  private verify(bytes: Buffer, digest: Digest, size: number | undefined, target: Target, what: string): void {
    const actual = digestOf(bytes, parseDigest(digest).algorithm);
    if (actual !== digest || (size !== undefined && size !== bytes.length)) {
      throw new InvalidError(
        `registry ${target.ref.registry} served ${what} ${digest} of ${target.ref.repository} with other content (${actual}, ${bytes.length} bytes); refused`,
        { registry: target.ref.registry, digest, actual },
      );
    }
  }

  private async fromStore(store: DocumentStore, digest: Digest): Promise<Buffer | null> {
    if (!(await store.stat(digest))) return null;
    return store.readBuffer(digest);
  }

  private choosePlatform(index: ImageIndex, ref: ImageReference, indexDigest: Digest): Descriptor {
    const want = this.platform;
    const matches = index.manifests.filter(
      (m) => m.platform?.os === want.os && m.platform.architecture === want.architecture && (want.variant === undefined || m.platform.variant === want.variant),
    );
    // Prefer an entry without a variant, then the first: amd64 variants (v2, v3) are refinements of the same ABI.
    const chosen = matches.find((m) => !m.platform?.variant) ?? matches[0];
    if (!chosen) {
      const offered = index.manifests
        .map((m) => (m.platform ? platformText(m.platform) : null))
        .filter((p): p is string => p !== null && p !== "unknown/unknown");
      throw new NotFoundError(
        `${formatReference(ref)} (index ${indexDigest}) has no ${platformText(want)} image; it has ${offered.length ? offered.join(", ") : "no platform images"}`,
        { reference: formatReference(ref), platform: platformText(want), offered },
      );
    }
    return chosen;
  }

  private checkPlatform(config: ImageConfig, ref: ImageReference): void {
    const want = this.platform;
    if (config.os !== want.os || config.architecture !== want.architecture) {
      throw new InvalidError(
        `${formatReference(ref)} is a ${config.os}/${config.architecture} image; Slipway runs ${platformText(want)} here`,
        { reference: formatReference(ref), os: config.os, architecture: config.architecture },
      );
    }
  }

  // --- HTTP ------------------------------------------------------------------------------------------------------

  private allowsHttp(host: string): boolean {
    const h = host.toLowerCase();
    const name = h.startsWith("[") ? h.slice(0, h.indexOf("]") + 1) : h.split(":")[0]!;
    return name === "localhost" || name === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(name) || this.insecure.has(h) || this.insecure.has(name);
  }

  /** The API root of a registry: http for loopback and insecure hosts, https otherwise. */
  endpoint(registry: string): string {
    // Docker Hub's API lives on another host than its name in references.
    const host = registry === DOCKER_HUB ? "registry-1.docker.io" : registry;
    return `${this.allowsHttp(host) ? "http" : "https"}://${host}/v2/`;
  }

  private get(target: Target, path: string, headers: Record<string, string>): Promise<Response> {
    return this.request(target, "GET", path, headers);
  }

  /** One request with the token dance: a known token up front, one retry after answering a 401. */
  private async request(target: Target, method: "GET" | "HEAD", path: string, headers: Record<string, string>): Promise<Response> {
    const url = new URL(`${target.ref.repository}/${path}`, this.endpoint(target.ref.registry));
    let authorization = await this.auth.preemptive(target.ref.registry, target.scope);
    let res = await this.send(url, method, headers, authorization, target);
    if (res.status !== 401) return res;
    await res.body?.cancel().catch(() => undefined);
    authorization = await this.auth.answer(target.ref.registry, target.scope, res.headers.get("www-authenticate"), authorization);
    res = await this.send(url, method, headers, authorization, target);
    if (res.status === 401) {
      await res.body?.cancel().catch(() => undefined);
      throw this.auth.refused(target.ref.registry, `registry ${target.ref.registry} (repository ${target.ref.repository})`);
    }
    return res;
  }

  /** Follows redirects by hand: storage backends redirect blob GETs, and credentials must not follow them elsewhere. */
  private async send(url: URL, method: string, headers: Record<string, string>, authorization: string | undefined, target: Target): Promise<Response> {
    let current = url;
    for (let hop = 0; ; hop++) {
      const sameOrigin = current.origin === url.origin;
      const h: Record<string, string> = { "user-agent": this.userAgent, ...headers };
      if (authorization && sameOrigin) h.authorization = authorization;
      let res: Response;
      // The limit covers the wait for headers only: a large blob may stream for longer (bodyStream watches stalls).
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new DOMException("timed out", "TimeoutError")), this.timeoutMs);
      try {
        res = await fetch(current, { method, headers: h, redirect: "manual", signal: controller.signal });
      } catch (err) {
        const reason = controller.signal.aborted ? `no answer within ${this.timeoutMs} ms` : describeFetchError(err);
        throw new UnavailableError(`cannot reach registry ${target.ref.registry} (${current.origin}): ${reason}`, { registry: target.ref.registry }, { cause: err });
      } finally {
        clearTimeout(timer);
      }
      const location = res.headers.get("location");
      if (res.status < 300 || res.status >= 400 || res.status === 304 || !location) return res;
      await res.body?.cancel().catch(() => undefined);
      if (hop >= MAX_REDIRECTS) throw new UnavailableError(`registry ${target.ref.registry} redirected more than ${MAX_REDIRECTS} times`, { registry: target.ref.registry });
      const next = new URL(location, current);
      if (next.protocol !== "https:" && !(next.protocol === "http:" && this.allowsHttp(next.host))) {
        throw new UnavailableError(`registry ${target.ref.registry} redirected to ${next.origin}, which is not https`, { registry: target.ref.registry });
      }
      current = next;
    }
  }

  /** Turns a failed response into the matching error, with the registry's own error text when it sent one. */
  private async fail(res: Response, target: Target, what: string): Promise<never> {
    const text = await res.text().catch(() => "");
    const registryErrors = parseErrorBody(text);
    const said = registryErrors ? ` (${registryErrors})` : "";
    const where = `${target.ref.registry}/${target.ref.repository}`;
    const details = { registry: target.ref.registry, repository: target.ref.repository, status: res.status };
    if (res.status === 404) {
      if (!registryErrors) {
        throw new NotFoundError(`${where}: ${what} not found (HTTP 404 without a registry error body: is ${target.ref.registry} an OCI registry?)`, details);
      }
      throw new NotFoundError(`${where}: ${what} not found${said}`, details);
    }
    if (res.status === 403) throw new DeniedError(`registry ${target.ref.registry} denied access to ${what} of ${target.ref.repository}${said}`, details);
    if (res.status === 429) {
      throw new UnavailableError(`registry ${target.ref.registry} is rate limiting pulls${res.headers.get("retry-after") ? `; retry after ${res.headers.get("retry-after")} s` : ""}${said}`, details);
    }
    throw new UnavailableError(`registry ${target.ref.registry} answered HTTP ${res.status} for ${what} of ${target.ref.repository}${said}`, details);
  }
}

// --- documents -------------------------------------------------------------------------------------------------

type Classified =
  | { kind: "index"; mediaType: string; index: ImageIndex }
  | { kind: "manifest"; mediaType: string; manifest: ImageManifest };

/** Parses a manifest or index and checks the fields Slipway relies on, naming the document on failure. */
function classify(bytes: Buffer, contentType: string, where: string): Classified {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(bytes.toString("utf8")) as Record<string, unknown>;
  } catch {
    throw new InvalidError(`${where}: the manifest is not JSON`, { where });
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new InvalidError(`${where}: the manifest is not a JSON object`, { where });
  const headerType = contentType.split(";")[0]!.trim();
  const mediaType = typeof json.mediaType === "string" ? json.mediaType : headerType;
  if (SCHEMA1_TYPES.includes(mediaType) || json.schemaVersion === 1) {
    throw new InvalidError(`${where} is a Docker schema 1 manifest, which Slipway does not pull; push the image again with a current client`, { where });
  }
  if (json.schemaVersion !== 2) throw new InvalidError(`${where}: schemaVersion is ${JSON.stringify(json.schemaVersion)}, expected 2`, { where });
  const isIndex = INDEX_MEDIA_TYPES.includes(mediaType) || (!json.config && Array.isArray(json.manifests));
  if (isIndex) {
    if (!Array.isArray(json.manifests)) throw new InvalidError(`${where}: the index has no manifests list`, { where });
    const manifests = json.manifests.map((d, i) => checkDescriptor(d, `${where}: manifests[${i}]`));
    return { kind: "index", mediaType: mediaType || MediaType.ociIndex, index: { ...(json as object), schemaVersion: 2, mediaType, manifests } as ImageIndex };
  }
  if (mediaType && !MANIFEST_ACCEPT.includes(mediaType)) {
    throw new InvalidError(`${where} has media type ${JSON.stringify(mediaType)}, which is not an image manifest or index`, { where, mediaType });
  }
  const config = checkDescriptor(json.config, `${where}: config`);
  if (!Array.isArray(json.layers)) throw new InvalidError(`${where}: the manifest has no layers list`, { where });
  const layers = json.layers.map((d, i) => checkDescriptor(d, `${where}: layers[${i}]`));
  return {
    kind: "manifest",
    mediaType: mediaType || MediaType.ociManifest,
    manifest: { ...(json as object), schemaVersion: 2, mediaType: mediaType || MediaType.ociManifest, config, layers } as ImageManifest,
  };
}

function checkDescriptor(value: unknown, where: string): Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (!d || typeof d !== "object") throw new InvalidError(`${where} is not a descriptor`, { where });
  if (typeof d.mediaType !== "string") throw new InvalidError(`${where} has no mediaType`, { where });
  if (typeof d.digest !== "string" || !isDigest(d.digest)) throw new InvalidError(`${where} has an invalid digest ${JSON.stringify(d.digest)}`, { where });
  if (typeof d.size !== "number" || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new InvalidError(`${where} has an invalid size ${JSON.stringify(d.size)}`, { where });
  }
  return d as Descriptor;
}

function parseConfig(bytes: Buffer, where: string): ImageConfig {
  let json: Partial<ImageConfig>;
  try {
    json = JSON.parse(bytes.toString("utf8")) as Partial<ImageConfig>;
  } catch {
    throw new InvalidError(`${where} is not JSON`, { where });
  }
  const diffIds = json?.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || !diffIds.every((d) => typeof d === "string" && isDigest(d))) {
    throw new InvalidError(`${where} has no valid rootfs.diff_ids`, { where });
  }
  if (typeof json.os !== "string" || typeof json.architecture !== "string") throw new InvalidError(`${where} names no os and architecture`, { where });
  return { ...json, config: json.config ?? {}, history: json.history ?? [] } as ImageConfig;
}

function variantOf(config: ImageConfig): string | undefined {
  const v = (config as { variant?: unknown }).variant;
  return typeof v === "string" ? v : undefined;
}

function platformText(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

/** The registry's error body, `{"errors":[{"code","message"}]}`, as one line; null when it is not one. */
function parseErrorBody(text: string): string | null {
  try {
    const body = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
    if (!Array.isArray(body.errors) || body.errors.length === 0) return null;
    return body.errors.map((e) => [e.code, e.message].filter(Boolean).join(": ")).join("; ");
  } catch {
    return null;
  }
}

// --- bodies ----------------------------------------------------------------------------------------------------

/** The response body as a stream that fails when no byte arrives for `idleMs` (a stalled download never hangs). */
function bodyStream(res: Response, idleMs: number): Readable {
  if (!res.body) return Readable.from([]);
  const stream = Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>);
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stream.destroy(new UnavailableError(`the download stalled: no data for ${idleMs} ms`)), idleMs);
  };
  arm();
  stream.on("data", arm);
  stream.once("close", () => clearTimeout(timer));
  return stream;
}

async function readLimited(res: Response, limit: number, what: string, idleMs: number): Promise<Buffer> {
  const declared = res.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    await res.body?.cancel().catch(() => undefined);
    throw new InvalidError(`${what} is ${declared} bytes, more than the ${limit} allowed`, { limit });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of bodyStream(res, idleMs)) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new InvalidError(`${what} is more than the ${limit} bytes allowed`, { limit });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Fails the stream as soon as it carries more than `size` bytes, so a lying registry cannot fill the disk. */
function limitBytes(source: Readable, size: number): Readable {
  let seen = 0;
  const limiter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > size) {
        const err = new Error(`more than the ${size} bytes expected`) as Error & { code: string };
        err.code = "ERR_SLIPWAY_TOO_LONG";
        done(err);
        return;
      }
      done(null, chunk);
    },
  });
  source.on("error", (err) => limiter.destroy(err));
  // pipe() leaves the source open when the limiter fails; the connection must not linger.
  limiter.once("close", () => source.destroy());
  return source.pipe(limiter);
}
