// Slipway's in-container runtime. The worker mounts a Node runtime and this file into the container (any base
// image, even one without Node) and runs it; it loads the function's handler and answers the worker over a Unix
// socket in a mounted directory: GET /ready, POST /invoke. Standalone on purpose: it imports only node: modules.
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";

const socketPath = process.env.SLIPWAY_SOCKET;
const handlerPath = process.env.SLIPWAY_HANDLER;
if (!socketPath || !handlerPath) {
  process.stderr.write("slipway runtime: SLIPWAY_SOCKET and SLIPWAY_HANDLER must be set\n");
  process.exit(2);
}

type Handler = (input: unknown, context: Record<string, unknown>) => unknown;

const mod = (await import(pathToFileURL(handlerPath).href)) as { default?: unknown; handler?: unknown };
const handler = (typeof mod.default === "function" ? mod.default : mod.handler) as Handler | undefined;
if (typeof handler !== "function") {
  process.stderr.write(`slipway runtime: ${handlerPath} exports no handler (export default async function (input) { … })\n`);
  process.exit(3);
}

const server = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/ready") {
    res.writeHead(200).end("ok");
    return;
  }
  if (req.method !== "POST" || req.url !== "/invoke") {
    res.writeHead(404).end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    void (async () => {
      const body = Buffer.concat(chunks);
      let input: unknown;
      try {
        const type = req.headers["content-type"] ?? "";
        input = type.startsWith("application/json") ? (body.length ? JSON.parse(body.toString("utf8")) : null) : body;
      } catch (err) {
        sendError(res, 400, err);
        return;
      }
      const context = {
        invocationId: req.headers["x-slipway-invocation"],
        app: process.env.SLIPWAY_APP,
        function: process.env.SLIPWAY_FUNCTION,
        version: Number(process.env.SLIPWAY_VERSION),
      };
      try {
        const result = await handler(input, context);
        if (result instanceof Uint8Array) {
          res.writeHead(200, { "content-type": "application/octet-stream", "content-length": result.byteLength }).end(result);
        } else {
          const json = Buffer.from(JSON.stringify(result === undefined ? null : result));
          res.writeHead(200, { "content-type": "application/json", "content-length": json.length }).end(json);
        }
      } catch (err) {
        sendError(res, 500, err);
      }
    })();
  });
});

function sendError(res: import("node:http").ServerResponse, status: number, err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err));
  const body = Buffer.from(JSON.stringify({ name: e.name, message: e.message, stack: e.stack ?? "" }));
  res.writeHead(status, { "content-type": "application/json", "content-length": body.length }).end(body);
}

server.keepAliveTimeout = 0;
server.listen(socketPath);
