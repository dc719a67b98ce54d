// The control plane's HTTP client, over both transports (node:http, which Node uses, and fetch, which Bun uses),
// against a real HTTP server on loopback that answers the way the Slipway server does.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SlipwayError } from "../core/errors.js";
import { Client, type Transport } from "./client.js";

const received: Array<{ method: string; url: string; auth: string | undefined; type: string | undefined; body: Buffer }> = [];
let server: Server;
let base: string;

const readAll = async (req: IncomingMessage): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const body = await readAll(req);
    received.push({ method: req.method ?? "", url: req.url ?? "", auth: req.headers.authorization, type: req.headers["content-type"], body });
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(value));
    };
    switch (req.url?.split("?")[0]) {
      case "/api/v1/echo":
        return json(200, { got: JSON.parse(body.toString()) });
      case "/api/v1/missing":
        return json(404, { error: { code: "not-found", message: "no app named nope", details: { app: "nope" } } });
      case "/api/v1/proxy-404":
        res.writeHead(404, { "content-type": "text/html" });
        return res.end("<h1>Not Found</h1>");
      case "/api/v1/fastify-404":
        // What Slipway's own HTTP server answers for a route it does not have (a SLIPWAY_URL with a path).
        return json(404, { message: "Route GET:/api/api/v1/x not found", error: "Not Found", statusCode: 404 });
      case "/api/v1/build": {
        res.writeHead(200, { "content-type": "application/x-ndjson" });
        res.write(`${JSON.stringify({ type: "event", event: { step: 1 } })}\n{"type":"event",`);
        await new Promise((r) => setTimeout(r, 20));
        res.write(`"event":{"step":2}}\n\n`);
        return res.end(`${JSON.stringify({ type: "result", result: { digest: "sha256:ab" } })}\n`);
      }
      case "/api/v1/deploy": {
        res.writeHead(200, { "content-type": "application/x-ndjson" });
        res.write(`${JSON.stringify({ type: "event", event: { step: 1 } })}\n`);
        return res.end(`${JSON.stringify({ type: "error", error: { code: "conflict", message: "main moved meanwhile" } })}\n`);
      }
      case "/api/v1/apps/a/functions/f/invoke":
        res.writeHead(200, {
          "content-type": "application/octet-stream",
          "slipway-version": "3",
          "slipway-image-digest": "sha256:cd",
          "slipway-revision": "7",
          "slipway-invocation": "inv-1",
          "slipway-container": "c-1",
          "slipway-duration-ms": "12",
          "slipway-cold-start": JSON.stringify({ totalMs: 90 }),
        });
        return res.end(Buffer.concat([Buffer.from([0, 255, 1]), body]));
      case "/api/v1/cut":
        // Promises a longer stream than it sends, then drops the connection.
        res.writeHead(200, { "content-type": "application/x-ndjson", "content-length": "1000" });
        res.write(`${JSON.stringify({ type: "event", event: {} })}\n`);
        return setTimeout(() => res.socket?.destroy(), 20);
      default:
        return json(500, {});
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const collect = async (items: AsyncIterable<unknown>): Promise<unknown[]> => {
  const out: unknown[] = [];
  for await (const i of items) out.push(i);
  return out;
};
const failure = async (p: Promise<unknown>): Promise<SlipwayError> => {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SlipwayError);
  return err as SlipwayError;
};

describe.each<Transport>(["http", "fetch"])("Client over %s", (transport) => {
  const client = () => new Client({ url: `${base}/`, token: "tok-1", transport });

  it("posts JSON with the bearer token and reads JSON back", async () => {
    expect(await client().post("/api/v1/echo", { a: [1, "ü"] })).toEqual({ got: { a: [1, "ü"] } });
    const sent = received.at(-1)!;
    expect(sent).toMatchObject({ method: "POST", url: "/api/v1/echo", auth: "Bearer tok-1", type: "application/json" });
  });

  it("turns the server's error body into the typed error, details kept", async () => {
    const err = await failure(client().json("/api/v1/missing"));
    expect(err).toMatchObject({ code: "not-found", message: "no app named nope", details: { app: "nope" } });
  });

  it("reads a 404 without Slipway's error body as something else on that address, never as an answer", async () => {
    const err = await failure(client().json("/api/v1/proxy-404"));
    expect(err.code).toBe("unavailable");
    expect(err.message).toMatch(/answered HTTP 404 without a Slipway error/);
    const route = await failure(client().json("/api/v1/fastify-404"));
    expect(route.code).toBe("unavailable");
    expect(route.message).toMatch(/fastify-404 answered HTTP 404 without a Slipway error: is SLIPWAY_URL a Slipway server\?/);
  });

  it("yields a stream's events and result across chunk boundaries, skipping blank lines", async () => {
    expect(await collect(client().build({ app: "a" }))).toEqual([
      { type: "event", event: { step: 1 } },
      { type: "event", event: { step: 2 } },
      { type: "result", result: { digest: "sha256:ab" } },
    ]);
    expect(JSON.parse(received.at(-1)!.body.toString())).toEqual({ app: "a" });
  });

  it("throws the error a stream ends with, after the events before it", async () => {
    const seen: unknown[] = [];
    const err = await failure(
      (async () => {
        for await (const m of client().deploy({})) seen.push(m);
      })(),
    );
    expect(seen).toEqual([{ type: "event", event: { step: 1 } }]);
    expect(err).toMatchObject({ code: "conflict", message: "main moved meanwhile" });
  });

  it("reads a stream cut short as unavailable", async () => {
    const c = client() as unknown as { stream(path: string, body: unknown): AsyncGenerator<unknown> };
    const err = await failure(collect(c.stream("/api/v1/cut", {})));
    expect(err.code).toBe("unavailable");
    expect(err.message).toMatch(/closed the \/api\/v1\/cut stream before it finished/);
  });

  it("sends bytes to invoke and reads bytes and the call's headers back", async () => {
    const res = await client().invoke("a", "f", new Uint8Array([9, 8]), { deployment: "staging", routingKey: "k" });
    expect([...res.body]).toEqual([0, 255, 1, 9, 8]);
    expect(res).toMatchObject({
      contentType: "application/octet-stream",
      version: 3,
      image: "sha256:cd",
      revision: 7,
      invocation: "inv-1",
      container: "c-1",
      durationMs: 12,
      coldStart: { totalMs: 90 },
    });
    expect(received.at(-1)).toMatchObject({ url: "/api/v1/apps/a/functions/f/invoke?deployment=staging&key=k", type: "application/octet-stream" });
  });

  it("names the address and says what to check when nothing listens there", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const err = await failure(new Client({ url: `http://127.0.0.1:${port}`, transport }).json("/api/v1/health"));
    expect(err.code).toBe("unavailable");
    expect(err.message).toMatch(new RegExp(`^cannot reach the Slipway server at http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.*; is \`slipway server\` running\\?$`));
  });
});
