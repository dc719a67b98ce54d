// What every route module shares: the caller's identity, JSON bodies (the API takes bodies as bytes), and
// NDJSON streams for long operations.
import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { InvalidError } from "../../core/errors.js";
import { toSlipwayError } from "../http-errors.js";

export const versionParam = z.coerce.number().int().positive();

export function actorOf(r: FastifyRequest): string {
  return (r as FastifyRequest & { actor?: string }).actor ?? "anonymous";
}

export function parseJsonBody(body: unknown): unknown {
  if (Buffer.isBuffer(body)) {
    if (body.length === 0) return undefined;
    try {
      return JSON.parse(body.toString("utf8"));
    } catch (err) {
      throw new InvalidError(`request body is not valid JSON: ${(err as Error).message}`);
    }
  }
  return body;
}

/**
 * Streams progress events as NDJSON lines, then one `result` (or `error`) line: long operations stay observable.
 * A client that goes away stops the stream, not the operation.
 */
export async function streamNdjson(reply: FastifyReply, run: (emit: (event: unknown) => void) => Promise<unknown>): Promise<void> {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, { "content-type": "application/x-ndjson" });
  let corked = false;
  const write = (line: unknown) => {
    if (raw.destroyed || raw.writableEnded) return;
    // Lines written in one turn of the event loop leave together: an unchanged build's ~20 events in one packet,
    // not one each (the client reads, parses and prints each chunk it gets).
    if (!corked) {
      corked = true;
      raw.cork();
      setImmediate(() => {
        corked = false;
        raw.uncork();
      });
    }
    raw.write(JSON.stringify(line) + "\n");
  };
  try {
    const result = await run((event) => write({ type: "event", event }));
    write({ type: "result", result });
  } catch (err) {
    write({ type: "error", error: toSlipwayError(err).toJSON() });
  }
  if (!raw.destroyed) raw.end();
}
