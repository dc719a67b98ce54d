// Functions on a small busybox image, through the real CLI and server: warm containers, version pinning across a
// flip, and every kind of bad input (handler throws, timeout, unknown names, an app file or RUN step that fails).
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, writeFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "../src/sdk/client.js";
import { busyboxTarball } from "./helpers/busybox.js";
import { removeDataDir, runCli, startServerProcess, type ServerProcess } from "./helpers/cli.js";
import { announceSkip, containerSkipReason, toolSkipReason } from "./helpers/env.js";
import { tempDirs } from "./helpers/temp-dirs.js";

const temp = tempDirs();

const skip = announceSkip("runtime (runc containers)", containerSkipReason());

const APP = (extra = "") => `
import { App, Image } from "slipway";
const image = Image.fromTarball("./busybox.tar").run("echo built > /built.txt").env({ GREETING: "hi" });
export const app = new App("rt");
app.function("echo", { image, handler: "./echo.ts", timeoutMs: 20000 });
app.function("boom", { image, handler: "./boom.ts" });
app.function("slow", { image, handler: "./slow.ts", timeoutMs: 1000 });
app.function("hog", { image, handler: "./hog.ts", memoryMiB: 128 });
app.function("quit", { image, handler: "./quit.ts" });
${extra}
`;

const ECHO = (marker: string) => `
import { readFileSync } from "node:fs";
export default async function (input: { sleepMs?: number } | null, ctx: { version: number }) {
  if (input?.sleepMs) await new Promise((r) => setTimeout(r, input.sleepMs));
  return { marker: ${JSON.stringify(marker)}, input, greeting: process.env.GREETING, built: readFileSync("/built.txt", "utf8").trim(), version: ctx.version };
}
`;

describe.skipIf(skip)("functions in containers", () => {
  let server: ServerProcess;
  let dir: string;
  let client: Client;
  let token: string;

  beforeAll(async () => {
    server = await startServerProcess();
    dir = await mkdtemp(join(tmpdir(), "slipway-rt-app-"));
    await busyboxTarball(dir);
    await writeFile(join(dir, "app.ts"), APP());
    await writeFile(join(dir, "echo.ts"), ECHO("A"));
    await writeFile(join(dir, "boom.ts"), `export default function () { throw new Error("kaboom from the handler"); }`);
    await writeFile(join(dir, "hog.ts"), `export default function () { const chunks = []; for (;;) chunks.push(Buffer.alloc(64 << 20, 1)); }`);
    await writeFile(join(dir, "quit.ts"), `export default function () { process.exit(3); }`);
    await writeFile(join(dir, "slow.ts"), `export default async function () { await new Promise((r) => setTimeout(r, 30000)); return "late"; }`);
    token = (await import("node:fs")).readFileSync(join(server.dataDir, "admin-token"), "utf8").trim();
    client = new Client({ url: server.url, token });
  });

  afterAll(async () => {
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("deploys, runs the handler in the image, and names the version and image digest", async () => {
    const deployed = await server.cli(["deploy", join(dir, "app.ts"), "--json"]);
    expect(deployed.code, deployed.stderr).toBe(0);
    const result = deployed.json<{ version: number; created: boolean; images: Record<string, { digest: string }> }>();
    expect(result.version).toBe(1);
    expect(result.created).toBe(true);

    const res = await client.invoke("rt", "echo", { hello: "world" });
    expect(res.json()).toEqual({ marker: "A", input: { hello: "world" }, greeting: "hi", built: "built", version: 1 });
    expect(res.version).toBe(1);
    expect(res.image).toBe(Object.values(result.images)[0]!.digest);
    expect(res.coldStart).not.toBeNull();

    const cli = await server.cli(["invoke", "rt/echo", "--input", '{"n":1}', "--json"]);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.json<{ version: number; output: { input: unknown } }>()).toMatchObject({ version: 1, output: { input: { n: 1 } } });
  });

  it.skipIf(toolSkipReason("skopeo") !== null)("serves the deployed image to OCI clients from /v2/ (skopeo inspect and copy)", async () => {
    const res = await client.invoke("rt", "echo", null);
    const host = new URL(server.url).host;
    const creds = ["--tls-verify=false", "--creds", `slipway:${token}`];
    const inspected = JSON.parse(execFileSync("skopeo", ["inspect", ...creds, `docker://${host}/rt@${res.image}`], { encoding: "utf8" })) as {
      Digest: string;
      Env: string[];
      Layers: string[];
    };
    expect(inspected.Digest).toBe(res.image);
    expect(inspected.Env).toContain("GREETING=hi");
    const out = await temp("slipway-oci-");
    execFileSync("skopeo", ["--insecure-policy", "copy", "-q", "--src-tls-verify=false", "--src-creds", `slipway:${token}`, `docker://${host}/rt@${res.image}`, `oci:${out}:copied`]);
    const index = JSON.parse(await readFile(join(out, "index.json"), "utf8")) as { manifests: Array<{ digest: string }> };
    expect(index.manifests[0]!.digest).toBe(res.image);
    // Without credentials the registry challenges instead of serving.
    expect(() => execFileSync("skopeo", ["inspect", "--tls-verify=false", `docker://${host}/rt@${res.image}`], { stdio: "pipe" })).toThrow(/unauthorized|authentication required/i);
  });

  it("refuses to delete from the registry an image a version runs", async () => {
    const res = await client.invoke("rt", "echo", null);
    const del = await fetch(`${server.url}/v2/rt/manifests/${res.image}`, {
      method: "DELETE",
      headers: { authorization: `Basic ${Buffer.from(`slipway:${token}`).toString("base64")}` },
    });
    expect(del.status).toBe(403);
    const body = (await del.json()) as { errors: Array<{ code: string; message: string }> };
    expect(body.errors[0]).toMatchObject({ code: "DENIED", message: `manifest ${res.image} is in use by rt v1; it cannot be deleted` });
    expect((await client.invoke("rt", "echo", null)).image).toBe(res.image);
  });

  it("serves the next call from the warm container", async () => {
    const a = await client.invoke("rt", "echo", null);
    const b = await client.invoke("rt", "echo", null);
    expect(b.container).toBe(a.container);
    expect(b.coldStart).toBeNull();
  });

  it("shows a handler's error and stack, and keeps serving", async () => {
    const res = await server.cli(["invoke", "rt/boom"]);
    expect(res.code).toBe(8);
    expect(res.stderr).toContain("kaboom from the handler");
    expect(res.stderr).toMatch(/at .*boom\.mjs/);
    expect((await client.invoke("rt", "echo", null)).json()).toMatchObject({ marker: "A" });
  });

  it("stops a handler that passes its timeout, and the next call gets a fresh container", async () => {
    const res = await server.cli(["invoke", "rt/slow"]);
    expect(res.code).toBe(7);
    expect(res.stderr).toContain("exceeded its timeout of 1000 ms");
    const again = await server.cli(["invoke", "rt/slow"]);
    expect(again.code).toBe(7);
    expect((await client.invoke("rt", "echo", null)).json()).toMatchObject({ marker: "A" });
  });

  it("refuses a second server on the same data directory, and the first one's containers live on", async () => {
    const before = await client.invoke("rt", "echo", null);
    await expect(startServerProcess({ dataDir: server.dataDir })).rejects.toThrow(
      new RegExp(`server exited with 4:[\\s\\S]*another slipway server \\(pid ${server.child.pid}\\) is using ${server.dataDir}`),
    );
    const after = await client.invoke("rt", "echo", null);
    expect(after.container).toBe(before.container);
  });

  it("says a handler ran out of memory, or ended its process, and keeps serving", async () => {
    const hog = await server.cli(["invoke", "rt/hog"]);
    expect(hog.code).toBe(8);
    expect(hog.stderr).toContain("most likely out of memory; the function may use 128 MiB");
    const quit = await server.cli(["invoke", "rt/quit"]);
    expect(quit.code).toBe(8);
    expect(quit.stderr).toContain("exited during the call with code 3 (the handler's process ended: did it call process.exit?)");
    expect((await client.invoke("rt", "echo", null)).json()).toMatchObject({ marker: "A" });
  });

  it("names what is unknown: app, function, version, deployment", async () => {
    const app = await server.cli(["invoke", "nope/echo"]);
    expect(app.code).toBe(3);
    expect(app.stderr).toContain("app nope does not exist");
    const fn = await server.cli(["invoke", "rt/missing"]);
    expect(fn.code).toBe(3);
    expect(fn.stderr).toContain('has no function "missing"');
    const version = await server.cli(["invoke", "rt/echo", "--version", "v99"]);
    expect(version.code).toBe(3);
    expect(version.stderr).toContain("has no version v99");
    const deployment = await server.cli(["invoke", "rt/echo", "--deployment", "nightly"]);
    expect(deployment.code).toBe(3);
    expect(deployment.stderr).toContain('no deployment "nightly"');
    const rollback = await server.cli(["rollback", "nope"]);
    expect(rollback.code).toBe(3);
  });

  it("gc without a data directory says so and creates nothing", async () => {
    const missing = join(dir, "no-such-data");
    const res = await runCli(["gc", "--dry-run"], { SLIPWAY_DATA: missing });
    expect(res.code).toBe(3);
    expect(res.stderr).toContain(`no Slipway data directory at ${missing}`);
    expect(existsSync(missing)).toBe(false);
  });

  it("reports an app file that does not load, with file and line", async () => {
    await writeFile(join(dir, "broken.ts"), `import { App } from "slipway";\nexport const app = new App("rt";\n`);
    const res = await server.cli(["deploy", join(dir, "broken.ts")]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/broken\.ts:2:\d+/);
    const missing = await server.cli(["deploy", join(dir, "absent.ts")]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain("absent.ts does not exist");
  });

  it("reports a failing RUN step with its command, exit code and output, and caches nothing from it", async () => {
    const failing = join(dir, "failing.ts");
    await writeFile(
      failing,
      `import { App, Image } from "slipway";
const image = Image.fromTarball("./busybox.tar").run("echo built > /built.txt").env({ GREETING: "hi" }).run("echo about to fail; exit 3");
export const app = new App("rt");
app.function("echo", { image, handler: "./echo.ts" });`,
    );
    for (let attempt = 0; attempt < 2; attempt++) {
      const res = await server.cli(["deploy", failing]);
      expect(res.code).toBe(8);
      expect(res.stderr).toContain("step 4 failed: RUN echo about to fail; exit 3 exited with code 3");
      expect(res.stderr).toContain("about to fail");
      // Earlier steps stay cached; the failed one runs again.
      expect(res.stderr).toMatch(/\[echo 2\/4\] CACHED/);
      expect(res.stderr).not.toMatch(/\[echo 4\/4\] CACHED/);
    }
    const versions = await server.cli(["versions", "rt", "--json"]);
    expect(versions.json<{ versions: unknown[] }>().versions).toHaveLength(1);
    expect((await client.invoke("rt", "echo", null)).json()).toMatchObject({ marker: "A" });
  });

  it("finishes a call on the version it resolved when the pointer flips during it; new versions get new containers", async () => {
    const before = await client.invoke("rt", "echo", null);
    const long = client.invoke("rt", "echo", { sleepMs: 3000 });
    await new Promise((r) => setTimeout(r, 300));
    await writeFile(join(dir, "echo.ts"), ECHO("B"));
    const deployed = await server.cli(["deploy", join(dir, "app.ts"), "--json"]);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(deployed.json<{ version: number }>().version).toBe(2);
    const after = await client.invoke("rt", "echo", null);
    expect(after.json()).toMatchObject({ marker: "B", version: 2 });
    expect(after.container).not.toBe(before.container);
    const old = await long;
    expect(old.version).toBe(1);
    expect(old.json()).toMatchObject({ marker: "A", version: 1 });
    // A caller can still pin the old version.
    expect((await client.invoke("rt", "echo", null, { version: 1 })).json()).toMatchObject({ marker: "A" });
  });

  it("a deploy whose content equals an earlier version points at that version instead of numbering a copy", async () => {
    await writeFile(join(dir, "echo.ts"), ECHO("A"));
    const again = await server.cli(["deploy", join(dir, "app.ts"), "--json"]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.json()).toMatchObject({ version: 1, created: false, moved: { from: 2, to: 1 } });
    expect(again.stderr).toContain("same content as v1: no new version");
    expect((await client.invoke("rt", "echo", null)).json()).toMatchObject({ marker: "A", version: 1 });
    expect((await server.cli(["versions", "rt", "--json"])).json<{ versions: unknown[] }>().versions).toHaveLength(2);
  });

  it("garbage collection keeps what versions and the build cache use", async () => {
    const gc = await server.cli(["gc", "--grace", "0s", "--json"]);
    expect(gc.code, gc.stderr).toBe(0);
    const report = gc.json<{ manifests: Array<{ digest: string }>; blobs: Array<{ digest: string }> }>();
    const versions = (await server.cli(["versions", "rt", "--json"])).json<{ versions: Array<{ content: { code: string; functions: Record<string, { image: string }> } }> }>();
    const used = versions.versions.flatMap((v) => [v.content.code, ...Object.values(v.content.functions).map((f) => f.image)]);
    const deleted = new Set([...report.manifests, ...report.blobs].map((x) => x.digest));
    for (const digest of used) expect(deleted.has(digest), digest).toBe(false);
    // Every version still starts fresh containers after the collection (slow has none warm: each call of it was
    // stopped at its timeout, which it can only reach once its container runs), and the next build is all hits.
    for (const version of [1, 2]) {
      const res = await server.cli(["invoke", "rt/slow", "--version", String(version)]);
      expect(res.stderr).toContain("exceeded its timeout of 1000 ms");
    }
    const rebuilt = await server.cli(["build", join(dir, "app.ts"), "--json"]);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    const steps = Object.values(rebuilt.json<{ images: Record<string, { steps: Array<{ status: string }> }> }>().images)[0]!.steps;
    expect(steps.every((s) => s.status === "hit")).toBe(true);
  });
});
