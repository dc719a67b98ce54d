// Webhook delivery from the persisted outbox to a real HTTP receiver on 127.0.0.1: retries after errors, signatures,
// stable event ids, and delivery that resumes after the process (here: the store and dispatcher) restarts.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EventStore } from "../store/event-store.js";
import { MetadataStore } from "../store/metadata-store.js";
import { EventLog } from "./events.js";
import { Dispatcher } from "./outbox.js";
import { SecretBox } from "./secret-box.js";
import { verifySignature, Webhooks } from "./webhooks.js";

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  answered: number;
}

/** A webhook receiver whose answers follow a script (then 200 forever). */
async function receiver(script: number[]): Promise<{ url: string; got: Received[]; server: Server; port: number }> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const answered = script.shift() ?? 200;
      got.push({ headers: req.headers, body, answered });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}/hook`, got, server, port };
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("webhook outbox", () => {
  let dir: string;
  let box: SecretBox;
  const open = () => {
    const meta = MetadataStore.open(join(dir, "slipway.db"));
    const store = new EventStore(meta);
    const events = new EventLog(store);
    const webhooks = new Webhooks(store, box);
    const dispatcher = new Dispatcher({ store, events, webhooks }, { baseDelayMs: 100, maxDelayMs: 400, attemptTimeoutMs: 2000 });
    return { meta, store, events, webhooks, dispatcher };
  };
  const servers: Server[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "slipway-outbox-"));
    box = await SecretBox.open(join(dir, "secrets.key"));
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses webhook URLs that are not http(s) or carry credentials", () => {
    const s = open();
    expect(() => s.webhooks.add({ url: "ftp://127.0.0.1/x" }, "tester")).toThrow(/must be http:\/\/ or https:\/\//);
    expect(() => s.webhooks.add({ url: "http://user:pass@127.0.0.1:9/x" }, "tester")).toThrow(/must not carry credentials/);
    expect(s.webhooks.list()).toEqual([]);
  });

  it("a receiver that answers 500 then 200 gets the event once it recovers, signed, with a stable id, and nothing more", async () => {
    const r = await receiver([500]);
    servers.push(r.server);
    const s = open();
    const hook = s.webhooks.add({ url: r.url }, "tester");
    s.dispatcher.start();
    const event = s.events.emit("deployment.moved", "app", { deployment: "main", from: 1, to: 2 });
    await until("a delivered attempt", () => s.webhooks.log(hook.id)[0]?.status === "delivered");
    // Give a duplicate the chance to show up before counting.
    await new Promise((res) => setTimeout(res, 500));
    expect(r.got.map((g) => g.answered)).toEqual([500, 200]);
    for (const g of r.got) {
      expect(g.headers["slipway-event-id"]).toBe(event.id);
      expect(JSON.parse(g.body)).toMatchObject({ id: event.id, type: "deployment.moved", app: "app", data: { to: 2 } });
      expect(verifySignature(String(g.headers["slipway-signature"]), hook.secret, g.body)).toBe(true);
      expect(verifySignature(String(g.headers["slipway-signature"]), "whsec_some-other-secret", g.body)).toBe(false);
      expect(verifySignature(String(g.headers["slipway-signature"]), hook.secret, g.body.replace('"to":2', '"to":3'))).toBe(false);
    }
    expect(r.got.map((g) => g.headers["slipway-attempt"])).toEqual(["1", "2"]);
    const log = s.webhooks.log(hook.id);
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ status: "delivered", attempts: 2 });
    expect(log[0]!.attemptLog.map((a) => [a.attempt, a.status, a.error])).toEqual([
      [1, 500, "HTTP 500"],
      [2, 200, null],
    ]);
    await s.dispatcher.stop();
    s.meta.close();
  });

  it("an event that was due when the process stopped is delivered after it starts again", async () => {
    const r = await receiver([]);
    servers.push(r.server);
    const first = open();
    const hook = first.webhooks.add({ url: r.url, events: ["deployment.moved"] }, "tester");
    // The receiver is down: every attempt is refused.
    await new Promise((res) => r.server.close(res));
    first.dispatcher.start();
    const event = first.events.emit("deployment.moved", "app", { to: 5 });
    first.events.emit("build.started", "app", {}); // filtered out by the webhook
    await until("a failed attempt", () => first.webhooks.log(hook.id)[0]?.attempts === 1);
    await first.dispatcher.stop();
    first.meta.close();

    // Up again, on the same port; a fresh process (store and dispatcher) picks up the pending delivery.
    const back = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        r.got.push({ headers: req.headers, body, answered: 200 });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((res) => back.listen(r.port, "127.0.0.1", res));
    servers.push(back);
    const second = open();
    second.dispatcher.start();
    await until("the delivery after restart", () => second.webhooks.log(hook.id)[0]?.status === "delivered");
    expect(r.got).toHaveLength(1);
    expect(r.got[0]!.headers["slipway-event-id"]).toBe(event.id);
    expect(verifySignature(String(r.got[0]!.headers["slipway-signature"]), hook.secret, r.got[0]!.body)).toBe(true);
    expect(second.webhooks.log(hook.id)[0]).toMatchObject({ status: "delivered", attempts: 2 });
    await second.dispatcher.stop();
    second.meta.close();
  });

  it("a 404 (what a proxy answers for an address nobody serves) is a failure, never a delivery", async () => {
    const r = await receiver([404, 404]);
    servers.push(r.server);
    const s = open();
    const hook = s.webhooks.add({ url: r.url }, "tester");
    s.dispatcher.start();
    s.events.emit("version.created", "app", { version: 1 });
    await until("three recorded attempts", () => s.webhooks.log(hook.id)[0]?.status === "delivered");
    expect(r.got).toHaveLength(3);
    expect(s.webhooks.log(hook.id)[0]!.attemptLog.map((a) => a.status)).toEqual([404, 404, 200]);
    await s.dispatcher.stop();
    s.meta.close();
  });

  it("refuses URLs that are not http(s) and unknown event types", () => {
    const s = open();
    expect(() => s.webhooks.add({ url: "ftp://x/y" }, "t")).toThrow(/must be http/);
    expect(() => s.webhooks.add({ url: "not a url" }, "t")).toThrow(/not a URL/);
    expect(() => s.webhooks.add({ url: "http://127.0.0.1:1/", events: ["deploy.exploded"] }, "t")).toThrow(/unknown event type/);
    s.meta.close();
  });
});
