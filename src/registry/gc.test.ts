// Garbage collection against the real stores: what it keeps (tags, extra roots, referrers of live manifests,
// index children, recent pushes, live uploads), what it deletes, the dry run's report, and pushes running
// concurrently with collections losing nothing.
import { utimes } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Digest } from "../oci/digest.js";
import { openRegistry, type TestRegistry } from "../../test/registry-support.js";
import { content, imageIndex, imageManifest, pushBlob, pushImage, pushManifest, sampleImage, type Content, type Send } from "../../test/registry-kit.js";
import { GarbageCollector } from "./gc.js";

let registry: TestRegistry;
let send: Send;

beforeEach(async () => {
  registry = await openRegistry();
  send = async ({ method, path, headers, body }) => {
    const res = await registry.app.inject({ method: method as "GET", url: path, headers: { authorization: registry.bearer, ...headers }, ...(body !== undefined ? { payload: body } : {}) });
    return { status: res.statusCode, headers: Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, String(v)])), body: res.rawPayload, json: <T>() => JSON.parse(res.body) as T };
  };
});
afterEach(async () => registry?.close());

/** Makes everything written so far older than any grace period: file times and database times. */
async function age(): Promise<void> {
  for await (const b of registry.blobs.list()) await utimes(registry.blobs.localPath(b.digest), new Date(0), new Date(0));
  registry.meta.db.exec("UPDATE manifests SET created_at = 0, accessed_at = 0; UPDATE blob_links SET created_at = 0, accessed_at = 0; UPDATE uploads SET updated_at = 0");
}

async function stored(c: Content): Promise<boolean> {
  return (await registry.blobs.stat(c.digest)) !== null;
}

describe("garbage collection", () => {
  it("keeps what tags reach, deletes the rest; a dry run reports the same and deletes nothing", async () => {
    const kept = sampleImage("kept");
    const dropped = sampleImage("dropped");
    await pushImage(send, "gc/app", "v1", kept);
    await pushImage(send, "gc/app", "v2", dropped);
    await send({ method: "DELETE", path: "/v2/gc/app/manifests/v2" });
    await age();

    const dry = await registry.gc.collect({ dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect(dry.manifests.map((m) => m.digest)).toEqual([dropped.manifest.digest]);
    const expected = [dropped.manifest, dropped.config, ...dropped.layers];
    expect(dry.blobs.map((b) => b.digest).sort()).toEqual(expected.map((c) => c.digest).sort());
    expect(dry.bytes).toBe(expected.reduce((n, c) => n + c.size, 0));
    for (const c of expected) expect(await stored(c)).toBe(true);
    expect((await send({ method: "GET", path: `/v2/gc/app/manifests/${dropped.manifest.digest}` })).status).toBe(200);
    // That read counts as use (a client about to reference it): age it again.
    await age();

    const real = await registry.gc.collect();
    expect(real.blobs.map((b) => b.digest).sort()).toEqual(dry.blobs.map((b) => b.digest).sort());
    expect(real.bytes).toBe(dry.bytes);
    for (const c of expected) expect(await stored(c)).toBe(false);
    expect((await send({ method: "GET", path: `/v2/gc/app/manifests/${dropped.manifest.digest}` })).status).toBe(404);
    for (const c of [kept.manifest, kept.config, ...kept.layers]) expect(await stored(c)).toBe(true);
    expect((await send({ method: "GET", path: "/v2/gc/app/manifests/v1" })).body.equals(kept.manifest.bytes)).toBe(true);
    // Nothing left to collect.
    const again = await registry.gc.collect();
    expect(again.blobs).toEqual([]);
    expect(again.manifests).toEqual([]);
  });

  it("keeps manifests named by extra roots (versions), index children and referrers of live manifests", async () => {
    const version = sampleImage("version");
    await pushImage(send, "gc/roots", version.manifest.digest, version);
    const a = sampleImage("child-a");
    const b = sampleImage("child-b");
    await pushImage(send, "gc/roots", a.manifest.digest, a);
    await pushImage(send, "gc/roots", b.manifest.digest, b);
    const index = imageIndex([a.manifest, b.manifest]);
    await pushManifest(send, "gc/roots", "multi", index);
    const empty = content("{}");
    await pushBlob(send, "gc/roots", empty);
    const sig = imageManifest(empty, [], { subject: index, artifactType: "application/vnd.example.sig" });
    await pushManifest(send, "gc/roots", sig.digest, sig);
    const orphanSig = imageManifest(empty, [], { subject: content("a subject never pushed"), artifactType: "application/vnd.example.sig" });
    await pushManifest(send, "gc/roots", orphanSig.digest, orphanSig);
    await age();

    const gc = new GarbageCollector({ blobs: registry.blobs, repos: registry.repos, uploads: registry.uploads, extraRoots: () => [version.manifest.digest as Digest] });
    const report = await gc.collect();
    expect(report.manifests.map((m) => m.digest)).toEqual([orphanSig.digest]);
    for (const c of [version.manifest, ...version.layers, version.config, index, a.manifest, b.manifest, ...a.layers, ...b.layers, sig, empty]) {
      expect(await stored(c)).toBe(true);
    }
    expect(await stored(orphanSig)).toBe(false);
  });

  it("keeps recent pushes and live uploads; ends stale uploads", async () => {
    const young = sampleImage("young");
    for (const blob of [young.config, ...young.layers]) await pushBlob(send, "gc/young", blob);
    const live = await send({ method: "POST", path: "/v2/gc/young/blobs/uploads/" });
    await send({ method: "PATCH", path: live.headers.location!, body: "in progress" });
    const report = await registry.gc.collect({ gracePeriodMs: 60_000 });
    expect(report.blobs).toEqual([]);
    expect(report.links).toEqual([]);
    expect((await send({ method: "GET", path: live.headers.location! })).status).toBe(204);
    // Once aged past the upload lifetime, the session and its bytes go.
    await age();
    const later = await registry.gc.collect({ uploadTtlMs: 60_000 });
    expect(later.uploads.map((u) => u.size)).toContain(11);
    expect((await send({ method: "GET", path: live.headers.location! })).status).toBe(404);
    expect(await registry.blobs.listWriters()).toEqual([]);
  });

  it("a blob a client just saw (HEAD) survives a collection, so the manifest naming it can follow", async () => {
    const image = sampleImage("reused");
    for (const blob of [image.config, ...image.layers]) await pushBlob(send, "gc/reuse", blob);
    await age();
    for (const blob of [image.config, ...image.layers]) expect((await send({ method: "HEAD", path: `/v2/gc/reuse/blobs/${blob.digest}` })).status).toBe(200);
    await registry.gc.collect({ gracePeriodMs: 60_000 });
    expect((await pushManifest(send, "gc/reuse", "v1", image.manifest)).status).toBe(201);
  });

  it("collections running while pushes continue never delete what a push needs", async () => {
    // Blobs already in the repository from long ago, plus garbage; clients re-push, skipping blobs HEAD finds.
    const images = Array.from({ length: 30 }, (_, i) => sampleImage(`concurrent-${i}`, 3));
    for (const image of images) for (const blob of [image.config, ...image.layers]) await pushBlob(send, "gc/busy", blob);
    const garbage = Array.from({ length: 30 }, (_, i) => content(`garbage ${i}`));
    for (const g of garbage) await pushBlob(send, "gc/busy", g);
    await age();
    const pushes = (async () => {
      for (const [i, image] of images.entries()) {
        for (const blob of [image.config, ...image.layers]) {
          const head = await send({ method: "HEAD", path: `/v2/gc/busy/blobs/${blob.digest}` });
          if (head.status !== 200) await pushBlob(send, "gc/busy", blob);
        }
        await new Promise((r) => setImmediate(r));
        await pushManifest(send, "gc/busy", `t${i}`, image.manifest);
      }
    })();
    const collections = (async () => {
      for (let run = 0; run < 20; run++) {
        await registry.gc.collect({ gracePeriodMs: 5_000 });
        await new Promise((r) => setImmediate(r));
      }
    })();
    await Promise.all([pushes, collections]);
    await registry.gc.collect({ gracePeriodMs: 5_000 });
    for (const g of garbage) expect(await stored(g)).toBe(false);
    for (const [i, image] of images.entries()) {
      expect((await send({ method: "GET", path: `/v2/gc/busy/manifests/t${i}` })).body.equals(image.manifest.bytes)).toBe(true);
      for (const blob of [image.config, ...image.layers]) {
        expect((await send({ method: "GET", path: `/v2/gc/busy/blobs/${blob.digest}` })).body.equals(blob.bytes)).toBe(true);
      }
    }
  });
});
