// `slipway server`: runs the API, registry, builder and worker in one process.
import type { Command } from "commander";
import { resolve } from "node:path";
import { InvalidError } from "../../core/errors.js";
import { loadConfig } from "../config.js";
import { runCommand } from "../output.js";

export function register(program: Command): void {
  program
    .command("server")
    .description("run the Slipway server (API, registry, builder, worker) in one process")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <port>", "port to listen on", "7700")
    .option("--data <dir>", "data directory (default: $SLIPWAY_DATA or ./.slipway)")
    .option("--layer-compression <kind>", "compression of the layers builds write: zstd or gzip (for Docker engines before 23)", "zstd")
    .option("--drain-timeout-ms <ms>", "how long calls on a version no deployment routes to may still run before they are stopped", "30000")
    .option("--anonymous-pull", "let anyone pull from the registry without credentials")
    .option("--max-layer-ratio <n>", "refuse a layer as a decompression bomb once, past 256 MiB, it unpacks to more than n times its compressed bytes (default 100)")
    .option("--log", "log every request (pino, to stdout)")
    .option("--json", "print the listening address as JSON")
    .action(async (opts: { host: string; port: string; data?: string; layerCompression: string; drainTimeoutMs: string; anonymousPull?: boolean; maxLayerRatio?: string; log?: boolean; json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const { startServer } = await import("../../server/main.js");
        const { parseFaults } = await import("../../server/faults.js");
        const config = loadConfig();
        const dataDir = opts.data ? resolve(opts.data) : config.dataDir;
        const faults = parseFaults(config.fault);
        const drainTimeoutMs = Number(opts.drainTimeoutMs);
        if (!Number.isInteger(drainTimeoutMs) || drainTimeoutMs < 0) throw new InvalidError(`--drain-timeout-ms ${JSON.stringify(opts.drainTimeoutMs)} is not a number of milliseconds`);
        if (opts.layerCompression !== "zstd" && opts.layerCompression !== "gzip") {
          throw new InvalidError(`--layer-compression must be zstd or gzip, not ${JSON.stringify(opts.layerCompression)}`);
        }
        const maxLayerRatio = opts.maxLayerRatio === undefined ? undefined : Number(opts.maxLayerRatio);
        if (maxLayerRatio !== undefined && !(maxLayerRatio >= 1)) throw new InvalidError(`--max-layer-ratio ${JSON.stringify(opts.maxLayerRatio)} is not a ratio of at least 1`);
        const port = Number(opts.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidError(`--port ${JSON.stringify(opts.port)} is not a port number`);
        const server = await startServer({ host: opts.host, port, dataDir, logger: Boolean(opts.log), compression: opts.layerCompression, drainTimeoutMs, faults, anonymousPull: Boolean(opts.anonymousPull), maxLayerRatio });
        out.result(
          { url: server.url, dataDir, adminToken: server.slipway.adminTokenPath },
          `slipway listening on ${server.url} (API /api/v1, registry /v2/)\ndata: ${dataDir}\nadmin token: ${server.slipway.adminTokenPath}${server.slipway.adminTokenCreated ? " (created now; keep it secret)" : ""}`,
        );
        const stop = () => {
          void server.close().finally(() => process.exit(0));
        };
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
    });
}
