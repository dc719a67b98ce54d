// Crash safety: a registry server process is SIGKILLed during a blob upload, during manifest PUTs and during a
// garbage collection. After a restart the registry is consistent (every blob file hashes to its name, every link,
// manifest and tag points at something present), no unverified blob is visible, the interrupted upload resumes
// from what reached the disk, and stale uploads are cleaned.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, rm, utimes } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FsBlobStore } from "../src/store/blob-store.js";
import { MetadataStore } from "../src/store/metadata-store.js";
import { RepositoryIndex } from "../src/store/repository-index.js";
import { content, pushBlob, pushImage, sampleImage, type Send } from "./registry-kit.js";
import { bundleRegistryMain, spawnRegistry, type RegistryProcess } from "./registry-support.js";

let main: string;
let dataDir: string;
let server: RegistryProcess | null = null;

beforeAll(async () => {
  main = await bundleRegistryMain();
  dataDir = await mkdtemp(join(tmpdir(), "registry-crash-"));
});
afterAll(async () => {
  await server?.kill("SIGKILL");
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function start(env: Record<string, string> = {}): Promise<RegistryProcess> {
  server = await spawnRegistry(main, dataDir, env);
  return server;
}

function sender(proc: RegistryProcess): Send {
  return async ({ method, path, headers, body }) => {
    const res = await fetch(proc.url + path, { method, headers: { authorization: `Bearer ${proc.adminToken}`, ...headers }, body: body as BodyInit | undefined });
    const bytes = Buffer.from(await res.arrayBuffer());
    return { status: res.status, headers: Object.fromEntries(res.headers), body: bytes, json: <T>() => JSON.parse(bytes.toString()) as T };
  };
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}

/** Opens the data directory (with the server dead) and checks every invariant the registry keeps. */
async function expectConsistent(): Promise<void> {
  const meta = MetadataStore.open(join(dataDir, "slipway.db"));
  try {
    const blobs = await FsBlobStore.open(dataDir);
    const repos = new RepositoryIndex(meta);
    const present = new Set<string>();
    for await (const b of blobs.list()) {
      // A visible blob is a verified blob: its bytes hash to its name.
      expect(await sha256File(blobs.localPath(b.digest))).toBe(b.digest);
      present.add(b.digest);
    }
    const snap = repos.snapshot();
    for (const l of snap.links) expect(present.has(l.digest), `link ${l.repo}@${l.digest} has its bytes`).toBe(true);
    const manifests = new Set(snap.manifests.map((m) => `${m.repo}@${m.digest}`));
    for (const m of snap.manifests) expect(present.has(m.digest), `manifest ${m.repo}@${m.digest} has its bytes`).toBe(true);
    for (const t of snap.tags) expect(manifests.has(`${t.repo}@${t.digest}`), `tag ${t.repo}:${t.tag} points at a manifest`).toBe(true);
    const links = new Set(snap.links.map((l) => `${l.repo}@${l.digest}`));
    for (const r of snap.refs) {
      expect(links.has(`${r.repo}@${r.ref}`) || manifests.has(`${r.repo}@${r.ref}`), `${r.repo}@${r.digest} names ${r.ref}, which is there`).toBe(true);
    }
  } finally {
    meta.close();
  }
}

/** Sends `total` bytes as one PATCH, slowly, and never finishes: the caller kills the server meanwhile. */
function slowPatch(proc: RegistryProcess, location: string, data: Buffer, onSent: (bytes: number) => void): void {
  const url = new URL(proc.url + location);
  const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: "PATCH", headers: { authorization: `Bearer ${proc.adminToken}`, "content-type": "application/octet-stream" } });
  req.on("error", () => undefined);
  let offset = 0;
  const step = () => {
    if (offset >= data.length) return;
    const chunk = data.subarray(offset, offset + 256 * 1024);
    offset += chunk.length;
    req.write(chunk, () => onSent(offset));
    setTimeout(step, 5);
  };
  step();
}

describe("SIGKILL", () => {
  it("during a blob upload: nothing unverified is visible and the upload resumes from what reached the disk", async () => {
    let proc = await start();
    let send = sender(proc);
    const data = Buffer.alloc(16 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i * 2654435761 >>> 0, i);
    const whole = content(data);
    const post = await send({ method: "POST", path: "/v2/crash/upload/blobs/uploads/" });
    const location = post.headers.location!;
    const first = await send({ method: "PATCH", path: location, headers: { "content-range": `0-${1024 * 1024 - 1}` }, body: data.subarray(0, 1024 * 1024) });
    expect(first.headers.range).toBe(`0-${1024 * 1024 - 1}`);

    let sent = 0;
    slowPatch(proc, location, data.subarray(1024 * 1024), (n) => (sent = n));
    while (sent < 4 * 1024 * 1024) await new Promise((r) => setTimeout(r, 5));
    await proc.kill("SIGKILL");
    await expectConsistent();

    proc = await start();
    send = sender(proc);
    expect((await send({ method: "HEAD", path: `/v2/crash/upload/blobs/${whole.digest}` })).status).toBe(404);
    const status = await send({ method: "GET", path: location });
    expect(status.status).toBe(204);
    const held = Number(status.headers.range!.split("-")[1]) + 1;
    // The chunk was streamed without a declared size, so what arrived before the kill is kept.
    expect(held).toBeGreaterThanOrEqual(1024 * 1024);
    expect(held).toBeLessThan(data.length);
    const rest = await send({ method: "PATCH", path: location, headers: { "content-range": `${held}-${data.length - 1}` }, body: data.subarray(held) });
    expect(rest.status).toBe(202);
    const done = await send({ method: "PUT", path: `${location}?digest=${whole.digest}` });
    expect(done.status).toBe(201);
    const got = await send({ method: "GET", path: `/v2/crash/upload/blobs/${whole.digest}` });
    expect(got.body.equals(data)).toBe(true);
    await proc.kill("SIGKILL");
    await expectConsistent();
  });

  it("during manifest PUTs: every tag and manifest is either fully there or absent", async () => {
    let proc = await start();
    let send = sender(proc);
    const images = Array.from({ length: 40 }, (_, i) => sampleImage(`crash-manifest-${i}`, 2));
    for (const image of images) for (const blob of [image.config, ...image.layers]) await pushBlob(send, "crash/manifests", blob);
    const puts = images.map((image, i) =>
      send({ method: "PUT", path: `/v2/crash/manifests/manifests/t${i}`, headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" }, body: image.manifest.bytes }).catch(
        () => null,
      ),
    );
    await new Promise((r) => setTimeout(r, 15));
    await proc.kill("SIGKILL");
    const answered = (await Promise.all(puts)).filter((r) => r?.status === 201).length;
    await expectConsistent();

    proc = await start();
    send = sender(proc);
    let present = 0;
    for (const [i, image] of images.entries()) {
      const res = await send({ method: "GET", path: `/v2/crash/manifests/manifests/t${i}` });
      if (res.status === 200) {
        expect(res.body.equals(image.manifest.bytes)).toBe(true);
        present++;
      } else expect(res.status).toBe(404);
    }
    // Every PUT that was answered 201 survived the kill.
    expect(present).toBeGreaterThanOrEqual(answered);
    await proc.kill("SIGKILL");
  });

  it("during garbage collection: what is tagged stays whole, and a later collection finishes the job", async () => {
    const gcEnv = { SLIPWAY_GC_GRACE_MS: "1", SLIPWAY_GC_UPLOAD_TTL_MS: "1" };
    let proc = await start(gcEnv);
    let send = sender(proc);
    const abandoned = await send({ method: "POST", path: "/v2/crash/gc/blobs/uploads/" });
    await send({ method: "PATCH", path: abandoned.headers.location!, body: "never finished" });
    const kept = sampleImage("crash-gc-kept", 3);
    await pushImage(send, "crash/gc", "keep", kept);
    const garbage = Array.from({ length: 600 }, (_, i) => content(`garbage blob ${i}\n`.repeat(50)));
    for (const g of garbage) await pushBlob(send, "crash/gc", g);
    for (const g of garbage.slice(0, 300)) await send({ method: "DELETE", path: `/v2/crash/gc/blobs/${g.digest}` });
    // Backdate everything so the 1 ms grace period covers it (links are young in the database: use time instead).
    await new Promise((r) => setTimeout(r, 20));
    for (const g of garbage) {
      const path = join(dataDir, "blobs/sha256", g.digest.slice(7, 9), g.digest.slice(7));
      await utimes(path, new Date(0), new Date(0)).catch(() => undefined);
    }
    proc.child.kill("SIGUSR2");
    await new Promise((r) => setTimeout(r, 30));
    await proc.kill("SIGKILL");
    await expectConsistent();

    proc = await start(gcEnv);
    send = sender(proc);
    const report = proc.waitForLine('"gc"');
    proc.child.kill("SIGUSR2");
    await report;
    // The abandoned session (and any ingest file a killed request left) is gone.
    expect((await send({ method: "GET", path: abandoned.headers.location! })).status).toBe(404);
    for (const g of garbage) expect((await send({ method: "HEAD", path: `/v2/crash/gc/blobs/${g.digest}` })).status).toBe(404);
    for (const blob of [kept.config, ...kept.layers]) {
      const res = await send({ method: "GET", path: `/v2/crash/gc/blobs/${blob.digest}` });
      expect(res.body.equals(blob.bytes)).toBe(true);
    }
    expect((await send({ method: "GET", path: "/v2/crash/gc/manifests/keep" })).body.equals(kept.manifest.bytes)).toBe(true);
    await proc.kill("SIGKILL");
    await expectConsistent();
    const blobs = await FsBlobStore.open(dataDir);
    for (const g of garbage) expect(await blobs.stat(g.digest)).toBeNull();
    expect(await blobs.listWriters()).toEqual([]);
  });
});
