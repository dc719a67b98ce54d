// Slipway's in-container runtime. The worker mounts a Node runtime and this file into the container (any base
// image, even one without Node) and runs it; it answers the worker over a Unix socket in a mounted directory:
// GET /ready once listening, POST /init with the runtime configuration (environment values, secrets among them,
// which so never sit in a file on disk) after which it loads the handler, then POST /invoke per call.
// Standalone on purpose: it imports only node: modules.
import { createServer, type IncomingMessage } from "node:http";
import { pathToFileURL } from "node:url";

const socketPath = process.env.SLIPWAY_SOCKET;
const handlerPath = process.env.SLIPWAY_HANDLER;
if (!socketPath || !handlerPath) {
  process.stderr.write("slipway runtime: SLIPWAY_SOCKET and SLIPWAY_HANDLER must be set\n");
  process.exit(2);
}

type Handler = (input: unknown, context: Record<string, unknown>) => unknown;
let handler: Handler | null = null;

/** Sets the configuration's environment, then loads the handler module (its top level may read process.env). */
async function init(env: Record<string, string>): Promise<void> {
  Object.assign(process.env, env);
  const mod = (await import(pathToFileURL(handlerPath!).href)) as { default?: unknown; handler?: unknown };
  const fn = typeof mod.default === "function" ? mod.default : mod.handler;
  if (typeof fn !== "function") throw new TypeError(`${handlerPath} exports no handler (export default async function (input) { … })`);
  handler = fn as Handler;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

const server = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/ready") {
    res.writeHead(200).end("ok");
    return;
  }
  if (req.method === "POST" && req.url === "/init") {
    void readBody(req)
      .then((body) => init((JSON.parse(body.toString("utf8")) as { env?: Record<string, string> }).env ?? {}))
      .then(
        () => res.writeHead(200).end("ok"),
        (err) => sendError(res, 500, err),
      );
    return;
  }
  if (req.method !== "POST" || req.url !== "/invoke" || !handler) {
    res.writeHead(handler ? 404 : 409).end();
    return;
  }
  const run = handler;
  void readBody(req).then((body) => {
    void (async () => {
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
        const result = await run(input, context);
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
