// `slipway server`: runs the API, registry, builder and worker in one process.
import type { Command } from "commander";
import { resolve } from "node:path";
import { loadConfig } from "../config.js";
import { runCommand } from "../output.js";

export function register(program: Command): void {
  program
    .command("server")
    .description("run the Slipway server (API, registry, builder, worker) in one process")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <port>", "port to listen on", "7700")
    .option("--data <dir>", "data directory (default: $SLIPWAY_DATA or ./.slipway)")
    .option("--log", "log every request (pino, to stdout)")
    .option("--json", "print the listening address as JSON")
    .action(async (opts: { host: string; port: string; data?: string; log?: boolean; json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const { startServer } = await import("../../server/main.js");
        const dataDir = opts.data ? resolve(opts.data) : loadConfig().dataDir;
        const server = await startServer({ host: opts.host, port: Number(opts.port), dataDir, logger: Boolean(opts.log) });
        out.result(
          { url: server.url, dataDir, adminToken: server.slipway.adminTokenPath },
          `slipway listening on ${server.url}\ndata: ${dataDir}\nadmin token: ${server.slipway.adminTokenPath}`,
        );
        const stop = () => {
          void server.close().finally(() => process.exit(0));
        };
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
    });
}
