// Request bodies inside the registry: blobs stream straight from the socket into the blob store, and only small
// documents (manifests) are read into memory, up to a limit. The plugin replaces fastify's parsers so no body is
// buffered behind the handler's back.
import type { FastifyRequest } from "fastify";
import { RegistryError } from "./errors.js";

/** The declared Content-Length, or undefined when the body is chunked or absent. */
export function declaredLength(request: FastifyRequest): number | undefined {
  const raw = request.headers["content-length"];
  if (raw === undefined) return undefined;
  if (!/^\d{1,16}$/.test(raw)) throw new RegistryError("SIZE_INVALID", `Content-Length ${JSON.stringify(raw)} is not a byte count`);
  return Number(raw);
}

/** Whether the request carries body bytes (a positive length or a chunked transfer). */
export function hasBody(request: FastifyRequest): boolean {
  const length = declaredLength(request);
  return length !== undefined ? length > 0 : request.headers["transfer-encoding"] !== undefined;
}

/** Reads a small body whole; more than `limit` bytes (declared or sent) is 413 with `code`. */
export async function readSmallBody(request: FastifyRequest, limit: number, what: string): Promise<Buffer> {
  const length = declaredLength(request);
  const tooLarge = (size: number) =>
    new RegistryError("SIZE_INVALID", `${what} is ${size} bytes; the limit is ${limit}`, { status: 413, headers: { connection: "close" } });
  if (length !== undefined && length > limit) throw tooLarge(length);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of request.raw) {
      size += (chunk as Buffer).length;
      if (size > limit) throw tooLarge(size);
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof RegistryError) throw err;
    throw incomplete(what, size, length);
  }
  if (length !== undefined && size !== length) throw incomplete(what, size, length);
  return Buffer.concat(chunks, size);
}

/** The error for a body that stopped short of its Content-Length (the client lied or went away). */
export function incomplete(what: string, received: number, declared: number | undefined): RegistryError {
  const expected = declared === undefined ? "" : ` of the ${declared} declared in Content-Length`;
  return new RegistryError("SIZE_INVALID", `${what} ended after ${received} bytes${expected}`, {
    detail: { received, declared },
    headers: { connection: "close" },
  });
}
