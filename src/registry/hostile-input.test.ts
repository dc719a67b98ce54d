// Hostile input against a listening registry: each request gets the spec's error and changes nothing (no
// repository, link, manifest, tag, blob, upload or ingest file appears or disappears).
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MediaType } from "../oci/media-types.js";
import { listen, openRegistry, type TestRegistry } from "../../test/registry-support.js";
import { content, descriptorOf, imageIndex, pushBlob, pushImage, sampleImage, type Send } from "../../test/registry-kit.js";

let registry: TestRegistry;
let base: string;
let send: Send;

beforeAll(async () => {
  registry = await openRegistry({ limits: { pageSize: 50 } });
  base = await listen(registry);
  send = async ({ method, path, headers, body }) => {
    const res = await fetch(base + path, { method, headers: { authorization: registry.bearer, ...headers }, body: body as BodyInit | undefined });
    const bytes = Buffer.from(await res.arrayBuffer());
    return { status: res.status, headers: Object.fromEntries(res.headers), body: bytes, json: <T>() => JSON.parse(bytes.toString()) as T };
  };
  const image = sampleImage("hostile");
  await pushImage(send, "hostile/app", "v1", image);
  for (let i = 0; i < 60; i++) await send({ method: "PUT", path: `/v2/hostile/app/manifests/t${String(i).padStart(2, "0")}`, headers: { "content-type": MediaType.ociManifest }, body: image.manifest.bytes });
});
afterAll(async () => registry?.close());

/** Everything observable about the registry's state. */
async function state(): Promise<string> {
  const blobs: string[] = [];
  for await (const b of registry.blobs.list()) blobs.push(`${b.digest}:${b.size}`);
  const writers = (await registry.blobs.listWriters()).map((w) => `${w.id}:${w.size}`);
  const snap = registry.repos.snapshot();
  const strip = <T extends Record<string, unknown>>(rows: T[]) => rows.map(({ accessedAt: _a, ...rest }) => JSON.stringify(rest)).sort();
  return JSON.stringify({
    repos: registry.repos.listRepositories(1000),
    manifests: strip(snap.manifests),
    refs: strip(snap.refs),
    tags: strip(snap.tags),
    links: strip(snap.links),
    holds: strip(snap.holds),
    uploads: registry.repos.listUploads().map((u) => u.id).sort(),
    blobs: blobs.sort(),
    writers: writers.sort(),
  });
}

async function expectError(request: Parameters<Send>[0], status: number, code: string): Promise<void> {
  const before = await state();
  const res = await send(request);
  expect(res.status, `${request.method} ${request.path}: ${res.body.toString()}`).toBe(status);
  if (request.method !== "HEAD") expect((res.json() as { errors: Array<{ code: string }> }).errors[0]!.code).toBe(code);
  expect(await state()).toBe(before);
}

describe("hostile input changes nothing", () => {
  it("repository names with .. or upper case are NAME_INVALID", async () => {
    const blob = content("x");
    await expectError({ method: "GET", path: "/v2/Hostile/App/tags/list" }, 400, "NAME_INVALID");
    await expectError({ method: "GET", path: "/v2/hostile..app/manifests/v1" }, 400, "NAME_INVALID");
    await expectError({ method: "POST", path: `/v2/UPPER/blobs/uploads/?digest=${blob.digest}`, body: blob.bytes }, 400, "NAME_INVALID");
    await expectError({ method: "PUT", path: "/v2/a/-b/manifests/v1", headers: { "content-type": MediaType.ociManifest }, body: "{}" }, 400, "NAME_INVALID");
    await expectError({ method: "GET", path: `/v2/${"a".repeat(300)}/tags/list` }, 400, "NAME_INVALID");
    // fetch normalises "/../"; send the raw path over a socket.
    const raw = await rawRequest(`GET /v2/hostile/../etc/manifests/v1 HTTP/1.1\r\nHost: x\r\nAuthorization: ${registry.bearer}\r\nConnection: close\r\n\r\n`);
    expect(raw).toMatch(/^HTTP\/1.1 400/);
    expect(raw).toContain("NAME_INVALID");
  });

  it("digests of unknown algorithms or the wrong length are DIGEST_INVALID", async () => {
    const hex = "a".repeat(64);
    await expectError({ method: "GET", path: `/v2/hostile/app/blobs/md5:${"a".repeat(32)}` }, 400, "DIGEST_INVALID");
    await expectError({ method: "GET", path: `/v2/hostile/app/blobs/sha256:${hex.slice(1)}` }, 400, "DIGEST_INVALID");
    await expectError({ method: "GET", path: `/v2/hostile/app/manifests/sha256:${hex.toUpperCase()}` }, 400, "DIGEST_INVALID");
    await expectError({ method: "GET", path: `/v2/hostile/app/manifests/sha512:${hex}` }, 400, "DIGEST_INVALID");
    await expectError({ method: "POST", path: `/v2/hostile/app/blobs/uploads/?digest=sha1:${"a".repeat(40)}`, body: "abc" }, 400, "DIGEST_INVALID");
    await expectError({ method: "POST", path: "/v2/hostile/app/blobs/uploads/?digest-algorithm=md5" }, 400, "DIGEST_INVALID");
    await expectError({ method: "DELETE", path: `/v2/hostile/app/manifests/sha256:zz${hex.slice(2)}` }, 400, "DIGEST_INVALID");
  });

  it("n of a billion gets one full page and a Link; a malformed n is refused", async () => {
    const before = await state();
    const res = await send({ method: "GET", path: "/v2/hostile/app/tags/list?n=1000000000" });
    expect(res.status).toBe(200);
    expect((res.json() as { tags: string[] }).tags).toHaveLength(50);
    expect(res.headers.link).toMatch(/n=50&last=t49>; rel="next"/);
    expect(await state()).toBe(before);
    await expectError({ method: "GET", path: "/v2/hostile/app/tags/list?n=-1" }, 400, "UNSUPPORTED");
    await expectError({ method: "GET", path: "/v2/_catalog?n=lots" }, 400, "UNSUPPORTED");
  });

  it("malformed manifest JSON, wrong shapes and schema versions are MANIFEST_INVALID", async () => {
    const put = (body: string, type: string = MediaType.ociManifest) =>
      expectError({ method: "PUT", path: "/v2/hostile/app/manifests/bad", headers: { "content-type": type }, body }, 400, "MANIFEST_INVALID");
    await put("{not json");
    await put("[]");
    await put(JSON.stringify({ schemaVersion: 1, name: "x", tag: "y", fsLayers: [] }));
    await put(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: { digest: "sha256:nope", size: 1, mediaType: "x" }, layers: [] }));
    await put(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: { digest: content("c").digest, size: -1, mediaType: "x" }, layers: [] }));
    await put(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.example.unknown+json" }), "application/vnd.example.unknown+json");
    await expectError({ method: "PUT", path: "/v2/hostile/app/manifests/bad..tag", headers: { "content-type": MediaType.ociManifest }, body: "{}" }, 400, "MANIFEST_INVALID");
  });

  it("a manifest whose Content-Type and mediaType disagree is MANIFEST_INVALID", async () => {
    const image = sampleImage("hostile");
    await expectError(
      { method: "PUT", path: "/v2/hostile/app/manifests/mixed", headers: { "content-type": MediaType.dockerManifest }, body: image.manifest.bytes },
      400,
      "MANIFEST_INVALID",
    );
  });

  it("an index that points at a missing child is MANIFEST_BLOB_UNKNOWN", async () => {
    const present = sampleImage("hostile");
    const absent = sampleImage("absent child");
    const index = imageIndex([present.manifest, absent.manifest]);
    await expectError({ method: "PUT", path: "/v2/hostile/app/manifests/idx", headers: { "content-type": MediaType.ociIndex }, body: index.bytes }, 400, "MANIFEST_BLOB_UNKNOWN");
  });

  it("a descriptor whose size disagrees with the stored blob is MANIFEST_INVALID", async () => {
    const image = sampleImage("hostile");
    const doc = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: descriptorOf(image.config, MediaType.ociConfig),
      layers: [{ ...descriptorOf(image.layers[0]!, MediaType.ociLayerGzip), size: image.layers[0]!.size + 1 }],
    };
    await expectError({ method: "PUT", path: "/v2/hostile/app/manifests/sized", headers: { "content-type": MediaType.ociManifest }, body: JSON.stringify(doc) }, 400, "MANIFEST_INVALID");
  });

  it("a Content-Length that lies (body shorter, then the client hangs up) commits nothing", async () => {
    const blob = content("twenty bytes of data");
    const before = await state();
    const head = `POST /v2/hostile/lie/blobs/uploads/?digest=${blob.digest} HTTP/1.1\r\nHost: x\r\nAuthorization: ${registry.bearer}\r\nContent-Type: application/octet-stream\r\nContent-Length: 200\r\n\r\n`;
    await rawRequest(head + blob.bytes.toString(), { halfClose: true });
    await waitUntil(async () => (await registry.blobs.listWriters()).length === 0);
    expect(await registry.blobs.stat(blob.digest)).toBeNull();
    const after = JSON.parse(await state()) as { repos: string[] };
    // Starting the request registers nothing: no repository, link, blob or ingest file remains.
    expect(JSON.stringify({ ...after, repos: after.repos.filter((r) => r !== "hostile/lie") })).toBe(before);
  });

  it("a chunk shorter than its Content-Range is dropped whole; the session stays where it was", async () => {
    const post = await send({ method: "POST", path: "/v2/hostile/app/blobs/uploads/" });
    const location = post.headers.location!;
    await send({ method: "PATCH", path: location, headers: { "content-range": "0-4" }, body: "hello" });
    const head = `PATCH ${location} HTTP/1.1\r\nHost: x\r\nAuthorization: ${registry.bearer}\r\nContent-Range: 5-14\r\nContent-Length: 10\r\n\r\n`;
    await rawRequest(head + "wor", { halfClose: true });
    await waitUntil(async () => (await send({ method: "GET", path: location })).headers.range === "0-4");
    const longer = await send({ method: "PATCH", path: location, headers: { "content-range": "5-9", "content-length": "5" }, body: "world" });
    expect(longer.headers.range).toBe("0-9");
    const whole = content("helloworld");
    expect((await send({ method: "PUT", path: `${location}?digest=${whole.digest}` })).status).toBe(201);
    await send({ method: "DELETE", path: `/v2/hostile/app/blobs/${whole.digest}` });
  });

  it("a chunk whose Content-Range and Content-Length disagree is SIZE_INVALID and appends nothing", async () => {
    const post = await send({ method: "POST", path: "/v2/hostile/app/blobs/uploads/" });
    const res = await send({ method: "PATCH", path: post.headers.location!, headers: { "content-range": "0-9" }, body: "hello" });
    expect(res.status).toBe(400);
    expect((res.json() as { errors: Array<{ code: string }> }).errors[0]!.code).toBe("SIZE_INVALID");
    expect((await send({ method: "GET", path: post.headers.location! })).headers.range).toBe("0-0");
    await send({ method: "DELETE", path: post.headers.location! });
  });

  it("requests without credentials, or with a wrong token, are UNAUTHORIZED with a Bearer challenge", async () => {
    for (const authorization of ["", "Bearer sw_" + "0".repeat(48), "Basic " + Buffer.from("u:wrong").toString("base64")]) {
      const res = await fetch(`${base}/v2/hostile/app/manifests/v1`, { headers: authorization ? { authorization } : {} });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/v2\/token",service="slipway",scope="repository:hostile\/app:pull"/);
    }
  });
});

async function rawRequest(text: string, options: { halfClose?: boolean } = {}): Promise<string> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(text);
      if (options.halfClose) socket.end();
    });
    let out = "";
    socket.on("data", (d) => (out += d.toString()));
    socket.on("error", (err) => (options.halfClose ? resolve(out) : reject(err)));
    socket.on("close", () => resolve(out));
  });
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
