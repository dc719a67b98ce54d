// Crash safety of the flip, by SIGKILL of a real server process: after the build and before the flip, inside the
// flip's transaction, and just after it committed. After a restart the pointer holds the old or the new version,
// the history agrees with it, the interrupted deploy reads as failed (or live), and webhook deliveries that were
// due when the process died are still made, signed, with the same event ids (at least once).
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { createServer, type Server, type ServerResponse } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifySignature } from "../src/deploy/webhooks.js";
import { Client } from "../src/sdk/client.js";
import { busyboxTarball } from "./helpers/busybox.js";
import { removeDataDir, startServerProcess, type ServerProcess } from "./helpers/cli.js";
import { announceSkip, containerSkipReason } from "./helpers/env.js";
import { tempDirs } from "./helpers/temp-dirs.js";
import { until } from "./helpers/until.js";

const temp = tempDirs();

const skip = announceSkip("deploy crash safety (runc containers, SIGKILL)", containerSkipReason());

interface Delivery {
  id: string;
  type: string;
  data: Record<string, unknown>;
  signatureOk: boolean;
  status: number | null;
}

/** A webhook receiver on 127.0.0.1: "hang" keeps requests open (the sender dies waiting); failNext answers 500s. */
class Receiver {
  readonly got: Delivery[] = [];
  mode: "ok" | "hang" = "ok";
  /** Answers this many requests with 500 before the mode applies again. */
  failNext = 0;
  secret = "";
  private readonly hanging: ServerResponse[] = [];
  private server!: Server;
  url = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        const event = JSON.parse(body) as { id: string; type: string; data: Record<string, unknown> };
        const signatureOk = verifySignature(String(req.headers["slipway-signature"]), this.secret, body);
        const status = this.failNext > 0 ? (this.failNext--, 500) : this.mode === "ok" ? 200 : null;
        this.got.push({ id: event.id, type: event.type, data: event.data, signatureOk, status });
        if (status === null) this.hanging.push(res);
        else res.writeHead(status).end();
      });
    });
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}/hook`;
  }

  delivered(pred: (d: Delivery) => boolean): Delivery[] {
    return this.got.filter((d) => d.status === 200 && pred(d));
  }

  async stop(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}


describe.skipIf(skip)("crash safety of the flip", () => {
  let server: ServerProcess;
  let dataDir: string;
  let dir: string;
  const receiver = new Receiver();

  const client = () => new Client({ url: server.url, token: readFileSync(join(dataDir, "admin-token"), "utf8").trim() });
  const restart = async (fault?: string) => {
    // One server per data directory: the one still running (if any) stops first.
    await server?.stop();
    server = await startServerProcess({ dataDir, env: fault ? { SLIPWAY_FAULT: fault } : { SLIPWAY_FAULT: "" } });
  };
  const writeHandler = (marker: string) => writeFile(join(dir, "fn.ts"), `export default (_: unknown, ctx: { version: number }) => ({ marker: ${JSON.stringify(marker)}, version: ctx.version });\n`);
  const state = async () => {
    const c = client();
    const { deployments } = await c.json<{ deployments: Array<{ name: string; version: number; revision: number }> }>("/api/v1/apps/crash/deployments");
    const { history } = await c.json<{ history: Array<{ revision: number; fromVersion: number | null; toVersion: number }> }>("/api/v1/apps/crash/history");
    return { main: deployments.find((d) => d.name === "main")!, history };
  };
  /** Starts a deploy in the background, waits for the server to announce the fault, and kills it with SIGKILL. */
  const deployAndKill = async (fault: string) => {
    const deploying = server.cli(["deploy", join(dir, "app.ts"), "--json"]);
    await until(`the ${fault} fault`, () => server.log().includes(`slipway fault: ${fault}`));
    await server.stop("SIGKILL");
    const res = await deploying;
    expect(res.code).not.toBe(0);
  };

  beforeAll(async () => {
    await receiver.start();
    dir = await temp("slipway-crash-");
    await busyboxTarball(dir);
    await writeFile(
      join(dir, "app.ts"),
      `import { App, Image } from "slipway";\nconst image = Image.fromTarball("./busybox.tar");\nexport const app = new App("crash");\napp.function("fn", { image, handler: "./fn.ts" });\n`,
    );
    server = await startServerProcess();
    dataDir = server.dataDir;
    const added = await server.cli(["webhooks", "add", receiver.url, "--app", "crash", "--json"]);
    expect(added.code, added.stderr).toBe(0);
    receiver.secret = added.json<{ secret: string }>().secret;
    await writeHandler("v1");
    const v1 = await server.cli(["deploy", join(dir, "app.ts"), "--json"]);
    expect(v1.code, v1.stderr).toBe(0);
    await until("v1's deployment.moved delivery", () => receiver.delivered((d) => d.type === "deployment.moved").length === 1);
    await server.stop();
  });

  afterAll(async () => {
    await server?.stop("SIGKILL");
    await receiver.stop();
    if (dataDir) await removeDataDir(dataDir);
  });

  it("killed after the build and before the flip: main stays on v1, the deploy reads as failed, due webhooks arrive after restart", async () => {
    await restart("pause-before-flip:60000");
    receiver.mode = "hang";
    await writeHandler("v2");
    await deployAndKill("pause-before-flip");

    receiver.mode = "ok";
    await restart();
    const { main, history } = await state();
    expect(main.version).toBe(1);
    expect(history.map((h) => h.toVersion)).toEqual([1]);
    expect(history.at(-1)!.revision).toBe(main.revision);
    const versions = await client().json<{ versions: Array<{ number: number }> }>("/api/v1/apps/crash/versions");
    expect(versions.versions.map((v) => v.number)).toEqual([1, 2]);
    const status = await client().json<{ deploys: Array<{ status: string; version: number | null; error: string | null }> }>("/api/v1/apps/crash/status");
    expect(status.deploys[0]).toMatchObject({ status: "failed", version: 2, error: expect.stringContaining("server stopped") });
    expect((await client().invoke("crash", "fn", null)).json()).toMatchObject({ marker: "v1", version: 1 });

    // What was due when the process died is delivered now, with the same event ids, signed.
    const created = await until("v2's version.created delivery", () => receiver.delivered((d) => d.type === "version.created" && d.data.version === 2)[0]);
    expect(receiver.got.filter((d) => d.id === created.id).every((d) => d.type === "version.created")).toBe(true);
    await until("build.finished of the killed deploy", () => receiver.delivered((d) => d.type === "build.finished" && d.data.deploy === created.data.deploy).length > 0);
    await until("deploy.failed from the restart", () => receiver.delivered((d) => d.type === "deploy.failed" && d.data.deploy === created.data.deploy).length > 0);
    expect(receiver.delivered((d) => d.type === "deployment.moved" && d.data.to === 2)).toEqual([]);
    await server.stop();
  });

  it("killed inside the flip's transaction: the move never happened, in the pointer, the history and the events", async () => {
    await restart("pause-in-flip:60000");
    receiver.mode = "hang";
    await writeHandler("v3");
    await deployAndKill("pause-in-flip");

    receiver.mode = "ok";
    await restart();
    const { main, history } = await state();
    expect(main.version).toBe(1);
    expect(history.map((h) => h.toVersion)).toEqual([1]);
    expect(history.at(-1)!.revision).toBe(main.revision);
    const { events } = await client().json<{ events: Array<{ type: string; data: { to?: number; version?: number } }> }>("/api/v1/events?app=crash&limit=1000");
    expect(events.filter((e) => e.type === "deployment.moved").map((e) => e.data.to)).toEqual([1]);
    const created = await until("v3's version.created delivery", () => receiver.delivered((d) => d.type === "version.created" && d.data.version === 3)[0]);
    expect(created.signatureOk).toBe(true);
    await server.stop();
  });

  it("killed right after the flip committed: main is on the new version, history and status agree, and its move is delivered", async () => {
    await restart("pause-after-flip:60000");
    receiver.mode = "hang";
    await writeHandler("v4");
    await deployAndKill("pause-after-flip");

    receiver.mode = "ok";
    await restart();
    const { main, history } = await state();
    expect(main.version).toBe(4);
    expect(history.map((h) => [h.fromVersion, h.toVersion])).toEqual([
      [null, 1],
      [1, 4],
    ]);
    expect(history.at(-1)!.revision).toBe(main.revision);
    const status = await client().json<{ deploys: Array<{ status: string; version: number | null }> }>("/api/v1/apps/crash/status");
    expect(status.deploys[0]).toMatchObject({ status: "live", version: 4 });
    expect((await client().invoke("crash", "fn", null)).json()).toMatchObject({ marker: "v4", version: 4 });
    const moved = await until("the move to v4, delivered", () => receiver.delivered((d) => d.type === "deployment.moved" && d.data.to === 4)[0]);
    await until("deployment.live of v4, delivered", () => receiver.delivered((d) => d.type === "deployment.live" && d.data.version === 4).length > 0);

    // Across the three crashes: every delivery is signed, and an event is delivered more than once only when an
    // earlier attempt died unanswered (at least once, never a different id for the same move).
    expect(receiver.got.every((d) => d.signatureOk)).toBe(true);
    const movesTo4 = receiver.got.filter((d) => d.type === "deployment.moved" && d.data.to === 4);
    expect(new Set(movesTo4.map((d) => d.id))).toEqual(new Set([moved.id]));
    const okPerEvent = new Map<string, number>();
    for (const d of receiver.got) if (d.status === 200) okPerEvent.set(d.id, (okPerEvent.get(d.id) ?? 0) + 1);
    expect([...okPerEvent.values()].every((n) => n === 1)).toBe(true);
  });

  it("webhooks test|list|log|remove through the CLI: a receiver that answers 500 then 200 gets the test event once it recovers", async () => {
    await restart();
    const list = await server.cli(["webhooks", "list", "--json"]);
    const [hook] = list.json<{ webhooks: Array<{ id: string; url: string }> }>().webhooks;
    expect(hook).toMatchObject({ url: receiver.url });
    receiver.failNext = 1;
    const test = await server.cli(["webhooks", "test", hook!.id]);
    expect(test.code, test.stderr).toBe(0);
    expect(test.stdout.toString()).toMatch(/pending \(HTTP 500\): HTTP 500; retrying at/);
    const tested = await until("the test event, delivered", () => receiver.delivered((d) => d.type === "webhook.test")[0]);
    expect(receiver.got.filter((d) => d.type === "webhook.test").map((d) => [d.id, d.status])).toEqual([
      [tested.id, 500],
      [tested.id, 200],
    ]);
    const log = (await server.cli(["webhooks", "log", hook!.id, "--json"])).json<{ deliveries: Array<{ event: string; status: string; attemptLog: Array<{ status: number }> }> }>();
    expect(log.deliveries[0]).toMatchObject({ event: tested.id, status: "delivered", attemptLog: [{ status: 500 }, { status: 200 }] });
    expect((await server.cli(["webhooks", "remove", hook!.id])).code).toBe(0);
    expect((await server.cli(["webhooks", "list", "--json"])).json<{ webhooks: unknown[] }>().webhooks).toEqual([]);
    const gone = await server.cli(["webhooks", "test", hook!.id]);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toContain(`no webhook ${hook!.id}`);
  });
});
