// Blob response bodies: bytes copied from the store's file to the socket through two buffers reused for the whole
// response, one being read while the other is written. A pull of a large layer then allocates nothing per chunk,
// which saves more CPU than the copying costs (and a CPU-bound client shares the machine with the server).
import type { ServerResponse } from "node:http";
import type { FastifyReply } from "fastify";
import type { BlobFile } from "../store/blob-store.js";

const CHUNK_BYTES = 2 * 1024 * 1024;

/**
 * Sends bytes `start`..`end` (inclusive) of an open blob as the reply's body, with the status and headers already
 * set on the reply, and closes the file. Never rejects: once the headers are out, a failure (or a client that goes
 * away) ends the connection, which the client sees as a body shorter than its Content-Length.
 */
export async function sendBlobBody(reply: FastifyReply, file: BlobFile, start: number, end: number): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) res.setHeader(name, value);
  res.writeHead(reply.statusCode);
  const length = end - start + 1;
  const buffers: Buffer[] = [];
  const writes: Array<Promise<void> | undefined> = [];
  let position = start;
  let i = 0;
  try {
    while (position <= end) {
      await writes[i];
      if (res.destroyed) return;
      const buffer = (buffers[i] ??= Buffer.allocUnsafeSlow(Math.min(CHUNK_BYTES, length)));
      const n = await file.readInto(buffer.subarray(0, Math.min(buffer.length, end - position + 1)), position);
      if (n === 0) throw new Error(`blob ended at byte ${position}, before byte ${end}`);
      position += n;
      writes[i] = written(res, buffer.subarray(0, n));
      i = 1 - i;
    }
    await Promise.all(writes);
    res.end();
  } catch {
    res.destroy();
  } finally {
    await file.close().catch(() => undefined);
  }
}

/** Resolves once the socket has taken the chunk (its buffer may then be reused), or the response is gone. */
function written(res: ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("close", done);
      resolve();
    };
    res.once("close", done);
    res.write(chunk, done);
  });
}
