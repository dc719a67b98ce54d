// Deployments through the real CLI and server on busybox: deploy without promoting, promote, rollback (DV1-DV3),
// concurrent deploys, runtime config apart from code (RT1) with secrets, traffic splits, smoke gates, --wait and
// the status API, warm-before-flip and draining of the old version, and the events every move writes.
import { readFileSync } from "node:fs";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "../src/sdk/client.js";
import { busyboxTarball } from "./helpers/busybox.js";
import { removeDataDir, startServerProcess, type ServerProcess } from "./helpers/cli.js";
import { announceSkip, containerSkipReason } from "./helpers/env.js";
import { tempDirs } from "./helpers/temp-dirs.js";

const temp = tempDirs();

const skip = announceSkip("deployments (runc containers)", containerSkipReason());

const DRAIN_TIMEOUT_MS = 3000;

/** An app file: busybox with BUILD_ID in the image env, and the handlers named. */
const appFile = (name: string, opts: { buildId?: string; run?: string; fns?: string; minContainers?: number } = {}) => `
import { App, Image } from "slipway";
const image = Image.fromTarball("./busybox.tar")${opts.run ? `.run(${JSON.stringify(opts.run)})` : ""}.env({ BUILD_ID: ${JSON.stringify(opts.buildId ?? "a")} });
export const app = new App(${JSON.stringify(name)});
${opts.fns ?? `app.function("env", { image, handler: "./env.ts", timeoutMs: 20000, minContainers: ${opts.minContainers ?? 0} });`}
`;

const ENV_HANDLER = (marker: string) => `
export default async (input: { sleepMs?: number; fail?: boolean } | null, ctx: { version: number }) => {
  if (input?.fail) throw new Error("smoke input rejected by ${marker}");
  if (input?.sleepMs) await new Promise((r) => setTimeout(r, input.sleepMs));
  const { USER, BUILD_ID, LOG } = process.env;
  return { marker: ${JSON.stringify(marker)}, version: ctx.version, env: { USER, BUILD_ID, LOG }, keyLength: (process.env.API_KEY ?? "").length };
};
`;

interface Deployed {
  id: string;
  version: number;
  created: boolean;
  status: string;
  moved: { from: number | null; to: number; reason: string } | null;
}

describe.skipIf(skip)("deployments", () => {
  let server: ServerProcess;
  let root: string;
  let client: Client;

  beforeAll(async () => {
    server = await startServerProcess({ args: ["--drain-timeout-ms", String(DRAIN_TIMEOUT_MS)] });
    root = await temp("slipway-deploy-");
    await busyboxTarball(root);
    client = new Client({ url: server.url, token: readFileSync(join(server.dataDir, "admin-token"), "utf8").trim() });
  });

  afterAll(async () => {
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
  });

  /** Writes an app into its own directory (sharing the busybox tarball) and returns its file. */
  const writeApp = async (name: string, opts: Parameters<typeof appFile>[1] & { marker?: string; file?: string } = {}) => {
    await writeFile(join(root, opts.file ?? `${name}.ts`), appFile(name, opts));
    await writeFile(join(root, "env.ts"), ENV_HANDLER(opts.marker ?? "A"));
    return join(root, opts.file ?? `${name}.ts`);
  };
  const cli = async (args: string[], expectCode = 0) => {
    const res = await server.cli(args);
    expect(res.code, `slipway ${args.join(" ")}\n${res.stderr}`).toBe(expectCode);
    return res;
  };
  const deploy = async (file: string, ...extra: string[]) => (await cli(["deploy", file, "--json", ...extra])).json<Deployed>();
  const call = async (app: string, input: unknown = null, options: Parameters<Client["invoke"]>[3] = {}) => {
    const res = await client.invoke(app, "env", input, options);
    return { res, out: res.json() as { marker: string; version: number; env: Record<string, string | undefined>; keyLength: number } };
  };
  const history = async (app: string) =>
    (await cli(["history", app, "--json"])).json<{ history: Array<{ fromVersion: number | null; toVersion: number; reason: string; actor: string }> }>().history;

  it("DV3: deploy v1, v2; promote v1 (recorded as a rollback); v3 --no-promote is callable by number and moves nothing; promote v3", async () => {
    const file = await writeApp("dv3", { marker: "one" });
    expect(await deploy(file)).toMatchObject({ version: 1, created: true, status: "live", moved: { from: null, to: 1 } });
    await writeApp("dv3", { marker: "two" });
    expect(await deploy(file)).toMatchObject({ version: 2, moved: { from: 1, to: 2 } });

    const promoted = (await cli(["promote", "dv3", "--version", "v1", "--json"])).json();
    expect(promoted).toMatchObject({ from: 2, to: 1, reason: "rollback" });
    expect((await call("dv3")).out).toMatchObject({ marker: "one", version: 1 });

    await writeApp("dv3", { marker: "three" });
    const before = await history("dv3");
    expect(await deploy(file, "--no-promote")).toMatchObject({ version: 3, created: true, moved: null, status: "created" });
    expect(await history("dv3")).toEqual(before);
    expect((await call("dv3")).out).toMatchObject({ marker: "one", version: 1 });
    const pinned = await call("dv3", null, { version: 3 });
    expect(pinned.out).toMatchObject({ marker: "three", version: 3 });
    expect(pinned.res.revision).toBeNull();

    expect((await cli(["promote", "dv3", "--version", "3", "--json"])).json()).toMatchObject({ from: 1, to: 3, reason: "promote" });
    expect((await call("dv3")).out).toMatchObject({ marker: "three", version: 3 });
    expect((await history("dv3")).map((h) => [h.fromVersion, h.toVersion, h.reason])).toEqual([
      [null, 1, "deploy"],
      [1, 2, "deploy"],
      [2, 1, "rollback"],
      [1, 3, "promote"],
    ]);

    // Every move wrote its events; builds report per-step hit/miss.
    const { events } = await client.json<{ events: Array<{ type: string; data: Record<string, unknown> }> }>("/api/v1/events?app=dv3&limit=1000");
    const types = events.map((e) => e.type);
    for (const t of ["build.started", "build.finished", "version.created", "deployment.moved", "deployment.live", "deployment.rolled_back"]) expect(types).toContain(t);
    expect(types.filter((t) => t === "deployment.moved")).toHaveLength(4);
    const built = events.find((e) => e.type === "build.finished")!.data as { images: Record<string, { steps: Array<{ status: string }> }> };
    expect(Object.values(built.images)[0]!.steps.map((s) => s.status)).toEqual(["miss", "miss"]);
  });

  it("DV1: a config change is a new version with the same images and code; rollback restores the old (empty) configuration", async () => {
    const file = await writeApp("dv1");
    const v1 = await deploy(file);
    expect((await call("dv1")).out.env.USER).toBeUndefined();

    const set = (await cli(["config", "set", "dv1", "USER=test", "--json"])).json<{ version: number; config: { revision: number }; moved: { from: number; to: number; reason: string } }>();
    expect(set).toMatchObject({ version: 2, moved: { from: 1, to: 2, reason: "config" } });
    const [a, b] = await Promise.all([1, 2].map((v) => client.json<{ content: { functions: unknown; code: string; config: number | null } }>(`/api/v1/apps/dv1/versions/${v}`)));
    expect(b!.content.functions).toEqual(a!.content.functions);
    expect(b!.content.code).toBe(a!.content.code);
    expect([a!.content.config, b!.content.config]).toEqual([null, set.config.revision]);
    expect((await call("dv1")).out).toMatchObject({ version: 2, env: { USER: "test", BUILD_ID: "a" } });

    const rb = (await cli(["rollback", "dv1", "--json"])).json();
    expect(rb).toMatchObject({ from: 2, to: v1.version, reason: "rollback" });
    const back = (await call("dv1")).out;
    expect(back.version).toBe(1);
    expect(back.env).toEqual({ BUILD_ID: "a" });
    expect((await cli(["config", "show", "dv1", "--json"])).json()).toMatchObject({ version: 1, entries: [] });
    expect((await history("dv1")).at(-1)).toMatchObject({ fromVersion: 2, toVersion: 1, reason: "rollback" });
    // Config has its own history, which the rollback does not rewrite.
    const revs = (await cli(["config", "history", "dv1", "--json"])).json<{ revisions: Array<{ revision: number; changes: unknown[] }> }>().revisions;
    expect(revs.map((r) => [r.revision, r.changes])).toEqual([[1, [{ key: "USER", op: "set", secret: false }]]]);
  });

  it("RT1: the image's env is overlaid by the config's own keys only; a new image's env shows through", async () => {
    const file = await writeApp("rt1", { buildId: "a" });
    await deploy(file);
    await cli(["config", "set", "rt1", "LOG=debug"]);
    expect((await call("rt1")).out.env).toEqual({ BUILD_ID: "a", LOG: "debug" });
    await writeApp("rt1", { buildId: "b" });
    const v3 = await deploy(file);
    expect(v3).toMatchObject({ version: 3, moved: { from: 2, to: 3 } });
    expect((await call("rt1")).out).toMatchObject({ version: 3, env: { BUILD_ID: "b", LOG: "debug" } });
  });

  it("DV2: of two concurrent deploys to main, the one that finishes last cannot silently win", async () => {
    const slowFile = await writeApp("dv2", { run: "sleep 3; echo slow > /slow", marker: "A", file: "dv2-a.ts" });
    const slow = server.cli(["deploy", slowFile, "--json"]);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const st = await client.json<{ deploys: Array<{ status: string }> }>("/api/v1/apps/dv2/status").catch(() => null);
      if (st?.deploys.some((d) => d.status === "building")) break;
      if (Date.now() > deadline) throw new Error("deploy A never started building");
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 300));
    // A's handler file was already bundled; B has its own code and a cached image.
    const fastFile = await writeApp("dv2", { marker: "B", file: "dv2-b.ts" });
    const b = await deploy(fastFile);
    expect(b.moved).toMatchObject({ from: null, to: b.version });
    const a = await slow;
    expect(a.code, a.stderr).toBe(4);
    expect(a.stderr).toContain(`deployment dv2/main moved while this deploy was in progress: it now points at v${b.version}`);
    expect((await call("dv2")).out).toMatchObject({ marker: "B", version: b.version });
    const versions = (await cli(["versions", "dv2", "--json"])).json<{ versions: Array<{ number: number }>; deployments: Array<{ version: number }> }>();
    expect(versions.versions).toHaveLength(2);
    expect(versions.deployments).toEqual([expect.objectContaining({ name: "main", version: b.version })]);
    expect((await history("dv2")).map((h) => h.toVersion)).toEqual([b.version]);
    const status = await client.json<{ deploys: Array<{ status: string; error: string | null }> }>("/api/v1/apps/dv2/status");
    expect(status.deploys.map((d) => d.status).sort()).toEqual(["failed", "live"]);
  });

  it("secrets are sealed at rest, masked in the API and in errors, and reach only the function's environment", async () => {
    const secret = "sk-test-4f9a8b7c6d5e";
    await writeFile(join(root, "leak.ts"), `export default () => { throw new Error("cannot call upstream with key " + process.env.API_KEY); };\n`);
    const file = await writeApp("sec", {
      fns: `app.function("env", { image, handler: "./env.ts" });\napp.function("leak", { image, handler: "./leak.ts" });`,
    });
    await deploy(file);
    const set = await cli(["config", "set", "sec", `API_KEY=${secret}`, "--secret", "--json"]);
    expect(set.stdout.toString()).not.toContain(secret);
    expect((await call("sec")).out.keyLength).toBe(secret.length);
    const shown = (await cli(["config", "show", "sec", "--json"])).json<{ entries: Array<{ key: string; value: string; secret: boolean }> }>();
    expect(shown.entries).toEqual([{ key: "API_KEY", value: "••••••", secret: true }]);
    const leak = await cli(["invoke", "sec/leak"], 8);
    expect(leak.stderr).toContain("cannot call upstream with key ••••••");
    expect(leak.stderr).not.toContain(secret);
    for (const path of ["/api/v1/apps/sec/config/history", "/api/v1/events?app=sec&limit=1000", "/api/v1/apps/sec/history", "/api/v1/apps/sec/versions"]) {
      expect(JSON.stringify(await client.json(path))).not.toContain(secret);
    }
    // Nowhere at rest: not in the database (WAL included), not in any blob, layer or snapshot, and not in runc's
    // bundles and state while the function's containers run (the runtime gets its configuration over the socket).
    const hits: string[] = [];
    const scan = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, entry.name);
        if (entry.isDirectory()) await scan(p);
        else if (entry.isFile() && (await stat(p)).size < 64 * 1024 * 1024 && (await readFile(p)).includes(secret)) hits.push(p);
      }
    };
    for (const entry of await readdir(server.dataDir)) {
      const p = join(server.dataDir, entry);
      if (entry.startsWith("slipway.db")) {
        if ((await readFile(p)).includes(secret)) hits.push(p);
      } else if (["blobs", "snapshots", "code", "bundles", "runc", "containers"].includes(entry)) await scan(p);
    }
    expect((await client.json<{ versions: Array<{ containers: { total: number } }> }>("/api/v1/apps/sec/status")).versions.some((v) => v.containers.total > 0)).toBe(true);
    expect(hits).toEqual([]);
  });

  it("traffic splits: keys stick to a version, shares follow the weights, bad splits are refused, rollback ends the canary", async () => {
    const file = await writeApp("canary", { marker: "stable" });
    await deploy(file);
    await writeApp("canary", { marker: "canary" });
    await deploy(file, "--no-promote");

    const bad = await cli(["traffic", "canary", "main", "v1=90", "v2=5"], 2);
    expect(bad.stderr).toContain("sums to 95%");
    expect((await cli(["traffic", "canary", "main", "v1=50", "v9=50"], 2)).stderr).toContain("v9 does not exist");
    // A mistyped deployment is refused, not made.
    expect((await cli(["traffic", "canary", "mian", "v1=90", "v2=10"], 3)).stderr).toContain('app canary has no deployment "mian" (it has main)');

    const split = (await cli(["traffic", "canary", "main", "v1=90", "v2=10", "--json"])).json();
    expect(split).toMatchObject({ from: 1, to: 1, reason: "traffic", traffic: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }] });

    for (let k = 0; k < 30; k++) {
      const seen = new Set<number>();
      for (let i = 0; i < 4; i++) seen.add((await call("canary", null, { routingKey: `user-${k}` })).res.version);
      expect(seen.size, `user-${k}`).toBe(1);
    }
    const counts = new Map<number, number>();
    // The issue's bar: over 10,000 unkeyed calls, each version's share is within 3 points of its weight.
    const N = 10_000;
    let next = 0;
    await Promise.all(
      Array.from({ length: 40 }, async () => {
        while (next++ < N) {
          const { res, out } = await call("canary");
          expect(out.version).toBe(res.version);
          counts.set(res.version, (counts.get(res.version) ?? 0) + 1);
        }
      }),
    );
    expect((counts.get(1) ?? 0) + (counts.get(2) ?? 0)).toBe(N);
    expect(Math.abs(((counts.get(1) ?? 0) / N) * 100 - 90)).toBeLessThan(3);
    expect(Math.abs(((counts.get(2) ?? 0) / N) * 100 - 10)).toBeLessThan(3);

    const rb = (await cli(["rollback", "canary", "--json"])).json();
    expect(rb).toMatchObject({ to: 1, traffic: null, reason: "rollback" });
    for (let i = 0; i < 20; i++) expect((await call("canary")).res.version).toBe(1);
  });

  it("deploy --smoke: a failing input leaves the pointer where it was and shows the handler's error; a passing one flips", async () => {
    const file = await writeApp("smoke", { marker: "good" });
    await deploy(file);
    await writeApp("smoke", { marker: "next" });
    const failed = await cli(["deploy", file, "--smoke", '{"fail":true}'], 8);
    expect(failed.stderr).toContain("smoke test of smoke/env v2 failed, so main stays on v1");
    expect(failed.stderr).toContain("smoke input rejected by next");
    expect((await call("smoke")).out).toMatchObject({ marker: "good", version: 1 });
    expect((await history("smoke")).map((h) => h.toVersion)).toEqual([1]);
    const st = await client.json<{ deploys: Array<{ status: string; version: number; error: string }> }>("/api/v1/apps/smoke/status");
    expect(st.deploys[0]).toMatchObject({ status: "failed", version: 2, error: expect.stringContaining("smoke input rejected") });

    const passed = await deploy(file, "--smoke", '{"fail":false}');
    expect(passed).toMatchObject({ status: "live", moved: { from: 1 } });
    expect((await call("smoke")).out).toMatchObject({ marker: "next" });
  });

  it("deploy --wait: warm containers start before the flip, the status API counts them per version, the old version drains", async () => {
    const file = await writeApp("warm", { marker: "w1", minContainers: 1 });
    const first = await cli(["deploy", file, "--wait", "--json"]);
    const w1 = first.json<Deployed & { deploy: { status: string }; app: { versions: Array<{ version: number; routed: boolean; containers: { total: number; idle: number } }> } }>();
    expect(w1.deploy.status).toBe("live");
    expect(w1.app.versions).toEqual([expect.objectContaining({ version: 1, routed: true, containers: expect.objectContaining({ total: 1, idle: 1 }) })]);
    expect((await call("warm")).res.coldStart).toBeNull();

    await writeApp("warm", { marker: "w2", minContainers: 1 });
    const long = call("warm", { sleepMs: 1500 });
    await new Promise((r) => setTimeout(r, 300));
    const second = (await cli(["deploy", file, "--wait", "--json"])).json<{ version: number; app: { versions: Array<{ version: number; routed: boolean; containers: { total: number; busy: number } }> } }>();
    expect(second.version).toBe(2);
    const v2 = second.app.versions.find((v) => v.version === 2)!;
    expect(v2).toMatchObject({ routed: true });
    expect(v2.containers.total).toBeGreaterThanOrEqual(1);
    expect(second.app.versions.find((v) => v.version === 1)).toMatchObject({ routed: false, containers: { busy: 1 } });
    // The first call on the new version finds it warm; the call held by v1 finishes there.
    expect((await call("warm")).res.coldStart).toBeNull();
    expect((await long).out).toMatchObject({ marker: "w1", version: 1 });
    // v1's idle container goes once the drain grace passes.
    const deadline = Date.now() + DRAIN_TIMEOUT_MS + 5000;
    for (;;) {
      const st = await client.json<{ versions: Array<{ version: number }> }>("/api/v1/apps/warm/status");
      if (!st.versions.some((v) => v.version === 1)) break;
      if (Date.now() > deadline) throw new Error(`v1 still has containers: ${JSON.stringify(st.versions)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const status = await cli(["status", "warm"]);
    expect(status.stdout.toString()).toMatch(/main\s+v2/);
  });

  it("a call still running on the old version at the drain timeout is stopped and says why", async () => {
    const file = await writeApp("drain", { marker: "d1" });
    await deploy(file);
    const stuck = call("drain", { sleepMs: DRAIN_TIMEOUT_MS + 4000 }).then(
      () => null,
      (err: Error) => err,
    );
    await new Promise((r) => setTimeout(r, 300));
    await writeApp("drain", { marker: "d2" });
    await deploy(file);
    const started = Date.now();
    const err = await stuck;
    expect(err?.message).toContain("drain timeout");
    expect(Date.now() - started).toBeLessThan(DRAIN_TIMEOUT_MS + 1500);
    expect((await call("drain")).out).toMatchObject({ marker: "d2", version: 2 });
  });
});
