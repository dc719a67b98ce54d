// Image.fromRegistry end to end: a base image served by Debian's docker-registry on loopback, pulled and verified
// into Slipway's store, pinned by digest in the image (and so in the version), run as a function; a moved tag is
// noticed on the next build and never changes a deployed version; a multi-platform tag pins its index.
import { readFile, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "../src/sdk/client.js";
import { buildAppFile, deployAppFile } from "../src/sdk/deploy.js";
import { startServer, type RunningServer } from "../src/server/main.js";
import { busyboxTarball } from "./helpers/busybox.js";
import { removeDataDir } from "./helpers/cli.js";
import { startDockerRegistry, type StartedRegistry } from "./helpers/docker-registry.js";
import { announceSkip, containerSkipReason, toolSkipReason } from "./helpers/env.js";
import { blobsOf, imageOf, indexOf, layerOf, pushDirect, tarOf } from "./helpers/oci-images.js";

const skip = announceSkip("registry bases", containerSkipReason() ?? toolSkipReason("docker-registry"));

interface Built {
  images: Record<string, { digest: string; steps: Array<{ status: string; reason?: string }> }>;
}

describe.skipIf(skip)("Image.fromRegistry", () => {
  let registry: StartedRegistry;
  let server: RunningServer;
  let client: Client;
  let dir: string;
  let base: ReturnType<typeof imageOf>;

  beforeAll(async () => {
    const work = await mkdtemp(join(tmpdir(), "slipway-regbase-"));
    registry = await startDockerRegistry({ storage: join(work, "storage"), configDir: work });
    dir = join(work, "app");
    await (await import("node:fs/promises")).mkdir(dir);
    const busybox = await readFile(await busyboxTarball(work));
    base = imageOf([layerOf(busybox, "gzip")]);
    await pushDirect(registry.host, "lib/busybox", blobsOf(base), [{ blob: base.manifest, tag: "1" }]);
    server = await startServer({ host: "127.0.0.1", port: 0, dataDir: join(work, "data") });
    client = new Client({ url: server.url, token: (await readFile(server.slipway.adminTokenPath, "utf8")).trim() });
    await writeFile(join(dir, "handler.ts"), `import { readFileSync, existsSync } from "node:fs";\nexport default () => ({ hi: readFileSync("/hi", "utf8").trim(), extra: existsSync("/extra") });\n`);
  });

  afterAll(async () => {
    await server?.close();
    if (server) await removeDataDir(server.slipway.dataDir);
    await registry?.stop();
  });

  const app = async (ref: string) => {
    const path = join(dir, "app.ts");
    await writeFile(
      path,
      `import { App, Image } from "slipway";\nexport const app = new App("regbase");\napp.function("f", { image: Image.fromRegistry(${JSON.stringify(ref)}).run("echo hi > /hi"), handler: "./handler.ts" });\n`,
    );
    return path;
  };
  const annotations = async (digest: string) =>
    JSON.parse((await server.slipway.blobs.readBuffer(digest as `sha256:${string}`)).toString()).annotations as Record<string, string>;

  it("pulls a base from another registry, pins its tag in the image, and runs on it", async () => {
    const ref = `${registry.host}/lib/busybox:1`;
    const deployed = (await deployAppFile(client, await app(ref))) as { version: number; images: Built["images"] };
    expect(deployed.version).toBe(1);
    const image = deployed.images.f!.digest;
    expect(await annotations(image)).toEqual({
      "org.opencontainers.image.base.name": `${ref}@${base.manifest.descriptor.digest}`,
      "org.opencontainers.image.base.digest": base.manifest.descriptor.digest,
    });
    expect((await client.invoke("regbase", "f", null)).json()).toEqual({ hi: "hi", extra: false });
    // The base's blobs are in Slipway's store now, verified.
    for (const l of base.layers) expect(await server.slipway.blobs.stat(l.descriptor.digest)).toMatchObject({ size: l.descriptor.size });
  });

  it("notices a moved tag on the next build; the deployed version keeps its pinned base", async () => {
    const extra = layerOf(await tarOf([{ name: "extra", type: "file", content: "new\n" }]), "gzip");
    const moved = imageOf([base.layers[0]!, extra]);
    await pushDirect(registry.host, "lib/busybox", blobsOf(moved), [{ blob: moved.manifest, tag: "1" }]);

    const built = ((await buildAppFile(client, join(dir, "app.ts"))) as Built).images.f!;
    expect(built.steps.map((s) => s.status)).toEqual(["miss", "miss"]);
    expect(built.steps[0]!.reason).toBe(
      `base image moved: ${registry.host}/lib/busybox:1 was ${base.manifest.descriptor.digest}, now ${moved.manifest.descriptor.digest}`,
    );
    // Nothing was deployed: main still runs v1 on the old base.
    const res = await client.invoke("regbase", "f", null);
    expect(res.version).toBe(1);
    expect(res.json()).toEqual({ hi: "hi", extra: false });

    const v2 = (await deployAppFile(client, join(dir, "app.ts"))) as { version: number };
    expect(v2.version).toBe(2);
    expect((await client.invoke("regbase", "f", null)).json()).toEqual({ hi: "hi", extra: true });
    expect((await client.invoke("regbase", "f", null, { version: 1 })).json()).toEqual({ hi: "hi", extra: false });
  });

  it("pins a multi-platform tag to its index and builds on its linux/amd64 image", async () => {
    const arm = imageOf([layerOf(await tarOf([{ name: "arm", type: "file", content: "arm\n" }]), "gzip")], { platform: { os: "linux", architecture: "arm64" } });
    const index = indexOf([
      { descriptor: arm.manifest.descriptor, platform: { os: "linux", architecture: "arm64" } },
      { descriptor: base.manifest.descriptor, platform: { os: "linux", architecture: "amd64" } },
    ]);
    await pushDirect(registry.host, "lib/multi", [...blobsOf(arm), ...blobsOf(base)], [{ blob: arm.manifest }, { blob: base.manifest }, { blob: index, tag: "latest" }]);
    const built = ((await buildAppFile(client, await app(`${registry.host}/lib/multi`))) as Built).images.f!;
    expect(await annotations(built.digest)).toEqual({
      "org.opencontainers.image.base.name": `${registry.host}/lib/multi:latest@${index.descriptor.digest}`,
      "org.opencontainers.image.base.digest": base.manifest.descriptor.digest,
    });
  });

  it("names a base that does not exist", async () => {
    await expect(buildAppFile(client, await app(`${registry.host}/lib/absent:1`))).rejects.toThrow(/lib\/absent/);
  });
});
