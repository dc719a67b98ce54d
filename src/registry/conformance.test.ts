// Our conformance suite, written from the distribution-spec's four workflow groups (pull, push, content discovery,
// content management) and their edge cases, plus cases RA1–RA5 (shared/corpus/cases.md). In-process through
// fastify's inject, against the real blob store, SQLite and auth.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MediaType } from "../oci/media-types.js";
import { openRegistry, type TestRegistry } from "../../test/registry-support.js";
import {
  content,
  descriptorOf,
  imageIndex,
  imageManifest,
  pushBlob,
  pushImage,
  pushManifest,
  sampleImage,
  type HttpResponse,
  type Send,
} from "../../test/registry-kit.js";

let registry: TestRegistry;
let send: Send;

beforeAll(async () => {
  registry = await openRegistry();
  send = async ({ method, path, headers, body }) => {
    const res = await registry.app.inject({
      method: method as "GET",
      url: path,
      headers: { authorization: registry.bearer, ...headers },
      ...(body !== undefined ? { payload: body } : {}),
    });
    return {
      status: res.statusCode,
      headers: Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, String(v)])),
      body: res.rawPayload,
      json: <T>() => JSON.parse(res.body) as T,
    };
  };
});
afterAll(async () => registry?.close());

function errorCode(res: HttpResponse): string {
  return (res.json() as { errors: Array<{ code: string }> }).errors[0]!.code;
}

describe("pull", () => {
  it("GET /v2/ answers 200 with the API version header", async () => {
    const res = await send({ method: "GET", path: "/v2/" });
    expect(res.status).toBe(200);
    expect(res.headers["docker-distribution-api-version"]).toBe("registry/2.0");
  });

  it("pulls a manifest by tag and by digest, and its blobs, with digests and lengths", async () => {
    const image = sampleImage("pull");
    await pushImage(send, "pull/app", "v1", image);
    for (const ref of ["v1", image.manifest.digest]) {
      const res = await send({ method: "GET", path: `/v2/pull/app/manifests/${ref}`, headers: { accept: MediaType.ociManifest } });
      expect(res.status).toBe(200);
      expect(res.body.equals(image.manifest.bytes)).toBe(true);
      expect(res.headers["content-type"]).toBe(MediaType.ociManifest);
      expect(res.headers["docker-content-digest"]).toBe(image.manifest.digest);
      expect(res.headers["content-length"]).toBe(String(image.manifest.size));
    }
    for (const blob of [image.config, ...image.layers]) {
      const res = await send({ method: "GET", path: `/v2/pull/app/blobs/${blob.digest}` });
      expect(res.status).toBe(200);
      expect(res.body.equals(blob.bytes)).toBe(true);
      expect(res.headers["docker-content-digest"]).toBe(blob.digest);
    }
  });

  it("HEAD of a blob gives its length and digest without a body; unknown blobs and manifests are 404", async () => {
    const image = sampleImage("head");
    await pushImage(send, "pull/head", "v1", image);
    const head = await send({ method: "HEAD", path: `/v2/pull/head/blobs/${image.layers[0]!.digest}` });
    expect(head.status).toBe(200);
    expect(head.headers["content-length"]).toBe(String(image.layers[0]!.size));
    expect(head.headers["docker-content-digest"]).toBe(image.layers[0]!.digest);
    expect(head.body.length).toBe(0);
    const missing = content("never pushed");
    const blob = await send({ method: "GET", path: `/v2/pull/head/blobs/${missing.digest}` });
    expect(blob.status).toBe(404);
    expect(errorCode(blob)).toBe("BLOB_UNKNOWN");
    const manifest = await send({ method: "GET", path: `/v2/pull/head/manifests/${missing.digest}` });
    expect(manifest.status).toBe(404);
    expect(errorCode(manifest)).toBe("MANIFEST_UNKNOWN");
    expect((await send({ method: "GET", path: "/v2/pull/head/manifests/nope" })).status).toBe(404);
    expect((await send({ method: "GET", path: "/v2/never/pushed/manifests/v1" })).status).toBe(404);
  });

  it("serves byte ranges of a blob (206 with Content-Range; 416 past the end)", async () => {
    const blob = content("0123456789abcdef");
    await pushBlob(send, "pull/range", blob);
    const path = `/v2/pull/range/blobs/${blob.digest}`;
    const part = await send({ method: "GET", path, headers: { range: "bytes=2-5" } });
    expect(part.status).toBe(206);
    expect(part.body.toString()).toBe("2345");
    expect(part.headers["content-range"]).toBe("bytes 2-5/16");
    const tail = await send({ method: "GET", path, headers: { range: "bytes=-3" } });
    expect(tail.body.toString()).toBe("def");
    const open = await send({ method: "GET", path, headers: { range: "bytes=10-" } });
    expect(open.body.toString()).toBe("abcdef");
    const past = await send({ method: "GET", path, headers: { range: "bytes=16-20" } });
    expect(past.status).toBe(416);
    expect(past.headers["content-range"]).toBe("bytes */16");
  });

  it("serves blobs larger than one read buffer whole and by ranges that cross buffers, and an empty blob", async () => {
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 12345);
    for (let i = 0; i + 4 <= bytes.length; i += 4) bytes.writeUInt32LE(i, i);
    const blob = content(bytes);
    await pushBlob(send, "pull/large", blob);
    const path = `/v2/pull/large/blobs/${blob.digest}`;
    const whole = await send({ method: "GET", path });
    expect(whole.status).toBe(200);
    expect(whole.headers["content-length"]).toBe(String(bytes.length));
    expect(whole.body.equals(bytes)).toBe(true);
    const start = 1024 * 1024 - 7;
    const end = 2 * 1024 * 1024 + 100;
    const part = await send({ method: "GET", path, headers: { range: `bytes=${start}-${end}` } });
    expect(part.status).toBe(206);
    expect(part.headers["content-range"]).toBe(`bytes ${start}-${end}/${bytes.length}`);
    expect(part.body.equals(bytes.subarray(start, end + 1))).toBe(true);
    const empty = content(Buffer.alloc(0));
    await pushBlob(send, "pull/large", empty);
    const none = await send({ method: "GET", path: `/v2/pull/large/blobs/${empty.digest}` });
    expect(none.status).toBe(200);
    expect(none.headers["content-length"]).toBe("0");
    expect(none.body.length).toBe(0);
  });

  // RA2
  it("RA2: HEAD of a manifest answers like GET (status, Content-Type, Content-Length, digest) without a body", async () => {
    const image = sampleImage("ra2", 1, { docker: true });
    await pushImage(send, "ra2/app", "latest", image);
    for (const ref of ["latest", image.manifest.digest]) {
      const get = await send({ method: "GET", path: `/v2/ra2/app/manifests/${ref}` });
      const head = await send({ method: "HEAD", path: `/v2/ra2/app/manifests/${ref}` });
      expect(head.status).toBe(get.status);
      for (const h of ["content-type", "content-length", "docker-content-digest"]) expect(head.headers[h]).toBe(get.headers[h]);
      expect(head.headers["content-type"]).toBe(MediaType.dockerManifest);
      expect(head.body.length).toBe(0);
    }
    expect((await send({ method: "HEAD", path: "/v2/ra2/app/manifests/unknown-tag" })).status).toBe(404);
  });

  it("a blob is visible only through a repository that links it", async () => {
    const blob = content("private to one repository");
    await pushBlob(send, "links/a", blob);
    expect((await send({ method: "HEAD", path: `/v2/links/a/blobs/${blob.digest}` })).status).toBe(200);
    expect((await send({ method: "HEAD", path: `/v2/links/b/blobs/${blob.digest}` })).status).toBe(404);
  });
});

describe("push", () => {
  // RA1
  it("RA1: chunked upload with Content-Range, 416 on a gap, status GET, final PUT with the last chunk", async () => {
    const whole = content("helloworld");
    const post = await send({ method: "POST", path: "/v2/ra1/app/blobs/uploads/" });
    expect(post.status).toBe(202);
    const location = post.headers.location!;
    expect(location).toMatch(/^\/v2\/ra1\/app\/blobs\/uploads\/[a-z0-9]+$/);
    const first = await send({ method: "PATCH", path: location, headers: { "content-range": "0-4", "content-type": "application/octet-stream" }, body: "hello" });
    expect(first.status).toBe(202);
    expect(first.headers.range).toBe("0-4");
    const gap = await send({ method: "PATCH", path: first.headers.location!, headers: { "content-range": "10-14" }, body: "xxxxx" });
    expect(gap.status).toBe(416);
    expect(gap.headers.range).toBe("0-4");
    const overlap = await send({ method: "PATCH", path: location, headers: { "content-range": "3-7" }, body: "xxxxx" });
    expect(overlap.status).toBe(416);
    const status = await send({ method: "GET", path: location });
    expect(status.status).toBe(204);
    expect(status.headers.range).toBe("0-4");
    expect(status.headers.location).toBe(location);
    const done = await send({ method: "PUT", path: `${location}?digest=${whole.digest}`, headers: { "content-range": "5-9" }, body: "world" });
    expect(done.status).toBe(201);
    expect(done.headers.location).toBe(`/v2/ra1/app/blobs/${whole.digest}`);
    expect(done.headers["docker-content-digest"]).toBe(whole.digest);
    const got = await send({ method: "GET", path: done.headers.location! });
    expect(got.body.toString()).toBe("helloworld");
    // The session is over.
    expect((await send({ method: "GET", path: location })).status).toBe(404);
  });

  it("RA1: a wrong digest on the final PUT is DIGEST_INVALID and commits nothing", async () => {
    const data = content("some bytes");
    const wrong = content("other bytes");
    const post = await send({ method: "POST", path: "/v2/ra1/wrong/blobs/uploads/" });
    const put = await send({ method: "PUT", path: `${post.headers.location}?digest=${wrong.digest}`, body: data.bytes });
    expect(put.status).toBe(400);
    expect(errorCode(put)).toBe("DIGEST_INVALID");
    for (const d of [data.digest, wrong.digest]) expect((await send({ method: "HEAD", path: `/v2/ra1/wrong/blobs/${d}` })).status).toBe(404);
    expect(await registry.blobs.stat(data.digest)).toBeNull();
    expect(await registry.blobs.stat(wrong.digest)).toBeNull();
  });

  it("RA1: monolithic POST ?digest= with a body is 201; POST then PUT with the whole body too", async () => {
    const one = content("single request");
    const res = await send({ method: "POST", path: `/v2/ra1/mono/blobs/uploads/?digest=${one.digest}`, headers: { "content-type": "application/octet-stream" }, body: one.bytes });
    expect(res.status).toBe(201);
    expect(res.headers.location).toBe(`/v2/ra1/mono/blobs/${one.digest}`);
    const two = content("post then put");
    const post = await send({ method: "POST", path: "/v2/ra1/mono/blobs/uploads/" });
    const put = await send({ method: "PUT", path: `${post.headers.location}?digest=${two.digest}`, headers: { "content-type": "application/octet-stream" }, body: two.bytes });
    expect(put.status).toBe(201);
    expect((await send({ method: "GET", path: `/v2/ra1/mono/blobs/${two.digest}` })).body.equals(two.bytes)).toBe(true);
  });

  it("streams PATCH chunks without Content-Range (as skopeo and docker do) and keeps sha512 blobs", async () => {
    const data = Buffer.alloc(3 * 1024 * 1024, 7);
    const whole = content(data);
    const post = await send({ method: "POST", path: "/v2/push/stream/blobs/uploads/" });
    let location = post.headers.location!;
    for (let i = 0; i < 3; i++) {
      const res = await send({ method: "PATCH", path: location, body: data.subarray(i * 1024 * 1024, (i + 1) * 1024 * 1024) });
      expect(res.status).toBe(202);
      expect(res.headers.range).toBe(`0-${(i + 1) * 1024 * 1024 - 1}`);
      location = res.headers.location!;
    }
    expect((await send({ method: "PUT", path: `${location}?digest=${whole.digest}` })).status).toBe(201);

    const big = content("sha512 content", "sha512");
    const mono = await send({ method: "POST", path: `/v2/push/stream/blobs/uploads/?digest=${big.digest}`, body: big.bytes });
    expect(mono.status).toBe(201);
    const hinted = content("sha512 chunked", "sha512");
    const session = await send({ method: "POST", path: "/v2/push/stream/blobs/uploads/?digest-algorithm=sha512" });
    await send({ method: "PATCH", path: session.headers.location!, body: hinted.bytes });
    expect((await send({ method: "PUT", path: `${session.headers.location}?digest=${hinted.digest}` })).status).toBe(201);
    // A session started for sha256 finishing with a sha512 digest is rehashed, not refused.
    const unhinted = content("sha512 without hint", "sha512");
    const plain = await send({ method: "POST", path: "/v2/push/stream/blobs/uploads/" });
    await send({ method: "PATCH", path: plain.headers.location!, body: unhinted.bytes });
    expect((await send({ method: "PUT", path: `${plain.headers.location}?digest=${unhinted.digest}` })).status).toBe(201);
    for (const c of [big, hinted, unhinted]) {
      const res = await send({ method: "GET", path: `/v2/push/stream/blobs/${c.digest}` });
      expect(res.body.equals(c.bytes)).toBe(true);
    }
  });

  it("DELETE cancels an upload session; it is then unknown", async () => {
    const post = await send({ method: "POST", path: "/v2/push/cancel/blobs/uploads/" });
    await send({ method: "PATCH", path: post.headers.location!, body: "partial" });
    expect((await send({ method: "DELETE", path: post.headers.location! })).status).toBe(204);
    expect((await send({ method: "GET", path: post.headers.location! })).status).toBe(404);
    expect((await send({ method: "PATCH", path: post.headers.location!, body: "more" })).status).toBe(404);
    expect(errorCode(await send({ method: "DELETE", path: post.headers.location! }))).toBe("BLOB_UPLOAD_UNKNOWN");
  });

  it("an upload session belongs to its repository", async () => {
    const post = await send({ method: "POST", path: "/v2/push/owner/blobs/uploads/" });
    const id = post.headers.location!.split("/").pop()!;
    const res = await send({ method: "PATCH", path: `/v2/push/other/blobs/uploads/${id}`, body: "x" });
    expect(res.status).toBe(404);
    expect(errorCode(res)).toBe("BLOB_UPLOAD_UNKNOWN");
  });

  // RA3
  it("RA3: manifests are stored byte for byte; the digest is of the bytes received", async () => {
    const image = sampleImage("ra3");
    for (const blob of [image.config, ...image.layers]) await pushBlob(send, "ra3/app", blob);
    const odd =
      `{\n      "schemaVersion":2,\n  "layers": [` +
      image.layers.map((l) => `{"size":${l.size},   "digest":"${l.digest}","mediaType":"${MediaType.ociLayerGzip}"}`).join(" ,\n") +
      `],\n"mediaType": "${MediaType.ociManifest}",  "config":{"digest":"${image.config.digest}","mediaType":"${MediaType.ociConfig}","size":${image.config.size}}\n}\n`;
    const manifest = content(odd);
    const put = await pushManifest(send, "ra3/app", "odd", manifest);
    expect(put.headers["docker-content-digest"]).toBe(manifest.digest);
    expect(put.headers.location).toBe(`/v2/ra3/app/manifests/${manifest.digest}`);
    for (const ref of ["odd", manifest.digest]) {
      const res = await send({ method: "GET", path: `/v2/ra3/app/manifests/${ref}` });
      expect(res.body.toString()).toBe(odd);
    }
    const wrong = content("something else");
    const bad = await send({ method: "PUT", path: `/v2/ra3/app/manifests/${wrong.digest}`, headers: { "content-type": MediaType.ociManifest }, body: manifest.bytes });
    expect(bad.status).toBe(400);
    expect(errorCode(bad)).toBe("DIGEST_INVALID");
    expect((await send({ method: "GET", path: `/v2/ra3/app/manifests/${wrong.digest}` })).status).toBe(404);
  });

  it("pushes by digest with several ?tag= (OCI-Tag), and as sha512", async () => {
    const image = sampleImage("tags-param");
    for (const blob of [image.config, ...image.layers]) await pushBlob(send, "push/tagged", blob);
    const res = await pushManifest(send, "push/tagged", `${image.manifest.digest}?tag=1.0&tag=latest`, image.manifest);
    expect(res.headers["oci-tag"]).toBe("1.0, latest");
    for (const tag of ["1.0", "latest"]) expect((await send({ method: "HEAD", path: `/v2/push/tagged/manifests/${tag}` })).headers["docker-content-digest"]).toBe(image.manifest.digest);
    const five = content(image.manifest.bytes, "sha512");
    const put = await pushManifest(send, "push/tagged", five.digest, five, MediaType.ociManifest);
    expect(put.headers["docker-content-digest"]).toBe(five.digest);
    expect((await send({ method: "GET", path: `/v2/push/tagged/manifests/${five.digest}` })).body.equals(five.bytes)).toBe(true);
  });

  // RA5
  it("RA5: cross-repository mount is 201 only when the blob was mounted, else 202 with a session", async () => {
    const blob = content("mount me");
    await pushBlob(send, "ra5/src", blob);
    const mounted = await send({ method: "POST", path: `/v2/ra5/dst/blobs/uploads/?mount=${blob.digest}&from=ra5/src` });
    expect(mounted.status).toBe(201);
    expect(mounted.headers.location).toBe(`/v2/ra5/dst/blobs/${blob.digest}`);
    expect(mounted.headers["docker-content-digest"]).toBe(blob.digest);
    expect((await send({ method: "GET", path: `/v2/ra5/dst/blobs/${blob.digest}` })).body.equals(blob.bytes)).toBe(true);

    const absent = content("not in the source");
    for (const path of [
      `/v2/ra5/dst2/blobs/uploads/?mount=${absent.digest}&from=ra5/src`,
      `/v2/ra5/dst2/blobs/uploads/?mount=${blob.digest}&from=ra5/elsewhere`,
      `/v2/ra5/dst2/blobs/uploads/?mount=${blob.digest}`,
      `/v2/ra5/dst2/blobs/uploads/?mount=sha256:bad&from=ra5/src`,
    ]) {
      const res = await send({ method: "POST", path });
      expect(res.status).toBe(202);
      expect(res.headers["docker-content-digest"]).toBeUndefined();
      expect(res.headers.location).toMatch(/\/v2\/ra5\/dst2\/blobs\/uploads\/[a-z0-9]+$/);
    }
    expect((await send({ method: "HEAD", path: `/v2/ra5/dst2/blobs/${blob.digest}` })).status).toBe(404);
  });

  it("RA5: a manifest naming a blob the repository does not hold is MANIFEST_BLOB_UNKNOWN, even if another repository has it", async () => {
    const image = sampleImage("ra5-manifest");
    await pushImage(send, "ra5/holder", "v1", image);
    await pushBlob(send, "ra5/partial", image.config);
    const res = await send({ method: "PUT", path: "/v2/ra5/partial/manifests/v1", headers: { "content-type": MediaType.ociManifest }, body: image.manifest.bytes });
    expect(res.status).toBe(400);
    expect(errorCode(res)).toBe("MANIFEST_BLOB_UNKNOWN");
    const body = res.json() as { errors: Array<{ detail: Array<{ digest: string }> }> };
    expect(body.errors[0]!.detail.map((d) => d.digest).sort()).toEqual(image.layers.map((l) => l.digest).sort());
    expect((await send({ method: "GET", path: "/v2/ra5/partial/manifests/v1" })).status).toBe(404);
  });

  it("pushes an index after its children, and Docker manifest lists", async () => {
    const a = sampleImage("index-a");
    const b = sampleImage("index-b");
    await pushImage(send, "push/multi", a.manifest.digest, a);
    await pushImage(send, "push/multi", b.manifest.digest, b);
    const index = imageIndex([a.manifest, b.manifest]);
    const res = await pushManifest(send, "push/multi", "latest", index);
    expect(res.status).toBe(201);
    const got = await send({ method: "GET", path: "/v2/push/multi/manifests/latest" });
    expect(got.headers["content-type"]).toBe(MediaType.ociIndex);
    expect(got.body.equals(index.bytes)).toBe(true);

    const da = sampleImage("list-a", 1, { docker: true });
    await pushImage(send, "push/dlist", da.manifest.digest, da);
    const list = imageIndex([da.manifest], { docker: true });
    await pushManifest(send, "push/dlist", "latest", list);
    expect((await send({ method: "HEAD", path: "/v2/push/dlist/manifests/latest" })).headers["content-type"]).toBe(MediaType.dockerManifestList);
  });

  it("accepts artifacts: an empty config with arbitrary layer and artifact types", async () => {
    const empty = content("{}");
    const payload = content("an sbom");
    await pushBlob(send, "push/artifact", empty);
    await pushBlob(send, "push/artifact", payload);
    const doc = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType: "application/vnd.example.sbom.v1",
      config: descriptorOf(empty, MediaType.ociEmpty),
      layers: [descriptorOf(payload, "application/spdx+json")],
    };
    const manifest = content(JSON.stringify(doc));
    expect((await pushManifest(send, "push/artifact", "sbom", manifest)).status).toBe(201);
  });

  it("a tag moves to the newest manifest pushed under it", async () => {
    const one = sampleImage("move-1");
    const two = sampleImage("move-2");
    await pushImage(send, "push/move", "latest", one);
    await pushImage(send, "push/move", "latest", two);
    const res = await send({ method: "HEAD", path: "/v2/push/move/manifests/latest" });
    expect(res.headers["docker-content-digest"]).toBe(two.manifest.digest);
    expect((await send({ method: "HEAD", path: `/v2/push/move/manifests/${one.manifest.digest}` })).status).toBe(200);
  });
});

describe("content discovery", () => {
  // RA4
  it("RA4: tag list paging with n, last and Link", async () => {
    const image = sampleImage("ra4", 1);
    for (const blob of [image.config, ...image.layers]) await pushBlob(send, "ra4/app", blob);
    for (const tag of ["e", "c", "a", "d", "b"]) await pushManifest(send, "ra4/app", tag, image.manifest);
    const first = await send({ method: "GET", path: "/v2/ra4/app/tags/list?n=2" });
    expect(first.json()).toEqual({ name: "ra4/app", tags: ["a", "b"] });
    expect(first.headers.link).toBe('</v2/ra4/app/tags/list?n=2&last=b>; rel="next"');
    const seen: string[] = [];
    let path: string | null = "/v2/ra4/app/tags/list?n=2";
    let pages = 0;
    while (path) {
      const page = await send({ method: "GET", path });
      seen.push(...(page.json() as { tags: string[] }).tags);
      path = /<([^>]+)>; rel="next"/.exec(page.headers.link ?? "")?.[1] ?? null;
      pages++;
    }
    expect(seen).toEqual(["a", "b", "c", "d", "e"]);
    expect(pages).toBe(3);
    expect((await send({ method: "GET", path: "/v2/ra4/app/tags/list?n=2&last=bb" })).json()).toEqual({ name: "ra4/app", tags: ["c", "d"] });
    const all = await send({ method: "GET", path: "/v2/ra4/app/tags/list" });
    expect((all.json() as { tags: string[] }).tags).toEqual(["a", "b", "c", "d", "e"]);
    expect(all.headers.link).toBeUndefined();
    const zero = await send({ method: "GET", path: "/v2/ra4/app/tags/list?n=0" });
    expect(zero.json()).toEqual({ name: "ra4/app", tags: [] });
    expect(zero.headers.link).toBeUndefined();
    const exact = await send({ method: "GET", path: "/v2/ra4/app/tags/list?n=5" });
    expect(exact.headers.link).toBeUndefined();
  });

  it("tags of an unknown repository are NAME_UNKNOWN", async () => {
    const res = await send({ method: "GET", path: "/v2/no/such/repo/tags/list" });
    expect(res.status).toBe(404);
    expect(errorCode(res)).toBe("NAME_UNKNOWN");
  });

  it("the catalog lists repositories in order, paged with Link", async () => {
    const image = sampleImage("catalog", 1);
    for (const repo of ["zcat/c", "zcat/a", "zcat/b"]) await pushImage(send, repo, "v1", image);
    const all = (await send({ method: "GET", path: "/v2/_catalog" })).json() as { repositories: string[] };
    expect(all.repositories.filter((r) => r.startsWith("zcat/"))).toEqual(["zcat/a", "zcat/b", "zcat/c"]);
    const page = await send({ method: "GET", path: "/v2/_catalog?n=1&last=zcat/a" });
    expect(page.json()).toEqual({ repositories: ["zcat/b"] });
    expect(page.headers.link).toBe('</v2/_catalog?n=1&last=zcat%2Fb>; rel="next"');
  });

  it("lists referrers of a manifest with artifactType (or the config's type), annotations and the filter", async () => {
    const subject = sampleImage("subject");
    await pushImage(send, "disc/refs", "v1", subject);
    const empty = content("{}");
    await pushBlob(send, "disc/refs", empty);
    const sig = imageManifest(empty, [], { subject: subject.manifest, artifactType: "application/vnd.example.sig", annotations: { "org.example.k": "v" } });
    const sbomConfig = content(JSON.stringify({ sbom: true }));
    await pushBlob(send, "disc/refs", sbomConfig);
    const sbom = imageManifest(sbomConfig, [], { subject: subject.manifest, configType: "application/vnd.example.sbom.config" });
    const sigPut = await pushManifest(send, "disc/refs", sig.digest, sig);
    expect(sigPut.headers["oci-subject"]).toBe(subject.manifest.digest);
    await pushManifest(send, "disc/refs", sbom.digest, sbom);

    const res = await send({ method: "GET", path: `/v2/disc/refs/referrers/${subject.manifest.digest}` });
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe(MediaType.ociIndex);
    const index = res.json() as { schemaVersion: number; mediaType: string; manifests: Array<Record<string, unknown>> };
    expect(index.schemaVersion).toBe(2);
    expect(index.mediaType).toBe(MediaType.ociIndex);
    const byDigest = Object.fromEntries(index.manifests.map((m) => [m.digest as string, m]));
    expect(byDigest[sig.digest]).toEqual({ mediaType: MediaType.ociManifest, digest: sig.digest, size: sig.size, artifactType: "application/vnd.example.sig", annotations: { "org.example.k": "v" } });
    expect(byDigest[sbom.digest]).toEqual({ mediaType: MediaType.ociManifest, digest: sbom.digest, size: sbom.size, artifactType: "application/vnd.example.sbom.config" });

    const filtered = await send({ method: "GET", path: `/v2/disc/refs/referrers/${subject.manifest.digest}?artifactType=application/vnd.example.sig` });
    expect(filtered.headers["oci-filters-applied"]).toBe("artifactType");
    expect((filtered.json() as { manifests: unknown[] }).manifests).toHaveLength(1);

    const none = await send({ method: "GET", path: `/v2/disc/refs/referrers/${content("nothing refers").digest}` });
    expect(none.status).toBe(200);
    expect((none.json() as { manifests: unknown[] }).manifests).toEqual([]);
    const bad = await send({ method: "GET", path: "/v2/disc/refs/referrers/sha256:123" });
    expect(bad.status).toBe(400);
  });

  it("a referrer may be pushed before its subject", async () => {
    const subject = sampleImage("late-subject");
    const empty = content("{}");
    await pushBlob(send, "disc/early", empty);
    const sig = imageManifest(empty, [], { subject: subject.manifest, artifactType: "application/vnd.example.sig" });
    expect((await pushManifest(send, "disc/early", sig.digest, sig)).status).toBe(201);
    const res = await send({ method: "GET", path: `/v2/disc/early/referrers/${subject.manifest.digest}` });
    expect((res.json() as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest)).toEqual([sig.digest]);
  });
});

describe("content management", () => {
  it("deletes a tag: the tag is gone, the manifest stays", async () => {
    const image = sampleImage("del-tag");
    await pushImage(send, "mgmt/tag", "v1", image);
    expect((await send({ method: "DELETE", path: "/v2/mgmt/tag/manifests/v1" })).status).toBe(202);
    expect((await send({ method: "GET", path: "/v2/mgmt/tag/manifests/v1" })).status).toBe(404);
    expect((await send({ method: "GET", path: `/v2/mgmt/tag/manifests/${image.manifest.digest}` })).status).toBe(200);
    expect((await send({ method: "DELETE", path: "/v2/mgmt/tag/manifests/v1" })).status).toBe(404);
  });

  it("deletes a manifest by digest, and with it every tag pointing at it", async () => {
    const image = sampleImage("del-manifest");
    await pushImage(send, "mgmt/manifest", "v1", image);
    await pushManifest(send, "mgmt/manifest", "v2", image.manifest);
    expect((await send({ method: "DELETE", path: `/v2/mgmt/manifest/manifests/${image.manifest.digest}` })).status).toBe(202);
    for (const ref of ["v1", "v2", image.manifest.digest]) expect((await send({ method: "GET", path: `/v2/mgmt/manifest/manifests/${ref}` })).status).toBe(404);
    expect(((await send({ method: "GET", path: "/v2/mgmt/manifest/tags/list" })).json() as { tags: string[] }).tags).toEqual([]);
    const again = await send({ method: "DELETE", path: `/v2/mgmt/manifest/manifests/${image.manifest.digest}` });
    expect(again.status).toBe(404);
    expect(errorCode(again)).toBe("MANIFEST_UNKNOWN");
  });

  it("deletes a blob from one repository; others that link it keep it", async () => {
    const blob = content("shared blob");
    await pushBlob(send, "mgmt/one", blob);
    await pushBlob(send, "mgmt/two", blob);
    expect((await send({ method: "DELETE", path: `/v2/mgmt/one/blobs/${blob.digest}` })).status).toBe(202);
    expect((await send({ method: "GET", path: `/v2/mgmt/one/blobs/${blob.digest}` })).status).toBe(404);
    expect((await send({ method: "GET", path: `/v2/mgmt/two/blobs/${blob.digest}` })).status).toBe(200);
    const again = await send({ method: "DELETE", path: `/v2/mgmt/one/blobs/${blob.digest}` });
    expect(again.status).toBe(404);
    expect(errorCode(again)).toBe("BLOB_UNKNOWN");
  });
});

describe("limits and errors", () => {
  it("a manifest over 4 MiB is 413 and stores nothing", async () => {
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    const res = await send({ method: "PUT", path: "/v2/limits/app/manifests/big", headers: { "content-type": MediaType.ociManifest }, body: big });
    expect(res.status).toBe(413);
    expect(errorCode(res)).toBe("SIZE_INVALID");
    expect((await send({ method: "GET", path: "/v2/limits/app/manifests/big" })).status).toBe(404);
  });

  it("errors carry the spec's JSON body and an unsupported method is 405", async () => {
    const res = await send({ method: "POST", path: "/v2/limits/app/manifests/v1" });
    expect(res.status).toBe(405);
    const body = res.json() as { errors: Array<{ code: string; message: string }> };
    expect(body.errors[0]!.code).toBe("UNSUPPORTED");
    expect(body.errors[0]!.message).toMatch(/POST/);
  });
});
