// Pulling from other registries against a real one: Debian's docker-registry on loopback, filled with skopeo and
// with hand-made images, anonymous, behind htpasswd (Basic), and behind token auth with a token server of our own;
// and Slipway's own registry, filled with skopeo, with its API token as the credential.
// Cases EP1 (pin the index), EP2 (short names, in src/oci/reference.test.ts) and EP3 (token challenge).
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pullRegistryBase } from "../src/build/registry-base.js";
import { DeniedError, InvalidError, NotFoundError, UnauthorizedError, UnavailableError } from "../src/core/errors.js";
import { sha256, type Digest } from "../src/oci/digest.js";
import { MediaType } from "../src/oci/media-types.js";
import { SnapshotStore } from "../src/runtime/snapshots.js";
import { FsBlobStore } from "../src/store/blob-store.js";
import { RegistryClient } from "../src/registry/client.js";
import { busyboxTarball } from "./helpers/busybox.js";
import { startDockerRegistry, freePort, type StartedRegistry } from "./helpers/docker-registry.js";
import { announceSkip, toolSkipReason } from "./helpers/env.js";
import { blobsOf, imageOf, indexOf, layerOf, pushDirect, skopeoCopy, tarOf, writeOciLayout, type BuiltImage, type Blob } from "./helpers/oci-images.js";
import { makeSigningCert, startTokenServer, type TokenServer } from "./helpers/token-server.js";
import { listen, openRegistry, type TestRegistry } from "./registry-support.js";

const skipReason = toolSkipReason("docker-registry", "skopeo", "zstd", "openssl");
const skip = announceSkip("registry pull tests", skipReason);
const isRoot = process.getuid?.() === 0;

async function errorOf(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error("expected a failure");
    },
    (err: Error) => err,
  );
}

describe.skipIf(skip)("RegistryClient and pullRegistryBase against docker-registry", () => {
  let dir: string;
  let storage: string;
  let anon: StartedRegistry;
  const started: Array<{ stop(): Promise<void> }> = [];
  let busybox: BuiltImage;
  let mixed: BuiltImage;
  let amd64: BuiltImage;
  let arm64: BuiltImage;
  let multi: Blob;
  let dockerImage: BuiltImage;

  /** A fresh blob store in its own directory. */
  async function newStore(): Promise<FsBlobStore> {
    return FsBlobStore.open(await mkdtemp(join(dir, "store-")));
  }
  /** The file distribution keeps a blob in (to corrupt it on purpose). */
  function registryBlobPath(digest: Digest): string {
    const hex = digest.slice(7);
    return join(storage, "docker", "registry", "v2", "blobs", "sha256", hex.slice(0, 2), hex, "data");
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "slipway-pull-"));
    storage = join(dir, "registry-storage");
    anon = await startDockerRegistry({ storage, configDir: dir });
    started.push(anon);

    // A busybox image pushed the way users push: skopeo from an OCI layout.
    const busyboxTar = await readFile(await busyboxTarball(dir));
    busybox = imageOf([layerOf(busyboxTar, "gzip")]);
    await writeOciLayout(join(dir, "busybox-layout"), blobsOf(busybox), busybox.manifest.descriptor, "1");
    await skopeoCopy(join(dir, "busybox-layout"), "1", `${anon.host}/test/busybox:1`);

    // A multi-platform index, arm64 listed first, with an attestation-like entry, also through skopeo (--all).
    amd64 = imageOf([layerOf(await tarOf([{ name: "arch", content: "amd64\n" }]), "gzip")]);
    arm64 = imageOf([layerOf(await tarOf([{ name: "arch", content: "arm64\n" }]), "gzip")], { platform: { os: "linux", architecture: "arm64", variant: "v8" } });
    const attestation = imageOf([], { platform: { os: "unknown", architecture: "unknown" } });
    multi = indexOf([
      { descriptor: arm64.manifest.descriptor, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
      { descriptor: amd64.manifest.descriptor, platform: { os: "linux", architecture: "amd64" } },
      {
        descriptor: attestation.manifest.descriptor,
        platform: { os: "unknown", architecture: "unknown" },
        annotations: { "vnd.docker.reference.type": "attestation-manifest" },
      },
    ]);
    await writeOciLayout(join(dir, "multi-layout"), [...blobsOf(amd64), ...blobsOf(arm64), ...blobsOf(attestation), multi], multi.descriptor, "1");
    await skopeoCopy(join(dir, "multi-layout"), "1", `${anon.host}/test/multi:1`);

    // Layers in all three compressions, pushed directly (skopeo would compress the uncompressed one).
    mixed = imageOf([
      layerOf(await tarOf([{ name: "etc/", type: "directory" }, { name: "etc/gzip", content: "g\n" }]), "gzip"),
      layerOf(await tarOf([{ name: "etc/", type: "directory" }, { name: "etc/zstd", content: "z\n" }]), "zstd"),
      layerOf(await tarOf([{ name: "etc/", type: "directory" }, { name: "etc/plain", content: "p\n" }, { name: "etc/.wh.gzip", content: "" }]), "none"),
    ]);
    await pushDirect(anon.host, "test/mixed", blobsOf(mixed), [{ blob: mixed.manifest, tag: "1" }]);

    // Docker schema 2 media types throughout.
    const dockerLayer = layerOf(await tarOf([{ name: "docker", content: "d\n" }]), "gzip");
    dockerLayer.descriptor.mediaType = MediaType.dockerLayerGzip;
    dockerImage = imageOf([dockerLayer], { configMediaType: MediaType.dockerConfig, manifestMediaType: MediaType.dockerManifest });
    await pushDirect(anon.host, "test/docker", blobsOf(dockerImage), [{ blob: dockerImage.manifest, tag: "v2" }]);

    // Only other platforms, as an index and as a single manifest.
    const armv7 = imageOf([], { platform: { os: "linux", architecture: "arm", variant: "v7" } });
    const armOnly = indexOf([
      { descriptor: arm64.manifest.descriptor, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
      { descriptor: armv7.manifest.descriptor, platform: { os: "linux", architecture: "arm", variant: "v7" } },
    ]);
    await pushDirect(anon.host, "test/armonly", [...blobsOf(arm64), ...blobsOf(armv7)], [{ blob: arm64.manifest, tag: "single" }, { blob: armv7.manifest }, { blob: armOnly, tag: "index" }]);
  });

  afterAll(async () => {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe("anonymous registry", () => {
    const client = () => new RegistryClient();

    it("resolves a tag pushed by skopeo to the manifest digest and pins it", async () => {
      const r = await client().resolve(`${anon.host}/test/busybox:1`);
      expect(r.digest).toBe(busybox.manifest.descriptor.digest);
      expect(r.mediaType).toBe(MediaType.ociManifest);
      expect(r.pinned).toBe(`${anon.host}/test/busybox:1@${busybox.manifest.descriptor.digest}`);
      expect(r.manifest.descriptor.digest).toBe(r.digest);
      expect(r.index).toBeUndefined();
      expect(r.platform).toEqual({ os: "linux", architecture: "amd64" });
      expect(r.config.descriptor.digest).toBe(busybox.config.descriptor.digest);
      expect(r.config.parsed.rootfs.diff_ids).toEqual([busybox.layers[0]!.diffId]);
      expect(r.config.parsed.config.Cmd).toEqual(["sh"]);
    });

    it("pins a multi-platform tag to the index and records the linux/amd64 child beside it (EP1)", async () => {
      const r = await client().resolve(`${anon.host}/test/multi:1`);
      expect(r.digest).toBe(multi.descriptor.digest);
      expect(r.digest).toBe(sha256(multi.bytes));
      expect(r.mediaType).toBe(MediaType.ociIndex);
      expect(r.pinned).toBe(`${anon.host}/test/multi:1@${multi.descriptor.digest}`);
      expect(r.index?.parsed.manifests).toHaveLength(3);
      expect(r.manifest.descriptor.digest).toBe(amd64.manifest.descriptor.digest);
      expect(r.config.parsed.rootfs.diff_ids).toEqual([amd64.layers[0]!.diffId]);

      const arm = await new RegistryClient({ platform: { os: "linux", architecture: "arm64" } }).resolve(`${anon.host}/test/multi:1`);
      expect(arm.digest).toBe(multi.descriptor.digest);
      expect(arm.manifest.descriptor.digest).toBe(arm64.manifest.descriptor.digest);
      expect(arm.platform).toEqual({ os: "linux", architecture: "arm64", variant: "v8" });

      // By digest, and by tag plus digest (the digest wins), the same image.
      const byDigest = await client().resolve(`${anon.host}/test/multi@${multi.descriptor.digest}`);
      expect([byDigest.digest, byDigest.manifest.descriptor.digest, byDigest.pinned]).toEqual([
        multi.descriptor.digest,
        amd64.manifest.descriptor.digest,
        `${anon.host}/test/multi@${multi.descriptor.digest}`,
      ]);
      const both = await client().resolve(`${anon.host}/test/multi:ignored@${multi.descriptor.digest}`);
      expect(both.manifest.descriptor.digest).toBe(amd64.manifest.descriptor.digest);
    });

    it("says which platforms an image has when linux/amd64 is not among them", async () => {
      const err = await errorOf(client().resolve(`${anon.host}/test/armonly:index`));
      expect(err).toBeInstanceOf(NotFoundError);
      expect(err.message).toMatch(/has no linux\/amd64 image; it has linux\/arm64\/v8, linux\/arm\/v7/);
      const single = await errorOf(client().resolve(`${anon.host}/test/armonly:single`));
      expect(single).toBeInstanceOf(InvalidError);
      expect(single.message).toMatch(/is a linux\/arm64 image; Slipway runs linux\/amd64 here/);
    });

    it("reads Docker schema 2 manifests, configs and layers", async () => {
      const store = await newStore();
      const base = await pullRegistryBase(`${anon.host}/test/docker:v2`, { client: client(), blobs: store });
      expect(base.pinnedDigest).toBe(dockerImage.manifest.descriptor.digest);
      // The layer keeps its bytes (same digest) and is described with the OCI media type.
      expect(base.layers).toEqual([{ ...dockerImage.layers[0]!.descriptor, mediaType: MediaType.ociLayerGzip, diffId: dockerImage.layers[0]!.diffId }]);
    });

    it("pulls gzip, zstd and uncompressed layers into the store, verified, and unpacks them by diffID", async () => {
      const store = await newStore();
      const lines: string[] = [];
      const base = await pullRegistryBase(`${anon.host}/test/mixed:1`, { client: client(), blobs: store, log: (l) => lines.push(l) });
      expect(base.pinnedDigest).toBe(mixed.manifest.descriptor.digest);
      expect(base.platformDigest).toBe(mixed.manifest.descriptor.digest);
      expect(base.configDigest).toBe(mixed.config.descriptor.digest);
      expect(base.reference).toBe(`${anon.host}/test/mixed:1`);
      expect(base.layers.map((l) => l.mediaType)).toEqual([MediaType.ociLayerGzip, MediaType.ociLayerZstd, MediaType.ociLayerTar]);
      expect(base.layers.map((l) => l.diffId)).toEqual(mixed.layers.map((l) => l.diffId));
      for (const layer of mixed.layers) {
        expect(await store.stat(layer.descriptor.digest)).toEqual({ digest: layer.descriptor.digest, size: layer.descriptor.size });
        expect((await store.readBuffer(layer.descriptor.digest)).equals(layer.bytes)).toBe(true);
      }
      // Manifest and config are kept too, so a pinned reference resolves from the store.
      expect(await store.stat(mixed.manifest.descriptor.digest)).not.toBeNull();
      expect(await store.stat(mixed.config.descriptor.digest)).not.toBeNull();
      expect(lines.filter((l) => l.includes("pulled in"))).toHaveLength(3);

      const again: string[] = [];
      await pullRegistryBase(`${anon.host}/test/mixed:1`, { client: client(), blobs: store, log: (l) => again.push(l) });
      expect(again.filter((l) => l.includes("already present"))).toHaveLength(3);

      if (!isRoot) {
        console.log("SKIP unpacking pulled layers: needs root (mknod, chown)");
        return;
      }
      const snapshots = await SnapshotStore.open(join(dir, "snapshots-mixed"), store);
      const paths = await Promise.all(base.layers.map((l) => snapshots.ensure(l)));
      expect(await readFile(join(paths[0]!, "etc/gzip"), "utf8")).toBe("g\n");
      expect(await readFile(join(paths[1]!, "etc/zstd"), "utf8")).toBe("z\n");
      expect(await readFile(join(paths[2]!, "etc/plain"), "utf8")).toBe("p\n");
    });

    it("refuses a layer whose diffID does not match the config when unpacking (root)", async () => {
      if (!isRoot) {
        console.log("SKIP diffID check on unpack: needs root");
        return;
      }
      const store = await newStore();
      const base = await pullRegistryBase(`${anon.host}/test/mixed:1`, { client: client(), blobs: store });
      const snapshots = await SnapshotStore.open(join(dir, "snapshots-bad-diffid"), store);
      const wrong = { ...base.layers[0]!, diffId: base.layers[1]!.diffId };
      await expect(snapshots.ensure(wrong)).rejects.toThrow(/diffID is sha256:[0-9a-f]+, expected/);
      expect(await snapshots.has(wrong.diffId)).toBe(false);
    });

    it("refuses a blob the registry serves with wrong content, storing nothing", async () => {
      const victim = layerOf(await tarOf([{ name: "victim", content: "the real content\n" }]), "gzip");
      const image = imageOf([victim]);
      await pushDirect(anon.host, "test/corrupt", blobsOf(image), [{ blob: image.manifest, tag: "1" }]);
      const path = registryBlobPath(victim.descriptor.digest);
      const original = await readFile(path);
      const flipped = Buffer.from(original);
      flipped[flipped.length - 5]! ^= 0xff;
      await writeFile(path, flipped);

      const store = await newStore();
      const c = client();
      const err = await errorOf(c.fetchBlob(`${anon.host}/test/corrupt:1`, victim.descriptor, store));
      expect(err).toBeInstanceOf(InvalidError);
      expect(err.message).toContain(`served blob ${victim.descriptor.digest} of test/corrupt with other content`);
      expect(err.message).toContain("nothing was stored");
      expect(await store.stat(victim.descriptor.digest)).toBeNull();
      expect(await store.listWriters()).toEqual([]);
      const viaBase = await errorOf(pullRegistryBase(`${anon.host}/test/corrupt:1`, { client: c, blobs: store }));
      expect(viaBase).toBeInstanceOf(InvalidError);

      // Longer than the manifest says: refused from the Content-Length, before any byte is stored.
      await writeFile(path, Buffer.concat([original, Buffer.from("trailing")]));
      const longer = await errorOf(c.fetchBlob(`${anon.host}/test/corrupt:1`, victim.descriptor, store));
      expect(longer).toBeInstanceOf(InvalidError);
      expect(longer.message).toMatch(/with \d+ bytes; the manifest says \d+/);
      expect(await store.stat(victim.descriptor.digest)).toBeNull();

      // A config with other content fails the resolve.
      await writeFile(path, original);
      const configPath = registryBlobPath(image.config.descriptor.digest);
      const config = await readFile(configPath);
      await writeFile(configPath, Buffer.from(config.toString().replace('"sh"', '"xx"')));
      const badConfig = await errorOf(c.resolve(`${anon.host}/test/corrupt:1`));
      expect(badConfig).toBeInstanceOf(InvalidError);
      expect(badConfig.message).toContain(`served config blob ${image.config.descriptor.digest} of test/corrupt with other content`);
    });

    it("refuses layers that are not filesystem layers, naming the media type", async () => {
      const chart = layerOf(await tarOf([{ name: "Chart.yaml", content: "name: x\n" }]), "gzip");
      chart.descriptor.mediaType = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
      const image = imageOf([chart]);
      await pushDirect(anon.host, "test/chart", blobsOf(image), [{ blob: image.manifest, tag: "1" }]);
      const store = await newStore();
      const err = await errorOf(pullRegistryBase(`${anon.host}/test/chart:1`, { client: client(), blobs: store }));
      expect(err).toBeInstanceOf(InvalidError);
      expect(err.message).toMatch(/layers\[0\] has media type "application\/vnd\.cncf\.helm\.chart\.content\.v1\.tar\+gzip", which is not a filesystem layer/);
      expect(await store.stat(chart.descriptor.digest)).toBeNull();
    });

    it("names what is missing: an unknown tag, an unknown repository, a registry that is down, something that is not a registry", async () => {
      const unknownTag = await errorOf(client().resolve(`${anon.host}/test/busybox:nope`));
      expect(unknownTag).toBeInstanceOf(NotFoundError);
      expect(unknownTag.message).toMatch(new RegExp(`${anon.host}/test/busybox: manifest "nope" not found \\(MANIFEST_UNKNOWN`));
      const unknownRepo = await errorOf(client().resolve(`${anon.host}/test/none:1`));
      expect(unknownRepo).toBeInstanceOf(NotFoundError);

      const closedPort = await freePort();
      const down = await errorOf(client().resolve(`127.0.0.1:${closedPort}/test/busybox:1`));
      expect(down).toBeInstanceOf(UnavailableError);
      expect(down.message).toMatch(/cannot reach registry 127\.0\.0\.1:\d+ .*ECONNREFUSED/);

      const plain: Server = createServer((_req, res) => res.writeHead(404).end("nothing here"));
      await new Promise<void>((resolve) => plain.listen(0, "127.0.0.1", resolve));
      try {
        const port = (plain.address() as { port: number }).port;
        const notRegistry = await errorOf(client().resolve(`127.0.0.1:${port}/x:1`));
        expect(notRegistry).toBeInstanceOf(NotFoundError);
        expect(notRegistry.message).toMatch(/without a registry error body: is 127\.0\.0\.1:\d+ an OCI registry\?/);
      } finally {
        await new Promise<void>((resolve) => plain.close(() => resolve()));
      }
    });

    it("maps 403 to DeniedError and refuses non-image manifests by media type", async () => {
      const server: Server = createServer((req, res) => {
        if (req.url?.includes("/denied/")) res.writeHead(403, { "content-type": "application/json" }).end('{"errors":[{"code":"DENIED","message":"no"}]}');
        else res.writeHead(200, { "content-type": "application/vnd.example+json" }).end('{"schemaVersion":2,"mediaType":"application/vnd.example+json"}');
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      try {
        const port = (server.address() as { port: number }).port;
        const denied = await errorOf(client().resolve(`127.0.0.1:${port}/denied/x:1`));
        expect(denied).toBeInstanceOf(DeniedError);
        expect(denied.message).toContain("DENIED: no");
        const odd = await errorOf(client().resolve(`127.0.0.1:${port}/odd/x:1`));
        expect(odd).toBeInstanceOf(InvalidError);
        expect(odd.message).toMatch(/has media type "application\/vnd.example\+json", which is not an image manifest or index/);
      } finally {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    });

    it("needs no network for a second pull of a pinned reference", async () => {
      const own = await startDockerRegistry({ storage, configDir: dir });
      const store = await newStore();
      const first = await pullRegistryBase(`${own.host}/test/multi:1`, { client: client(), blobs: store });
      await own.stop();
      const offline = await pullRegistryBase(`${own.host}/test/multi@${first.pinnedDigest}`, { client: client(), blobs: store });
      expect(offline.layers).toEqual(first.layers);
      expect(offline.platformDigest).toBe(amd64.manifest.descriptor.digest);
      // A tag still has to ask the registry what it names now.
      const err = await errorOf(client().resolve(`${own.host}/test/multi:1`, { store }));
      expect(err).toBeInstanceOf(UnavailableError);
    });
  });

  describe("Slipway's own registry (token auth, API token as the password)", () => {
    let own: TestRegistry;
    let host: string;
    beforeAll(async () => {
      own = await openRegistry();
      started.push({ stop: () => own.close() });
      host = new URL(await listen(own)).host;
      const creds = ["--dest-creds", `token:${own.adminToken}`];
      await skopeoCopy(join(dir, "busybox-layout"), "1", `${host}/own/busybox:1`, creds);
      await skopeoCopy(join(dir, "multi-layout"), "1", `${host}/own/multi:1`, creds);
    });

    it("pulls with the API token sent to the realm, and refuses anonymous pulls", async () => {
      const anonymous = await errorOf(new RegistryClient().resolve(`${host}/own/busybox:1`));
      expect(anonymous).toBeInstanceOf(UnauthorizedError);

      const client = new RegistryClient({ auth: { [host]: { username: "token", password: own.adminToken } } });
      const store = await newStore();
      const base = await pullRegistryBase(`${host}/own/multi:1`, { client, blobs: store });
      expect(base.pinnedDigest).toBe(multi.descriptor.digest);
      expect(base.platformDigest).toBe(amd64.manifest.descriptor.digest);
      const busyboxBase = await pullRegistryBase(`${host}/own/busybox:1`, { client, blobs: store });
      expect(busyboxBase.layers.map((l) => l.digest)).toEqual([busybox.layers[0]!.descriptor.digest]);
      expect((await store.readBuffer(busybox.layers[0]!.descriptor.digest)).equals(busybox.layers[0]!.bytes)).toBe(true);
    });
  });

  describe("Basic auth (htpasswd)", () => {
    let host: string;
    beforeAll(async () => {
      const htpasswd = join(dir, "htpasswd");
      const hash = execFileSync("python3", ["-W", "ignore", "-c", "import crypt; print(crypt.crypt('s3cret, with comma', crypt.mksalt(crypt.METHOD_BLOWFISH)))"], {
        encoding: "utf8",
      }).trim();
      await writeFile(htpasswd, `alice:${hash}\n`);
      const reg = await startDockerRegistry({ storage, configDir: dir, auth: { htpasswd: { realm: "slipway test", path: htpasswd } } });
      started.push(reg);
      host = reg.host;
    });

    it("asks for credentials when there are none, refuses wrong ones, pulls with the right ones", async () => {
      const none = await errorOf(new RegistryClient().resolve(`${host}/test/busybox:1`));
      expect(none).toBeInstanceOf(UnauthorizedError);
      expect(none.message).toContain(`registry ${host} asks for a username and password (Basic auth); configure credentials for ${host}`);

      const wrong = await errorOf(new RegistryClient({ auth: { [host]: { username: "alice", password: "nope" } } }).resolve(`${host}/test/busybox:1`));
      expect(wrong).toBeInstanceOf(UnauthorizedError);
      expect(wrong.message).toContain(`refused the credentials configured for ${host} (user "alice")`);

      const client = new RegistryClient({ auth: { [host]: { username: "alice", password: "s3cret, with comma" } } });
      const store = await newStore();
      const base = await pullRegistryBase(`${host}/test/busybox:1`, { client, blobs: store });
      expect(base.pinnedDigest).toBe(busybox.manifest.descriptor.digest);
      expect(await store.stat(busybox.layers[0]!.descriptor.digest)).not.toBeNull();
    });
  });

  describe("token auth (Bearer challenge, EP3)", () => {
    const service = "slipway test registry";
    let certPath: string;
    let cert: ReturnType<typeof makeSigningCert>;

    async function tokenRegistry(options: Omit<Parameters<typeof startTokenServer>[0], "cert" | "issuer" | "service">): Promise<{ host: string; tokens: TokenServer }> {
      const tokens = await startTokenServer({ cert, issuer: "slipway-test-issuer", service, ...options });
      started.push({ stop: () => tokens.close() });
      // A realm with commas and an equals sign in it: they must survive the quoted-string parsing.
      const reg = await startDockerRegistry({
        storage,
        configDir: dir,
        auth: { token: { realm: `${tokens.origin}/token?a=1,2&b=x,y`, service, issuer: "slipway-test-issuer", rootCertBundle: certPath } },
      });
      started.push(reg);
      return { host: reg.host, tokens };
    }

    beforeAll(() => {
      cert = makeSigningCert(dir);
      certPath = cert.certPath;
    });

    it("answers the challenge, then reuses the token per scope until it expires", async () => {
      const { host, tokens } = await tokenRegistry({ field: "token", expiresInS: 300 });
      const client = new RegistryClient();
      const store = await newStore();
      const base = await pullRegistryBase(`${host}/test/multi:1`, { client, blobs: store });
      expect(base.pinnedDigest).toBe(multi.descriptor.digest);
      // The realm's own query (commas inside the quoted challenge value) arrives intact, beside service and scope.
      expect(tokens.requests).toEqual([{ query: { a: "1,2", b: "x,y", service }, scopes: ["repository:test/multi:pull"], service, user: null }]);

      // Same scope: the cached token serves the manifest, config and blob requests of a second resolve and pull.
      await client.resolve(`${host}/test/multi:1`);
      await client.fetchBlob(`${host}/test/multi:1`, arm64.layers[0]!.descriptor, store);
      expect(tokens.requests).toHaveLength(1);

      // Another repository is another scope, fetched without a 401 first since the realm is known.
      await client.resolve(`${host}/test/busybox:1`);
      expect(tokens.requests.map((r) => r.scopes)).toEqual([["repository:test/multi:pull"], ["repository:test/busybox:pull"]]);
    });

    it("takes access_token too, and fetches a new token once the old one expires", async () => {
      const { host, tokens } = await tokenRegistry({ field: "access_token", expiresInS: 1 });
      const client = new RegistryClient();
      await client.resolve(`${host}/test/busybox:1`);
      expect(tokens.requests).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 1100));
      await client.resolve(`${host}/test/busybox:1`);
      expect(tokens.requests).toHaveLength(2);
    });

    it("sends configured credentials to the realm, and says whose were refused", async () => {
      const { host, tokens } = await tokenRegistry({ users: { bob: "hunter2" } });
      const anonymous = await errorOf(new RegistryClient().resolve(`${host}/test/busybox:1`));
      expect(anonymous).toBeInstanceOf(UnauthorizedError);
      expect(anonymous.message).toMatch(new RegExp(`the token server ${tokens.origin.replace(/\./g, "\\.")} refused anonymous access to ${host.replace(/\./g, "\\.")}; configure credentials`));

      const wrong = await errorOf(new RegistryClient({ auth: { [host]: { username: "bob", password: "nope" } } }).resolve(`${host}/test/busybox:1`));
      expect(wrong).toBeInstanceOf(UnauthorizedError);
      expect(wrong.message).toContain('refused the credentials configured for');

      const client = new RegistryClient({ auth: { [host]: { username: "bob", password: "hunter2" } } });
      const r = await client.resolve(`${host}/test/busybox:1`);
      expect(r.digest).toBe(busybox.manifest.descriptor.digest);
      expect(tokens.requests.at(-1)).toMatchObject({ scopes: ["repository:test/busybox:pull"], service, user: "bob" });
    });
  });
});
