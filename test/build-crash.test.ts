// Crash safety of a build whose RUN layer is packed in the background while the next RUN step runs on its upper dir,
// by SIGKILL of a real server process: while the layer is being packed, and after it was packed and cached but
// before its upper dir became its snapshot. After a restart on the same data directory: no work dirs or mounts are
// left, no torn blob is visible, every cache entry's layers are stored, and the build then succeeds with the image a
// fresh data directory gives, also to a second build of the image started while the first has a pending layer.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decompressor } from "../src/oci/compression.js";
import { parseDigest, type Digest } from "../src/oci/digest.js";
import { unpackLayer } from "../src/oci/layer-reader.js";
import { layerCompression } from "../src/oci/media-types.js";
import { Client } from "../src/sdk/client.js";
import { buildAppFile } from "../src/sdk/deploy.js";
import { busyboxTarball } from "./helpers/busybox.js";
import { removeDataDir, startServerProcess, type ServerProcess } from "./helpers/cli.js";
import { announceSkip, containerSkipReason } from "./helpers/env.js";
import { tempDirs } from "./helpers/temp-dirs.js";
import { until } from "./helpers/until.js";

const temp = tempDirs();

const skip = announceSkip("build crash safety (runc RUN steps, SIGKILL)", containerSkipReason());

/** Fixed pseudo-random bytes (1 MiB) that a RUN step repeats into a file no compressor shrinks. */
const SEED = Buffer.concat(Array.from({ length: 32768 }, (_, i) => createHash("sha256").update(`seed ${i}`).digest()));

interface Built {
  images: Record<string, { digest: Digest; steps: Array<{ status: "hit" | "miss" }> }>;
}

interface Manifest {
  config: { digest: Digest };
  layers: Array<{ mediaType: string; digest: Digest; size: number }>;
}


const blobPath = (dataDir: string, digest: Digest) => {
  const { algorithm, hex } = parseDigest(digest);
  return join(dataDir, "blobs", algorithm, hex.slice(0, 2), hex);
};

async function sha256Of(stream: Readable): Promise<Digest> {
  const hash = createHash("sha256");
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}

/** Mount points under `dir`, as /proc/mounts lists them, with their options. */
async function mountsUnder(dir: string): Promise<Array<{ at: string; options: string }>> {
  return (await readFile("/proc/mounts", "utf8"))
    .split("\n")
    .map((l) => l.split(" "))
    .filter((f) => (f[1] ?? "").startsWith(dir + "/"))
    .map((f) => ({ at: f[1]!, options: f[3] ?? "" }));
}

/** Every committed blob whose bytes do not hash to its name. */
async function tornBlobs(dataDir: string): Promise<string[]> {
  const root = join(dataDir, "blobs", "sha256");
  const bad: string[] = [];
  for (const prefix of await readdir(root)) {
    for (const hex of await readdir(join(root, prefix))) {
      const digest = `sha256:${hex}` as Digest;
      if ((await sha256Of(createReadStream(blobPath(dataDir, digest)))) !== digest) bad.push(digest);
    }
  }
  return bad;
}

/** The layer digests each build cache entry names (read beside the running server, which holds the database). */
function cacheEntryLayers(dataDir: string): Array<{ key: string; layers: Digest[] }> {
  const db = new Database(join(dataDir, "slipway.db"), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare("SELECT key, result FROM build_cache").all() as Array<{ key: string; result: string }>;
    return rows.map((r) => ({ key: r.key, layers: (JSON.parse(r.result) as { layers: Array<{ digest: Digest }> }).layers.map((l) => l.digest) }));
  } finally {
    db.close();
  }
}

/**
 * Checks an image from its blobs alone: as many diff_ids as layers, each layer's uncompressed bytes hashing to its
 * diff_id; returns a file read from the unpacked top layer.
 */
async function fileFromImage(dataDir: string, digest: Digest, path: string, scratch: string): Promise<string> {
  const manifest = JSON.parse(await readFile(blobPath(dataDir, digest), "utf8")) as Manifest;
  const config = JSON.parse(await readFile(blobPath(dataDir, manifest.config.digest), "utf8")) as { rootfs: { diff_ids: Digest[] } };
  expect(config.rootfs.diff_ids).toHaveLength(manifest.layers.length);
  for (const [i, layer] of manifest.layers.entries()) {
    const raw = createReadStream(blobPath(dataDir, layer.digest));
    expect(await sha256Of(raw.pipe(decompressor(layerCompression(layer.mediaType)))), `layer ${i}'s diff_id`).toBe(config.rootfs.diff_ids[i]);
  }
  const top = manifest.layers.at(-1)!;
  await unpackLayer(createReadStream(blobPath(dataDir, top.digest)), scratch, {
    compression: layerCompression(top.mediaType),
    expectDigest: top.digest,
    expectDiffId: config.rootfs.diff_ids.at(-1),
  });
  return readFile(join(scratch, path), "utf8");
}

describe.skipIf(skip)("crash safety of a build with a layer packed in the background (runc, SIGKILL)", () => {
  let dir: string;
  const servers: ServerProcess[] = [];

  const start = async (dataDir?: string) => {
    const server = await startServerProcess({ dataDir });
    servers.push(server);
    return server;
  };
  /**
   * Writes an app whose image repeats the seed into a `bigMiB` file (packed for a while, its layer stored
   * uncompressed), then runs a 2 s step on it that records the file's size in /size.
   */
  const writeApp = async (name: string, bigMiB: number) => {
    const path = join(dir, `${name}.ts`);
    await writeFile(
      path,
      `import { App, Image } from "slipway";
const image = Image.fromTarball("./busybox.tar")
  .copy("seed.bin", "/seed")
  .run("for i in $(seq ${bigMiB}); do cat /seed; done > /big")
  .run("sleep 2; wc -c < /big > /size");
export const app = new App("crash");
app.function("f", { image, handler: "./handler.ts" });
`,
    );
    return path;
  };
  const build = async (server: ServerProcess, app: string) => {
    const client = new Client({ url: server.url, token: (await readFile(join(server.dataDir, "admin-token"), "utf8")).trim() });
    return ((await buildAppFile(client, app, { cacheDir: null })) as Built).images.f!;
  };
  /**
   * Resolves once a RUN step runs on an overlay whose top lower is an earlier step's upper dir (a layer still
   * pending) and `also` holds; fails at once if the build ends first.
   */
  const laterStepOnPendingLayer = (server: ServerProcess, building: Promise<unknown>, what: string, also: () => boolean | Promise<boolean>) => {
    const ended = building.then(
      () => Promise.reject(new Error(`the build finished before ${what}`)),
      (err: Error) => Promise.reject(new Error(`the build failed before ${what}: ${err.message}`)),
    );
    const seen = until(what, async () => {
      const mounts = await mountsUnder(join(server.dataDir, "containers"));
      return mounts.some((m) => /lowerdir=\.\.\/containers\/build-[^/:]+\/upper:/.test(m.options)) && (await also());
    }, 30_000);
    return Promise.race([seen, ended]);
  };
  /** Restarts on a killed server's data directory and checks what the restart left: no work dir, mount or torn blob. */
  const restartAfterKill = async (dataDir: string) => {
    const restarted = await start(dataDir);
    expect((await readdir(join(dataDir, "containers"))).filter((n) => n.startsWith("build-"))).toEqual([]);
    expect(await mountsUnder(dataDir)).toEqual([]);
    expect((await readdir(join(dataDir, "snapshots"))).filter((n) => n.startsWith(".tmp-"))).toEqual([]);
    expect(await tornBlobs(dataDir)).toEqual([]);
    for (const entry of cacheEntryLayers(dataDir)) {
      for (const layer of entry.layers) {
        expect(await stat(blobPath(dataDir, layer)).then(() => true, () => false), `layer ${layer} of cache entry ${entry.key}`).toBe(true);
      }
    }
    return restarted;
  };

  beforeAll(async () => {
    dir = await temp("slipway-build-crash-");
    await busyboxTarball(dir);
    await writeFile(join(dir, "seed.bin"), SEED);
    await writeFile(join(dir, "handler.ts"), "export default () => null;\n");
  });

  afterAll(async () => {
    for (const server of servers) {
      await server.stop("SIGKILL");
      await removeDataDir(server.dataDir);
    }
  });

  it("killed while a RUN layer is packed and the next step runs on it: the restart leaves no torn state, and the build then gives the image a fresh data directory gives", async () => {
    const bigMiB = 160;
    const app = await writeApp("packing", bigMiB);
    const first = await start();
    const dataDir = first.dataDir;
    const building = build(first, app);
    building.catch(() => undefined);
    await laterStepOnPendingLayer(first, building, "the next step ran while the layer was packed", async () => (await readdir(join(dataDir, "ingest"))).length > 0);
    await first.stop("SIGKILL");
    await expect(building).rejects.toThrow();
    // The kill tore the layer's write: its bytes sit in the ingest area, under no digest.
    expect((await readdir(join(dataDir, "ingest"))).length).toBeGreaterThan(0);

    const restarted = await restartAfterKill(dataDir);
    const rebuilt = await build(restarted, app);
    expect(rebuilt.steps.map((s) => s.status)).toEqual(["hit", "hit", "miss", "miss"]);
    expect(await fileFromImage(dataDir, rebuilt.digest, "size", await temp("slipway-crash-top-"))).toBe(`${bigMiB << 20}\n`);
    expect((await readdir(join(dataDir, "containers"))).filter((n) => n.startsWith("build-"))).toEqual([]);
    await restarted.stop();

    // A fresh data directory gives the same image, to a build and to a second build of the image started while the
    // first runs its last step on its pending layer (the second waits for the steps in flight, executing none).
    const fresh = await start();
    const one = build(fresh, app);
    await laterStepOnPendingLayer(fresh, one, "the last step ran on the pending layer", () => true);
    const [a, b] = await Promise.all([one, build(fresh, app)]);
    expect(a.steps.map((s) => s.status)).toEqual(["miss", "miss", "miss", "miss"]);
    expect(a.digest).toBe(rebuilt.digest);
    expect(b.digest).toBe(rebuilt.digest);
    expect(await tornBlobs(fresh.dataDir)).toEqual([]);
    await fresh.stop();
  });

  it("killed after the RUN layer was packed and cached but before its upper dir became its snapshot: the rebuild hits it and unpacks it from its blob", async () => {
    const bigMiB = 48;
    const app = await writeApp("packed", bigMiB);
    const first = await start();
    const dataDir = first.dataDir;
    const building = build(first, app);
    building.catch(() => undefined);
    // Cached: base, the copy and the RUN layer (three layers) while the last step still runs on its upper dir.
    await laterStepOnPendingLayer(first, building, "the layer was cached", () => cacheEntryLayers(dataDir).some((e) => e.layers.length === 3));
    await first.stop("SIGKILL");
    await expect(building).rejects.toThrow();

    const restarted = await restartAfterKill(dataDir);
    const rebuilt = await build(restarted, app);
    expect(rebuilt.steps.map((s) => s.status)).toEqual(["hit", "hit", "hit", "miss"]);
    expect(await fileFromImage(dataDir, rebuilt.digest, "size", await temp("slipway-crash-top-"))).toBe(`${bigMiB << 20}\n`);
    await restarted.stop();
  });
});
