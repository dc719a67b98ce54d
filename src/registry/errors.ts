// The registry's wire errors: every OCI Distribution error code, its HTTP status, and the one function that writes
// the spec's JSON body (`{"errors":[{"code","message","detail"}]}`). Nothing else in the registry sets an error
// status; handlers throw RegistryError (or a core SlipwayError, translated here) and this file answers.
import type { FastifyReply } from "fastify";
import { isSlipwayError, type ErrorCode } from "../core/errors.js";

/** The spec's closed set of codes (distribution-spec "Error Codes"), with the status each one answers with. */
const STATUS = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  // Not in the spec's list (which covers 4xx answers); distribution's codes for failures of the registry itself.
  UNKNOWN: 500,
  UNAVAILABLE: 503,
} as const;

export type RegistryErrorCode = keyof typeof STATUS;

export interface RegistryErrorOptions {
  /** Overrides the code's usual status where the spec asks for another (416 on an out-of-order chunk, 413 on size). */
  status?: number;
  detail?: unknown;
  headers?: Record<string, string>;
}

export class RegistryError extends Error {
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Record<string, string>;

  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    options: RegistryErrorOptions = {},
  ) {
    super(message);
    this.name = "RegistryError";
    this.status = options.status ?? STATUS[code];
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }
}

/** Core error codes that can reach the registry's edge, and the registry code each one becomes. */
const FROM_CORE: Partial<Record<ErrorCode, RegistryErrorCode>> = {
  unauthorized: "UNAUTHORIZED",
  denied: "DENIED",
  invalid: "BLOB_UPLOAD_INVALID",
};

/** Any thrown value as a RegistryError; unknown failures become a 500 without leaking internals into the body. */
export function toRegistryError(err: unknown): RegistryError {
  if (err instanceof RegistryError) return err;
  if (isSlipwayError(err)) {
    const code = FROM_CORE[err.code];
    if (code) return new RegistryError(code, err.message, { detail: err.details });
    if (err.code === "unavailable" || err.code === "timeout") {
      return new RegistryError("UNAVAILABLE", err.message, { detail: err.details });
    }
  }
  const fastifyStatus = (err as { statusCode?: number }).statusCode;
  if (fastifyStatus === 413) return new RegistryError("SIZE_INVALID", (err as Error).message, { status: 413 });
  if (fastifyStatus !== undefined && fastifyStatus >= 400 && fastifyStatus < 500) {
    return new RegistryError("UNSUPPORTED", (err as Error).message, { status: fastifyStatus });
  }
  return new InternalRegistryError(err);
}

/** A failure of the registry itself: answered as 500 with a generic body, logged with its cause. */
export class InternalRegistryError extends RegistryError {
  constructor(readonly causeError: unknown) {
    super("UNKNOWN", "internal registry error");
  }
}

/** Writes the error; a HEAD answer carries the status and headers only. */
export function sendRegistryError(reply: FastifyReply, err: RegistryError, method: string): FastifyReply {
  if (err instanceof InternalRegistryError) reply.log.error({ err: err.causeError }, "registry request failed");
  reply.status(err.status);
  for (const [name, value] of Object.entries(err.headers)) reply.header(name, value);
  reply.header("docker-distribution-api-version", "registry/2.0");
  if (method === "HEAD") return reply.header("content-length", "0").send();
  const entry: { code: string; message: string; detail?: unknown } = { code: err.code, message: err.message };
  if (err.detail !== undefined) entry.detail = err.detail;
  const body = JSON.stringify({ errors: [entry] });
  return reply.header("content-type", "application/json").send(body);
}
