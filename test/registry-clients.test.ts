// Real clients against a running Slipway registry on 127.0.0.1: skopeo copy both ways, podman login/push/pull/run
// (with runc), buildah push, docker login/push/pull through Debian's Docker engine. Each logs in with a Slipway API
// token, the way a user would. A missing client skips its test with the reason printed.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxTarball } from "./helpers/busybox.js";
import { announceSkip, toolSkipReason } from "./helpers/env.js";
import { writeOciLayout, type ImageParts } from "./registry-kit.js";
import { listen, openRegistry, type TestRegistry } from "./registry-support.js";

const run = promisify(execFile);

let registry: TestRegistry;
let host: string;
let work: string;
let image: ImageParts;
let layoutDir: string;
let env: NodeJS.ProcessEnv;

const skopeoSkip = toolSkipReason("skopeo");
const podmanSkip = process.getuid?.() !== 0 ? "needs root (podman with runc)" : toolSkipReason("podman", "runc");
const buildahSkip = process.getuid?.() !== 0 ? "needs root" : toolSkipReason("buildah", "podman");
const dockerSkip = process.getuid?.() !== 0 ? "needs root (dockerd)" : toolSkipReason("dockerd", "/usr/bin/docker");
announceSkip("skopeo copy", skopeoSkip);
announceSkip("podman push/pull/run", podmanSkip);
announceSkip("buildah push", buildahSkip);
announceSkip("docker push/pull", dockerSkip);

beforeAll(async () => {
  registry = await openRegistry();
  host = new URL(await listen(registry)).host;
  work = await mkdtemp(join(tmpdir(), "registry-clients-"));
  layoutDir = join(work, "layout");
  const tar = await readFile(await busyboxTarball(work));
  image = await writeOciLayout(layoutDir, "v1", [tar], ["/bin/echo", "hello from slipway"]);
  // Clients keep credentials here, not in the user's ~/.docker or /run/containers.
  env = { ...process.env, REGISTRY_AUTH_FILE: join(work, "auth.json"), DOCKER_CONFIG: join(work, "docker") };
});

afterAll(async () => {
  await registry?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

const creds = () => `token:${registry.adminToken}`;

describe("skopeo", () => {
  it.skipIf(skopeoSkip)("copies an image in and back out, byte for byte, with --creds", async () => {
    await run("skopeo", ["copy", "--dest-tls-verify=false", "--dest-creds", creds(), `oci:${layoutDir}:v1`, `docker://${host}/clients/skopeo:v1`], { env });
    const head = await fetch(`http://${host}/v2/clients/skopeo/manifests/v1`, { method: "HEAD", headers: { authorization: registry.bearer } });
    expect(head.headers.get("docker-content-digest")).toBe(image.manifest.digest);
    const out = join(work, "skopeo-out");
    await run("skopeo", ["copy", "--src-tls-verify=false", "--src-creds", creds(), `docker://${host}/clients/skopeo:v1`, `oci:${out}:v1`], { env });
    const index = JSON.parse(await readFile(join(out, "index.json"), "utf8")) as { manifests: Array<{ digest: string }> };
    expect(index.manifests[0]!.digest).toBe(image.manifest.digest);
    const layer = await readFile(join(out, "blobs/sha256", image.layers[0]!.digest.slice(7)));
    expect(layer.equals(image.layers[0]!.bytes)).toBe(true);
    // Wrong credentials are refused.
    await expect(
      run("skopeo", ["copy", "--dest-tls-verify=false", "--dest-creds", "x:sw_" + "0".repeat(48), `oci:${layoutDir}:v1`, `docker://${host}/clients/denied:v1`], { env }),
    ).rejects.toThrow(/unauthorized|authentication required|invalid username\/password/i);
  });
});

describe("podman and buildah", () => {
  const storage = () => ["--root", join(work, "containers/root"), "--runroot", join(work, "containers/runroot"), "--storage-driver", "vfs"];
  const podman = (...args: string[]) => run("podman", [...storage(), "--runtime", "runc", "--cgroup-manager", "cgroupfs", ...args], { env, maxBuffer: 1 << 24 });

  it.skipIf(podmanSkip ?? skopeoSkip)("logs in with an API token, pulls, runs with runc, and pushes", async () => {
    await run("skopeo", ["copy", "--dest-tls-verify=false", "--dest-creds", creds(), `oci:${layoutDir}:v1`, `docker://${host}/clients/podman:v1`], { env });
    await podman("login", "--tls-verify=false", "-u", "anyone", "-p", registry.adminToken, host);
    await podman("pull", "--tls-verify=false", `${host}/clients/podman:v1`);
    // The limits podman would copy from this machine exceed what runc may set here (see shared/PEERS.md).
    const { stdout } = await podman("run", "--rm", "--network", "none", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096", `${host}/clients/podman:v1`);
    expect(stdout.trim()).toBe("hello from slipway");
    await podman("tag", `${host}/clients/podman:v1`, `${host}/clients/podman-pushed:v2`);
    await podman("push", "--tls-verify=false", `${host}/clients/podman-pushed:v2`);
    const tags = await fetch(`http://${host}/v2/clients/podman-pushed/tags/list`, { headers: { authorization: registry.bearer } });
    expect(((await tags.json()) as { tags: string[] }).tags).toEqual(["v2"]);
  });

  it.skipIf(buildahSkip ?? podmanSkip ?? skopeoSkip)("buildah pushes an image from containers storage", async () => {
    await run("buildah", [...storage(), "push", "--tls-verify=false", "--creds", creds(), `${host}/clients/podman:v1`, `docker://${host}/clients/buildah:v1`], { env });
    const res = await fetch(`http://${host}/v2/clients/buildah/manifests/v1`, { headers: { authorization: registry.bearer, accept: "application/vnd.oci.image.manifest.v1+json" } });
    expect(res.status).toBe(200);
    const manifest = (await res.json()) as { layers: unknown[] };
    expect(manifest.layers).toHaveLength(1);
  });
});

describe("docker", () => {
  let dockerd: ChildProcess | null = null;
  const socket = () => `unix://${join(work, "docker.sock")}`;
  const docker = (...args: string[]) => run("/usr/bin/docker", ["-H", socket(), ...args], { env, maxBuffer: 1 << 24 });

  afterAll(async () => {
    if (dockerd && dockerd.exitCode === null) {
      const exited = new Promise((r) => dockerd!.once("exit", r));
      dockerd.kill("SIGTERM");
      await exited;
    }
  });

  it.skipIf(dockerSkip ?? skopeoSkip)("logs in with an API token, pulls and pushes through Debian's Docker engine", async () => {
    const root = join(work, "docker-root");
    await mkdir(root, { recursive: true });
    dockerd = spawn(
      "dockerd",
      ["--iptables=false", "--bridge=none", "--storage-driver=overlay2", "-H", socket(), "--data-root", root, "--exec-root", join(work, "docker-exec"), "--pidfile", join(work, "docker.pid")],
      { stdio: "ignore" },
    );
    const deadline = Date.now() + 60_000;
    while ((await docker("version").then(() => true, () => false)) === false) {
      if (Date.now() > deadline || dockerd.exitCode !== null) throw new Error("dockerd did not start");
      await new Promise((r) => setTimeout(r, 200));
    }
    await run("skopeo", ["copy", "--dest-tls-verify=false", "--dest-creds", creds(), `oci:${layoutDir}:v1`, `docker://${host}/clients/docker:v1`], { env });
    await dockerLogin(socket(), host, registry.adminToken, env);
    await docker("pull", `${host}/clients/docker:v1`);
    await docker("tag", `${host}/clients/docker:v1`, `${host}/clients/docker-pushed:v2`);
    await docker("push", `${host}/clients/docker-pushed:v2`);
    const res = await fetch(`http://${host}/v2/clients/docker-pushed/manifests/v2`, { method: "HEAD", headers: { authorization: registry.bearer } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/vnd.docker.distribution.manifest.v2+json");
  });
});

/** `docker login` reads the password from stdin, which execFile cannot feed. */
function dockerLogin(socket: string, host: string, token: string, env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("/usr/bin/docker", ["-H", socket, "login", "-u", "anyone", "--password-stdin", host], { env, stdio: ["pipe", "pipe", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`docker login failed: ${err}`))));
    child.stdin.end(token + "\n");
  });
}
