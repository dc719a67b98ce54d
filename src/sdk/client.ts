// The HTTP client of the control plane. Errors come back as the same typed error classes the server threw.
// Two transports, chosen by what starts fastest on the runtime: on Node, node:http (loading Node's fetch, undici,
// costs a client command more than the rest of its start); on Bun, its native fetch (its node:http is built on
// top and takes ~15 ms to load). Both pass the same tests (src/sdk/client.test.ts).
import { errorFromWire, UnavailableError } from "../core/errors.js";
import type { Digest } from "../core/schemas.js";

export interface ClientOptions {
  url: string;
  token?: string;
  /** Default: "fetch" on Bun, "http" (node:http) elsewhere. */
  transport?: Transport;
}

export type Transport = "http" | "fetch";

export type StreamItem = { type: "event"; event: unknown } | { type: "result"; result: unknown };

export interface InvokeOptions {
  version?: number;
  deployment?: string;
  /** Calls with the same key land on the same version while a traffic split is unchanged. */
  routingKey?: string;
}

export interface InvokeResponse {
  body: Buffer;
  contentType: string;
  version: number;
  image: string;
  /** The deployment pointer's revision the call resolved (null for a pinned version). */
  revision: number | null;
  invocation: string;
  container: string;
  durationMs: number;
  coldStart: unknown;
  /** The body parsed as JSON, when it is JSON. */
  json(): unknown;
}

export interface RequestInit {
  method?: string;
  body?: string | Uint8Array;
  headers?: Record<string, string>;
}

/** A response whose body has not been read yet. */
export interface ClientResponse {
  status: number;
  url: string;
  header(name: string): string | undefined;
  body: AsyncIterable<Uint8Array>;
}

export class Client {
  private readonly base: string;

  constructor(private readonly options: ClientOptions) {
    this.base = options.url.replace(/\/+$/, "");
  }

  /** The server's address, without a trailing slash. */
  get url(): string {
    return this.base;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}), ...extra };
  }

  async fetch(path: string, init: RequestInit = {}): Promise<ClientResponse> {
    const url = new URL(this.base + path);
    const send = (this.options.transport ?? (process.versions.bun ? "fetch" : "http")) === "fetch" ? viaFetch : viaNodeHttp;
    try {
      return await send(url, init.method ?? "GET", this.headers(init.headers), init.body);
    } catch (err) {
      throw new UnavailableError(`cannot reach the Slipway server at ${this.base}: ${reason(err)}; is \`slipway server\` running?`);
    }
  }

  async json<T>(path: string, init: RequestInit = {}): Promise<T> {
    const res = await this.fetch(path, init);
    return (await readJson(res)) as T;
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    return this.json<T>(path, { method: "POST", body: JSON.stringify(body ?? {}), headers: { "content-type": "application/json" } });
  }

  /** Which of these blobs the server lacks, in one round trip. */
  async missingBlobs(digests: Digest[]): Promise<Digest[]> {
    return (await this.post<{ missing: Digest[] }>("/api/v1/blobs/missing", { digests })).missing;
  }

  async putBlob(digest: Digest, data: Uint8Array): Promise<void> {
    const res = await this.fetch(`/api/v1/blobs/${digest}`, {
      method: "PUT",
      body: data,
      headers: { "content-type": "application/octet-stream" },
    });
    await readJson(res);
  }

  /** Uploads many small blobs in one request (each is verified by the server before any is stored). */
  async putBlobs(blobs: Array<{ digest: Digest; data: Uint8Array }>): Promise<void> {
    const head = Buffer.from(`${JSON.stringify({ blobs: blobs.map((b) => ({ digest: b.digest, size: b.data.length })) })}\n`);
    const res = await this.fetch("/api/v1/blobs", {
      method: "POST",
      body: Buffer.concat([head, ...blobs.map((b) => b.data)]),
      headers: { "content-type": "application/octet-stream" },
    });
    await readJson(res);
  }

  /** Starts a deploy and yields its progress events; the last item is the result (or an error is thrown). */
  deploy(request: unknown): AsyncGenerator<StreamItem> {
    return this.stream("/api/v1/deploy", request);
  }

  /** Builds an app's images without making a version; yields progress events, then the result. */
  build(request: unknown): AsyncGenerator<StreamItem> {
    return this.stream("/api/v1/build", request);
  }

  private async *stream(path: string, request: unknown): AsyncGenerator<StreamItem> {
    const res = await this.fetch(path, {
      method: "POST",
      body: JSON.stringify(request),
      headers: { "content-type": "application/json" },
    });
    if (res.status !== 200) {
      await readJson(res);
      return;
    }
    const decoder = new TextDecoder();
    let buffered = "";
    let finished = false;
    for await (const chunk of readStream(res.body, path)) {
      buffered += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!line.trim()) continue;
        const msg = JSON.parse(line) as { type: string; event?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown; details?: unknown } };
        if (msg.type === "error") throw errorFromWire(msg.error ?? {});
        if (msg.type === "result") finished = true;
        yield msg as StreamItem;
      }
    }
    if (!finished) throw new UnavailableError(`the server closed the ${path} stream before it finished`);
  }

  async invoke(app: string, fn: string, input: unknown, options: InvokeOptions = {}): Promise<InvokeResponse> {
    const query = new URLSearchParams();
    if (options.version !== undefined) query.set("version", String(options.version));
    if (options.deployment) query.set("deployment", options.deployment);
    if (options.routingKey !== undefined) query.set("key", options.routingKey);
    const isBytes = input instanceof Uint8Array;
    const res = await this.fetch(`/api/v1/apps/${encodeURIComponent(app)}/functions/${encodeURIComponent(fn)}/invoke?${query}`, {
      method: "POST",
      body: isBytes ? input : JSON.stringify(input ?? null),
      headers: { "content-type": isBytes ? "application/octet-stream" : "application/json" },
    });
    if (res.status !== 200) await readJson(res);
    const body = await readBody(res);
    const header = res.header;
    const contentType = header("content-type") ?? "application/octet-stream";
    const cold = header("slipway-cold-start");
    return {
      body,
      contentType,
      version: Number(header("slipway-version")),
      image: header("slipway-image-digest") ?? "",
      revision: header("slipway-revision") ? Number(header("slipway-revision")) : null,
      invocation: header("slipway-invocation") ?? "",
      container: header("slipway-container") ?? "",
      durationMs: Number(header("slipway-duration-ms")),
      coldStart: cold ? (JSON.parse(cold) as unknown) : null,
      json: () => JSON.parse(body.toString("utf8")) as unknown,
    };
  }
}

async function viaNodeHttp(url: URL, method: string, headers: Record<string, string>, body?: string | Uint8Array): Promise<ClientResponse> {
  const { request } = url.protocol === "https:" ? await import("node:https") : await import("node:http");
  if (body !== undefined) headers["content-length"] = String(Buffer.byteLength(body));
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) =>
      resolve({
        status: res.statusCode ?? 0,
        url: url.href,
        header: (name) => {
          const v = res.headers[name.toLowerCase()];
          return Array.isArray(v) ? v[0] : v;
        },
        body: res,
      }),
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function viaFetch(url: URL, method: string, headers: Record<string, string>, body?: string | Uint8Array): Promise<ClientResponse> {
  // Our bodies are never views of a SharedArrayBuffer, which is what the type leaves open.
  const res = await fetch(url, { method, headers, body: body as string | Uint8Array<ArrayBuffer> | undefined, redirect: "manual" });
  return { status: res.status, url: url.href, header: (name) => res.headers.get(name) ?? undefined, body: res.body ?? (async function* () {})() };
}

/** Why a request failed, in the words of the layer that knows (fetch wraps the socket's error in `cause`). */
function reason(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? cause.message : (err as Error).message;
}

async function readBody(res: ClientResponse): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of readStream(res.body, res.url)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function readJson(res: ClientResponse): Promise<unknown> {
  const text = (await readBody(res)).toString("utf8");
  let body: unknown = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (res.status >= 400) {
    const err = (body as { error?: unknown } | undefined)?.error;
    // Anything else on that address (another service, a proxy, or a route that is not Slipway's: a SLIPWAY_URL
    // with a path) answers without Slipway's error body, whose `error` is an object with a code.
    const slipways = typeof err === "object" && err !== null && typeof (err as { code?: unknown }).code === "string";
    throw errorFromWire(
      slipways
        ? (err as { code?: unknown; message?: unknown; details?: unknown })
        : { code: "unavailable", message: `${res.url} answered HTTP ${res.status} without a Slipway error: is SLIPWAY_URL a Slipway server?` },
    );
  }
  return body;
}

/** A response body whose connection breaks mid-stream (the server stopped) reads as `unavailable`, not a crash. */
async function* readStream(body: AsyncIterable<Uint8Array>, path: string): AsyncGenerator<Uint8Array> {
  try {
    yield* body;
  } catch (err) {
    throw new UnavailableError(`the server closed the ${path} stream before it finished (${(err as Error).message}); is it still running?`);
  }
}
