// Starts the one-process server: API, registry, builder and worker, with its data in one directory.
import type { FastifyInstance } from "fastify";
import { UnavailableError } from "../core/errors.js";
import type { Compression } from "../oci/media-types.js";
import { buildApp } from "./app.js";
import { openSlipway, type Slipway } from "./context.js";
import type { FaultPlan } from "./faults.js";

export interface ServerOptions {
  host: string;
  port: number;
  dataDir: string;
  logger?: boolean;
  /** How the builder compresses new layers (zstd by default; gzip for clients that cannot read zstd). */
  compression?: Compression;
  drainTimeoutMs?: number;
  /** Crash-test pauses, from SLIPWAY_FAULT (see faults.ts). */
  faults?: FaultPlan;
  /** Registry pulls without credentials (off by default). */
  anonymousPull?: boolean;
  /** The compression ratio past which an unpacked layer is refused as a decompression bomb (default 100). */
  maxLayerRatio?: number;
}

export interface RunningServer {
  url: string;
  slipway: Slipway;
  app: FastifyInstance;
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const slipway = await openSlipway({
    dataDir: options.dataDir,
    compression: options.compression,
    drainTimeoutMs: options.drainTimeoutMs,
    faults: options.faults,
    anonymousPull: options.anonymousPull,
    maxLayerRatio: options.maxLayerRatio,
  });
  const app = buildApp(slipway, { logger: options.logger });
  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (err) {
    await app.close();
    await slipway.close();
    if ((err as NodeJS.ErrnoException).code === "EADDRINUSE") {
      throw new UnavailableError(`${options.host}:${options.port} is already in use (another server?); choose another --port`, { port: options.port });
    }
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  return {
    url: `http://${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}`,
    slipway,
    app,
    async close() {
      await app.close();
      await slipway.close();
    },
  };
}
