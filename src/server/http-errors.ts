// The one place Slipway's error codes become HTTP statuses and JSON bodies on the control-plane API.
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { InternalError, InvalidError, isSlipwayError, type ErrorCode, type SlipwayError } from "../core/errors.js";

export const STATUS_BY_CODE: Record<ErrorCode, number> = {
  "not-found": 404,
  "already-exists": 409,
  invalid: 400,
  conflict: 409,
  unavailable: 503,
  timeout: 504,
  unauthorized: 401,
  denied: 403,
  failed: 422,
  internal: 500,
};

/** Turns anything thrown into a SlipwayError: fastify's own errors (bad JSON, body too large) become `invalid`. */
export function toSlipwayError(err: unknown): SlipwayError {
  if (isSlipwayError(err)) return err;
  const fe = err as Partial<FastifyError>;
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new InvalidError(fe.message ?? "bad request", { fastify: fe.code });
  }
  return new InternalError(err instanceof Error ? err.message : String(err), {}, { cause: err });
}

export function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  const e = toSlipwayError(err);
  return reply.status(STATUS_BY_CODE[e.code]).type("application/json").send({ error: e.toJSON() });
}

export function errorHandler(this: unknown, err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const e = toSlipwayError(err);
  if (e.code === "internal") request.log.error({ err }, "internal error");
  void sendError(reply, e);
}
