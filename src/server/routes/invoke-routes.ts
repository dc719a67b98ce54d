// Calling functions. The response names the version, image digest and pointer revision that served the call.
import type { FastifyInstance } from "fastify";
import { parseWith } from "../../core/schemas.js";
import type { Slipway } from "../context.js";
import { versionParam } from "./common.js";

export function registerInvokeRoutes(api: FastifyInstance, sw: Slipway): void {
  api.post("/api/v1/apps/:app/functions/:fn/invoke", async (request, reply) => {
    const { app, fn } = request.params as { app: string; fn: string };
    const query = request.query as { version?: string; deployment?: string; key?: string };
    const header = request.headers["slipway-routing-key"];
    const input = Buffer.isBuffer(request.body) ? request.body : Buffer.from(request.body === undefined ? "" : JSON.stringify(request.body));
    const result = await sw.invokeService.invoke({
      app,
      function: fn,
      version: query.version ? parseWith(versionParam, query.version.replace(/^v/, ""), "version") : undefined,
      deployment: query.deployment,
      routingKey: query.key ?? (typeof header === "string" ? header : undefined),
      input,
      contentType: String(request.headers["content-type"] ?? "application/json"),
    });
    return reply
      .header("content-type", result.contentType)
      .header("slipway-version", String(result.version))
      .header("slipway-image-digest", result.image)
      .header("slipway-invocation", result.id)
      .header("slipway-container", result.containerId)
      .header("slipway-duration-ms", String(result.durationMs))
      .header("slipway-revision", result.revision === null ? "" : String(result.revision))
      .header("slipway-deployment", result.deployment ?? "")
      .header("slipway-cold-start", result.coldStart ? JSON.stringify(result.coldStart) : "")
      .send(result.body);
  });

  api.get("/api/v1/status", async () => ({ containers: sw.worker.stats() }));
}
