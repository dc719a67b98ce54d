// The build cache through the SDK and a real server: cases BC1–BC5 of ../shared/corpus/cases.md, ignore files,
// reproducible images across data directories, concurrent builds, forced rebuilds and miss explanations.
import { mkdtemp, readFile, rename, rm, stat, utimes, writeFile, mkdir, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAppFile } from "../src/sdk/deploy.js";
import { Client } from "../src/sdk/client.js";
import { startServer, type RunningServer } from "../src/server/main.js";
import { busyboxTarball } from "./helpers/busybox.js";
import { zerosLayer } from "./helpers/oci-images.js";
import { removeDataDir, runCli } from "./helpers/cli.js";
import { sha256 } from "../src/oci/digest.js";
import { CacheIndex } from "../src/store/cache-index.js";
import { announceSkip, containerSkipReason } from "./helpers/env.js";

const skip = announceSkip("build cache (runc RUN steps)", containerSkipReason());

interface Step {
  text: string;
  status: "hit" | "miss";
  reason?: string;
}
interface Built {
  app: string;
  images: Record<string, { digest: string; steps: Step[] }>;
}

async function newServer(): Promise<RunningServer> {
  return startServer({ host: "127.0.0.1", port: 0, dataDir: await mkdtemp(join(tmpdir(), "slipway-cache-")) });
}

describe.skipIf(skip)("build cache", () => {
  let server: RunningServer;
  let client: Client;
  let dir: string;
  let token: string;

  /** Writes an app whose one function uses the image built by `imageExpr` (TypeScript over `base`). */
  async function writeApp(imageExpr: string, file = "app.ts"): Promise<string> {
    const path = join(dir, file);
    await writeFile(
      path,
      `import { App, Image } from "slipway";
const base = Image.fromTarball("./busybox.tar");
export const app = new App("cache");
app.function("f", { image: ${imageExpr}, handler: "./handler.ts" });
`,
    );
    return path;
  }

  const build = async (file: string, params: { buildArgs?: Record<string, string>; forceBuild?: boolean } = {}, on = client) =>
    ((await buildAppFile(on, file, params)) as Built).images.f!;
  const statuses = (b: { steps: Step[] }) => b.steps.map((s) => s.status);

  /** Reads a file out of the snapshot (unpacked when needed) of the image's top layer that holds it. */
  async function fileInImage(srv: RunningServer, digest: string, path: string): Promise<string> {
    const manifest = JSON.parse((await srv.slipway.blobs.readBuffer(digest as `sha256:${string}`)).toString());
    const config = JSON.parse((await srv.slipway.blobs.readBuffer(manifest.config.digest)).toString());
    const layers = (manifest.layers as Array<{ mediaType: string; digest: `sha256:${string}`; size: number }>).map((l, i) => ({ ...l, diffId: config.rootfs.diff_ids[i] }));
    for (const layer of layers.reverse()) {
      const p = join(await srv.slipway.snapshots.ensure(layer), path);
      if (await stat(p).catch(() => null)) return readFile(p, "utf8");
    }
    throw new Error(`${path} is in no layer of ${digest}`);
  }

  beforeAll(async () => {
    server = await newServer();
    token = (await readFile(server.slipway.adminTokenPath, "utf8")).trim();
    client = new Client({ url: server.url, token });
    dir = await mkdtemp(join(tmpdir(), "slipway-cache-app-"));
    await busyboxTarball(dir);
    await writeFile(join(dir, "handler.ts"), "export default () => null;\n");
  });

  afterAll(async () => {
    await server?.close();
    if (server) await removeDataDir(server.slipway.dataDir);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("BC1: every source is in the key: a change to the second file of a copy, or a renamed file, misses", async () => {
    await mkdir(join(dir, "bc1/tree"), { recursive: true });
    await writeFile(join(dir, "bc1/dep.txt"), "dep\n");
    await writeFile(join(dir, "bc1/dep.lock"), "lock 1\n");
    await writeFile(join(dir, "bc1/tree/one"), "1\n");
    const app = await writeApp(`base.copy(["bc1/dep.txt", "bc1/dep.lock"], "/w/").copy("bc1/tree", "/t")`);
    const first = await build(app);
    expect(statuses(await build(app))).toEqual(["hit", "hit", "hit"]);

    await writeFile(join(dir, "bc1/dep.lock"), "lock 2\n");
    const changed = await build(app);
    expect(statuses(changed)).toEqual(["hit", "miss", "miss"]);
    expect(changed.steps[1]!.reason).toMatch(/copied files changed: dep\.lock changed \(sha256:\w+ mode 644 → sha256:\w+ mode 644\)/);
    expect(changed.steps[2]!.reason).toBe("an earlier step changed: step 2 (COPY bc1/dep.txt bc1/dep.lock /w/)");

    await rename(join(dir, "bc1/tree/one"), join(dir, "bc1/tree/uno"));
    const renamed = await build(app);
    expect(statuses(renamed)).toEqual(["hit", "hit", "miss"]);
    expect(renamed.steps[2]!.reason).toContain("uno added");
    expect(renamed.steps[2]!.reason).toContain("one removed");
    expect(renamed.digest).not.toBe(first.digest);

    // The last build's file list, once gone from the store, is not explained from memory either.
    const records = new CacheIndex(server.slipway.meta).lastBuild("cache/f").map((r) => r.inputs as { step: { op: string; tree?: `sha256:${string}` } });
    const tree = records.filter((r) => r.step.op === "copy").at(-1)!.step.tree!;
    expect(await server.slipway.blobs.delete(tree)).toBe(true);
    await writeFile(join(dir, "bc1/tree/uno"), "one again\n");
    const forgotten = await build(app);
    expect(statuses(forgotten)).toEqual(["hit", "hit", "miss"]);
    expect(forgotten.steps[2]!.reason).toBe("copied files changed: the earlier file list is no longer stored");
  });

  it("BC2 and BC3: content decides, not mtime", async () => {
    await mkdir(join(dir, "bc2"), { recursive: true });
    const file = join(dir, "bc2/data");
    await writeFile(file, "AAAA");
    const when = new Date("2024-01-01T00:00:00Z");
    await utimes(file, when, when);
    const app = await writeApp(`base.copy("bc2", "/d")`);
    const a = await build(app);
    await writeFile(file, "BBBB");
    await utimes(file, when, when);
    const b = await build(app);
    expect(statuses(b)).toEqual(["hit", "miss"]);
    expect(await fileInImage(server, b.digest, "d/data")).toBe("BBBB");

    // A fresh clone touches every file: nothing rebuilds and the digest stays.
    const later = new Date();
    for (const name of await readdir(join(dir, "bc2"))) await utimes(join(dir, "bc2", name), later, later);
    await utimes(join(dir, "busybox.tar"), later, later);
    const c = await build(app);
    expect(statuses(c)).toEqual(["hit", "hit"]);
    expect(c.digest).toBe(b.digest);
    expect(c.digest).not.toBe(a.digest);
  });

  it("BC4: build arguments invalidate from where they are declared; undeclared ones change nothing", async () => {
    await writeFile(join(dir, "a"), "a\n");
    const declaredFirst = await writeApp(`base.arg("V").copy("a", "/a").run("true").run("echo $V > /v")`);
    const v1 = await build(declaredFirst, { buildArgs: { V: "1" } });
    expect(await fileInImage(server, v1.digest, "v")).toBe("1\n");
    const v2 = await build(declaredFirst, { buildArgs: { V: "2" } });
    expect(statuses(v2)).toEqual(["hit", "hit", "hit", "miss", "miss"]);
    expect(v2.steps[3]!.reason).toBe('build argument changed: V "1" → "2"');
    expect(await fileInImage(server, v2.digest, "v")).toBe("2\n");

    const declaredLater = await writeApp(`base.copy("a", "/a").run("true").arg("V").run("echo $V > /v")`, "later.ts");
    await build(declaredLater, { buildArgs: { V: "1" } });
    const later = await build(declaredLater, { buildArgs: { V: "2" } });
    expect(statuses(later)).toEqual(["hit", "hit", "hit", "hit", "miss"]);

    const events: Array<{ type: string; event?: { type: string; text?: string } }> = [];
    const undeclared = ((await buildAppFile(client, declaredLater, { buildArgs: { V: "2", OTHER: "x" }, onEvent: (e) => events.push(e as (typeof events)[number]) })) as Built)
      .images.f!;
    expect(statuses(undeclared)).toEqual(["hit", "hit", "hit", "hit", "hit"]);
    expect(undeclared.digest).toBe(later.digest);
    expect(events.filter((e) => e.event?.type === "warning").map((e) => e.event!.text)).toEqual([
      "build argument OTHER is not declared by any .arg() step of cache/f; it changes nothing",
    ]);
  });

  it("explains, with --explain, a miss after a build with other build arguments: the changed file, and the earlier step that differs", async () => {
    await writeFile(join(dir, "d5.txt"), "one\n");
    const app = await writeApp(`base.arg("FLAVOR", "vanilla").run("echo $FLAVOR > /flavor").copy("d5.txt", "/d5.txt")`, "d5.ts");
    await build(app);
    await build(app, { buildArgs: { FLAVOR: "chocolate" } });
    await writeFile(join(dir, "d5.txt"), "two\n");
    // Through the real command: what a user reads.
    const res = await runCli(["build", app, "--explain"], { SLIPWAY_URL: server.url, SLIPWAY_TOKEN: token });
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stderr.split("\n");
    const after = (step: string) => lines[lines.findIndex((l) => l.includes(step)) + 1]!.trim();
    // The RUN step hit what the vanilla build cached, and says how it differs from the last (chocolate) build.
    expect(lines.find((l) => l.includes("RUN echo $FLAVOR"))).toMatch(/CACHED/);
    expect(after("RUN echo $FLAVOR")).toBe('hit: cached by an earlier build; since the last build: build argument changed: FLAVOR "chocolate" → "vanilla"');
    // The COPY names its changed file first, then the earlier step.
    expect(after("COPY d5.txt")).toMatch(
      /^miss: copied files changed: d5\.txt changed \(sha256:\w+ mode 644 → sha256:\w+ mode 644\); and an earlier step changed: step 3 \(RUN echo \$FLAVOR > \/flavor\)$/,
    );
    // An unchanged step of an unchanged build says so.
    expect(after("FROM tarball")).toBe("hit: step, inputs and earlier steps unchanged");
  });

  it("honours ignore files: excluded files are not copied and changing them changes nothing", async () => {
    await mkdir(join(dir, "ign"), { recursive: true });
    await writeFile(join(dir, ".slipwayignore"), "ign/*.log\n");
    await writeFile(join(dir, "ign/keep.txt"), "keep\n");
    await writeFile(join(dir, "ign/debug.log"), "noise 1\n");
    const app = await writeApp(`base.copy("ign", "/i")`);
    const first = await build(app);
    await writeFile(join(dir, "ign/debug.log"), "noise 2\n");
    const second = await build(app);
    expect(statuses(second)).toEqual(["hit", "hit"]);
    expect(second.digest).toBe(first.digest);
    await expect(fileInImage(server, first.digest, "i/debug.log")).rejects.toThrow(/in no layer/);
    expect(await fileInImage(server, first.digest, "i/keep.txt")).toBe("keep\n");
  });

  it("puts a relative COPY destination under the working directory, and makes an empty COPY into / a step that changes nothing", async () => {
    await mkdir(join(dir, "rel/files"), { recursive: true });
    await mkdir(join(dir, "rel/empty"), { recursive: true });
    await writeFile(join(dir, "rel/files/a.txt"), "a\n");
    await writeFile(join(dir, "rel/files/__init__.py"), "");
    const app = await writeApp(`base.workdir("/srv").copy("rel/files/a.txt", "a2.txt").copy("rel/files", "sub").copy("rel/empty", "/")`, "rel.ts");
    const built = await build(app);
    expect(await fileInImage(server, built.digest, "srv/a2.txt")).toBe("a\n");
    expect(await fileInImage(server, built.digest, "srv/sub/a.txt")).toBe("a\n");
    expect(await fileInImage(server, built.digest, "srv/sub/__init__.py")).toBe("");
    const manifest = JSON.parse((await server.slipway.blobs.readBuffer(built.digest as `sha256:${string}`)).toString());
    // busybox, then the two copies: the empty one added no layer.
    expect(manifest.layers).toHaveLength(3);
  });

  it("BC5: the same steps on two fresh servers give byte-identical layers and the same image digest", async () => {
    await mkdir(join(dir, "bc5"), { recursive: true });
    await writeFile(join(dir, "bc5/app.js"), "console.log('hi')\n");
    const app = await writeApp(
      `base.workdir("/srv/app").copy("bc5", "/srv/app").run("mkdir -p /data && echo made > /data/x && ln -s /data/x /data/y && rm /bin/vi").env({ A: "1" })`,
      "bc5.ts",
    );
    const other = await newServer();
    try {
      const here = await build(app);
      const there = await build(app, {}, new Client({ url: other.url, token: (await readFile(other.slipway.adminTokenPath, "utf8")).trim() }));
      expect(there.digest).toBe(here.digest);
      expect(statuses(there).every((s) => s === "miss")).toBe(true);
      const manifest = JSON.parse((await server.slipway.blobs.readBuffer(here.digest as `sha256:${string}`)).toString());
      for (const layer of manifest.layers) {
        expect((await other.slipway.blobs.readBuffer(layer.digest)).equals(await server.slipway.blobs.readBuffer(layer.digest))).toBe(true);
      }
    } finally {
      await other.close();
      await removeDataDir(other.slipway.dataDir);
    }
  });

  it("two builds of one image at once execute each step once", async () => {
    const app = await writeApp(`base.run("sleep 1; head -c 16 /dev/urandom | od -x > /random")`, "concurrent.ts");
    const [a, b] = await Promise.all([build(app), build(app)]);
    expect(a.digest).toBe(b.digest);
    expect(await fileInImage(server, a.digest, "random")).toBe(await fileInImage(server, b.digest, "random"));
  });

  it("a RUN layer packed while later steps run is cached and kept as a snapshot when a later step fails, leaving no work dirs", async () => {
    const snapshotsRoot = join(server.slipway.dataDir, "snapshots");
    const containersRoot = join(server.slipway.dataDir, "containers");
    const failing = await writeApp(`base.run("head -c 8000000 /dev/urandom > /big").run("echo failing; exit 7")`, "pipelined.ts");
    await expect(build(failing)).rejects.toThrow(/step 3 failed: RUN echo failing; exit 7 exited with code 7/);
    const afterFailure = new Set(await readdir(snapshotsRoot));
    expect((await readdir(containersRoot)).filter((name) => name.startsWith("build-"))).toEqual([]);

    const fixed = await writeApp(`base.run("head -c 8000000 /dev/urandom > /big").run("wc -c /big > /size")`, "pipelined.ts");
    const built = await build(fixed);
    expect(statuses(built)).toEqual(["hit", "hit", "miss"]);
    expect(await fileInImage(server, built.digest, "size")).toBe("8000000 /big\n");
    const manifest = JSON.parse((await server.slipway.blobs.readBuffer(built.digest as `sha256:${string}`)).toString());
    const config = JSON.parse((await server.slipway.blobs.readBuffer(manifest.config.digest)).toString());
    expect(config.rootfs.diff_ids).toHaveLength(manifest.layers.length);
    // The failed build's packed layer is the image's second layer; its upper dir became that layer's snapshot.
    expect(afterFailure.has(config.rootfs.diff_ids[1].slice("sha256:".length))).toBe(true);
    expect((await readdir(containersRoot)).filter((name) => name.startsWith("build-"))).toEqual([]);
  });

  it("a forced rebuild sticks to its image and leaves the cache entries other images use", async () => {
    const step = `base.run("head -c 16 /dev/urandom | od -x > /random").run("echo after > /after")`;
    const app = await writeApp(step, "force.ts");
    const cached = await build(app);
    // The same steps as another image (function g): it shares the cache entries.
    const otherApp = join(dir, "force-other.ts");
    await writeFile(otherApp, (await readFile(app, "utf8")).replace(`app.function("f"`, `app.function("g"`));
    const other = async () => ((await buildAppFile(client, otherApp)) as Built).images.g!;
    expect((await other()).digest).toBe(cached.digest);

    const forcedOne = await writeApp(step.replace(`od -x > /random")`, `od -x > /random", { forceBuild: true })`), "force-one.ts");
    const one = await build(forcedOne);
    expect(statuses(one)).toEqual(["hit", "miss", "miss"]);
    expect(one.steps[1]!.reason).toBe("forced rebuild");
    expect(one.digest).not.toBe(cached.digest);

    const whole = await build(app, { forceBuild: true });
    expect(statuses(whole)).toEqual(["miss", "miss", "miss"]);
    expect(whole.digest).not.toBe(cached.digest);
    // A forced step's layers are settled at once: their upper dirs still become snapshots, leaving no work dirs.
    expect((await readdir(join(server.slipway.dataDir, "containers"))).filter((name) => name.startsWith("build-"))).toEqual([]);

    // The next plain build of this image keeps what the forced build made, executing nothing…
    const again = await build(app);
    expect(statuses(again)).toEqual(["hit", "hit", "hit"]);
    expect(again.digest).toBe(whole.digest);
    // …and the other image still gets the entries it shared before.
    const otherAgain = await other();
    expect(otherAgain.steps.map((s) => s.status)).toEqual(["hit", "hit", "hit"]);
    expect(otherAgain.digest).toBe(cached.digest);
  });

  it("stores a batch of small blobs, and refuses a batch with a wrong digest or a short body, storing none of it", async () => {
    const blobs = ["one", "two", "three"].map((t) => Buffer.from(`batch ${t} ${Math.random()}`)).map((data) => ({ digest: sha256(data), data }));
    await client.putBlobs(blobs);
    expect(await client.missingBlobs(blobs.map((b) => b.digest))).toEqual([]);

    const fresh = ["four", "five"].map((t) => Buffer.from(`batch ${t} ${Math.random()}`)).map((data) => ({ digest: sha256(data), data }));
    const lying = [fresh[0]!, { digest: fresh[1]!.digest, data: Buffer.from("something else entirely") }];
    await expect(client.putBlobs(lying)).rejects.toThrow(/blob batch: blob 1 is sha256:[0-9a-f]{64}, not sha256:[0-9a-f]{64}; nothing was stored/);
    expect(await client.missingBlobs(fresh.map((b) => b.digest))).toEqual(fresh.map((b) => b.digest));

    const head = Buffer.from(`${JSON.stringify({ blobs: fresh.map((b) => ({ digest: b.digest, size: b.data.length })) })}\n`);
    const res = await fetch(`${server.url}/api/v1/blobs`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/octet-stream" },
      body: Buffer.concat([head, fresh[0]!.data, fresh[1]!.data.subarray(0, 3)]),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/blob 1 .* needs \d+ bytes, but the body ends 3 bytes later/);
    expect(await client.missingBlobs(fresh.map((b) => b.digest))).toEqual(fresh.map((b) => b.digest));
  });

  it("names the blobs a build request needs and the server lacks, before building anything", async () => {
    const data = Buffer.from(`never uploaded ${Math.random()}`);
    const fileDigest = sha256(data);
    const tree = Buffer.from(JSON.stringify({ entries: [{ type: "file", path: "f", mode: 0o644, size: data.length, digest: fileDigest }] }));
    const treeDigest = sha256(tree);
    const code = Buffer.from(JSON.stringify({ files: {}, handlers: {} }));
    await client.putBlob(sha256(code), code);
    const request = {
      app: "cache",
      images: { f: { version: 1, steps: [{ op: "base", source: { kind: "scratch" } }, { op: "copy", src: "f", tree: treeDigest, dest: "/" }] } },
      functions: { f: { image: "f", handler: "f.mjs" } },
      code: sha256(code),
    };
    const attempt = async () => {
      for await (const _ of client.build(request)) void _;
    };
    await expect(attempt()).rejects.toMatchObject({ code: "not-found", details: { missing: [treeDigest] } });
    await client.putBlob(treeDigest, tree);
    await expect(attempt()).rejects.toMatchObject({ code: "not-found", details: { missing: [fileDigest] } });
    await client.putBlob(fileDigest, data);
    await attempt();
  });

  it("uploads what changed since the last successful request before sending it, and recovers when the server collected something since", async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), "slipway-cache-sent-"));
    await mkdir(join(dir, "sent"), { recursive: true });
    await writeFile(join(dir, "sent", "a.txt"), `first ${Math.random()}\n`);
    const file = await writeApp(`base.copy("sent", "/sent")`, "sent.ts");
    /** A client that records the requests it makes. */
    class Recording extends Client {
      readonly seen: string[] = [];
      override async fetch(path: string, init: Parameters<Client["fetch"]>[1] = {}): ReturnType<Client["fetch"]> {
        const res = await super.fetch(path, init);
        this.seen.push(`${init.method ?? "GET"} ${path} ${res.status}`);
        return res;
      }
    }
    const run = async () => {
      const c = new Recording({ url: server.url, token });
      await buildAppFile(c, file, { cacheDir });
      return c.seen;
    };
    try {
      // First time: no record of what the server has, so the request goes first and the server names what it lacks;
      // the client asks which of its blobs are missing (a missing tree's files are named only once it is there).
      const first = await run();
      expect([first[0], first[1], first.at(-1)]).toEqual(["POST /api/v1/build 404", "POST /api/v1/blobs/missing 200", "POST /api/v1/build 200"]);
      expect(await run()).toEqual(["POST /api/v1/build 200"]);
      // A changed file (and so a new tree): uploaded first, one build request, no question and no refusal.
      const changed = Buffer.from(`second ${Math.random()}\n`);
      await writeFile(join(dir, "sent", "a.txt"), changed);
      expect(await run()).toEqual(["POST /api/v1/blobs 201", "POST /api/v1/build 200"]);
      // The server lost the file the record says it has: the request names it, and the build still succeeds.
      expect(await server.slipway.blobs.delete(sha256(changed))).toBe(true);
      await writeApp(`base.copy("sent", "/sent").env({ AGAIN: "1" })`, "sent.ts");
      expect(await run()).toEqual(["POST /api/v1/build 404", "POST /api/v1/blobs/missing 200", "POST /api/v1/blobs 201", "POST /api/v1/build 200"]);
      expect(server.slipway.blobs.hasSync(sha256(changed))).toBe(true);
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  it("stores a RUN layer of incompressible bytes uncompressed, and one of text compressed", async () => {
    const file = await writeApp(`base.run("head -c 20000000 /dev/urandom > /r.bin").run("yes slipway | head -c 20000000 > /t.txt")`, "worth.ts");
    const built = await build(file);
    const manifest = JSON.parse((await server.slipway.blobs.readBuffer(built.digest as `sha256:${string}`)).toString());
    const [random, text] = (manifest.layers as Array<{ mediaType: string; size: number }>).slice(-2);
    expect(random).toMatchObject({ mediaType: "application/vnd.oci.image.layer.v1.tar" });
    expect(random!.size).toBeGreaterThan(20_000_000);
    // An uncompressed layer's diffId is its digest, and it is the digest of the bytes stored.
    const config = JSON.parse((await server.slipway.blobs.readBuffer(manifest.config.digest)).toString());
    const randomDigest = (manifest.layers as Array<{ digest: `sha256:${string}` }>).at(-2)!.digest;
    expect(config.rootfs.diff_ids.at(-2)).toBe(randomDigest);
    expect(sha256(await server.slipway.blobs.readBuffer(randomDigest))).toBe(randomDigest);
    expect(text).toMatchObject({ mediaType: "application/vnd.oci.image.layer.v1.tar+zstd" });
    expect(text!.size).toBeLessThan(1_000_000);
    expect((await fileInImage(server, built.digest, "t.txt")).slice(0, 16)).toBe("slipway\nslipway\n");
  });

  it("names a base tarball that is missing, or that is not a tar", async () => {
    await writeFile(join(dir, "tarball-app.ts"), `import { App, Image } from "slipway";\nexport const app = new App("cache");\napp.function("f", { image: Image.fromTarball("./nope.tar"), handler: "./handler.ts" });\n`);
    await expect(buildAppFile(client, join(dir, "tarball-app.ts"))).rejects.toMatchObject({
      code: "not-found",
      message: `base tarball ./nope.tar does not exist or is not a file (looked in ${dir})`,
    });
    await writeFile(join(dir, "garbage.tar"), Buffer.alloc(4096, 7));
    await writeFile(join(dir, "tarball-app.ts"), `import { App, Image } from "slipway";\nexport const app = new App("cache");\napp.function("f", { image: Image.fromTarball("./garbage.tar"), handler: "./handler.ts" });\n`);
    await expect(buildAppFile(client, join(dir, "tarball-app.ts"))).rejects.toThrow(/base tarball \.\/garbage\.tar is not a tar archive \(plain or gzip\)/);
  });

  it("refuses a base tarball that is a decompression bomb, leaving no snapshot or temp dir behind", async () => {
    // 2 GiB of zeros in 2 MiB of gzip members: refused once 256 MiB are unpacked, by the ratio (1030:1 > 100:1).
    await writeFile(join(dir, "bomb.tar.gz"), zerosLayer("gzip", 2 * 1024 ** 3));
    await writeFile(join(dir, "bomb-app.ts"), `import { App, Image } from "slipway";\nexport const app = new App("cache");\napp.function("f", { image: Image.fromTarball("./bomb.tar.gz"), handler: "./handler.ts" });\n`);
    const snapshots = server.slipway.snapshots.root;
    const before = (await readdir(snapshots)).sort();
    await expect(buildAppFile(client, join(dir, "bomb-app.ts"))).rejects.toMatchObject({
      code: "invalid",
      message: expect.stringMatching(
        /^base tarball \.\/bomb\.tar\.gz: refused as a decompression bomb: 256\.\d MiB unpacked from \d\.\d MiB compressed so far \([\d.]+:1\), over the limit of 100:1 for layers past 256\.0 MiB; if the layer is genuine, start the server with a higher --max-layer-ratio$/,
      ),
    });
    expect((await readdir(snapshots)).sort()).toEqual(before);
  });

  it("refuses a hostile COPY tree that writes through its own symlink, touching nothing outside", async () => {
    const outside = await mkdtemp(join(tmpdir(), "slipway-outside-"));
    const data = Buffer.from("owned\n");
    const fileDigest = sha256(data);
    const tree = Buffer.from(
      JSON.stringify({
        entries: [
          { type: "symlink", path: "a", mode: 0o777, target: outside },
          { type: "file", path: "a/evil", mode: 0o644, size: data.length, digest: fileDigest },
        ],
      }),
    );
    const treeDigest = sha256(tree);
    const code = Buffer.from(JSON.stringify({ files: {}, handlers: {} }));
    for (const [d, bytes] of [[fileDigest, data], [treeDigest, tree], [sha256(code), code]] as const) await client.putBlob(d, bytes);
    const request = {
      app: "cache",
      images: { f: { version: 1, steps: [{ op: "base", source: { kind: "scratch" } }, { op: "copy", src: "x", tree: treeDigest, dest: "/" }] } },
      functions: { f: { image: "f", handler: "f.mjs" } },
      code: sha256(code),
    };
    const attempt = async () => {
      for await (const _ of client.build(request)) void _;
    };
    await expect(attempt()).rejects.toThrow('COPY: "a/evil" would be written through the symlink "a"');
    expect(await readdir(outside)).toEqual([]);
  });

  it("explains a changed step text", async () => {
    const app = await writeApp(`base.run("echo one > /x")`, "explain.ts");
    await build(app);
    await writeApp(`base.run("echo two > /x")`, "explain.ts");
    const changed = await build(app);
    expect(changed.steps[1]!.reason).toBe('step changed: was "RUN echo one > /x"');
  });
});

