// The closed set of error classes every module throws. Each carries a code; the server maps codes to HTTP
// statuses in one place and the CLI maps them to exit codes in one place.

export const ERROR_CODES = [
  "not-found",
  "already-exists",
  "invalid",
  "conflict",
  "unavailable",
  "timeout",
  "unauthorized",
  "denied",
  "failed",
  "internal",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export type ErrorDetails = Record<string, unknown>;

export class SlipwayError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
    this.name = new.target.name;
  }

  toJSON(): { code: ErrorCode; message: string; details: ErrorDetails } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** Something named (an app, version, blob, …) does not exist. */
export class NotFoundError extends SlipwayError {
  constructor(message: string, details?: ErrorDetails) {
    super("not-found", message, details);
  }
}
export class AlreadyExistsError extends SlipwayError {
  constructor(message: string, details?: ErrorDetails) {
    super("already-exists", message, details);
  }
}
/** The input is malformed: the message names what and where. */
export class InvalidError extends SlipwayError {
  constructor(message: string, details?: ErrorDetails) {
    super("invalid", message, details);
  }
}
/** A guarded transition lost a race (compare-and-swap against a stale revision). */
export class ConflictError extends SlipwayError {
  constructor(message: string, details?: ErrorDetails) {
    super("conflict", message, details);
  }
}
export class UnavailableError extends SlipwayError {
  constructor(message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super("unavailable", message, details, options);
  }
}
export class TimeoutError extends SlipwayError {
  constructor(message: string, details?: ErrorDetails) {
    super("timeout", message, details);
  }
}
export class UnauthorizedError extends SlipwayError {
  constructor(message: string, details?: ErrorDetails) {
    super("unauthorized", message, details);
  }
}
export class DeniedError extends SlipwayError {
  constructor(message: string, details?: ErrorDetails) {
    super("denied", message, details);
  }
}
/** User code failed: a build step exited non-zero, a handler threw. Details say which and how. */
export class FailedError extends SlipwayError {
  constructor(message: string, details?: ErrorDetails) {
    super("failed", message, details);
  }
}
export class InternalError extends SlipwayError {
  constructor(message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super("internal", message, details, options);
  }
}

export function isSlipwayError(err: unknown): err is SlipwayError {
  return err instanceof SlipwayError;
}

/** Rebuilds a typed error from its wire form (used by HTTP clients). */
export function errorFromWire(body: { code?: unknown; message?: unknown; details?: unknown }): SlipwayError {
  const code = ERROR_CODES.includes(body.code as ErrorCode) ? (body.code as ErrorCode) : "internal";
  const message = typeof body.message === "string" ? body.message : "unknown error";
  const details = body.details && typeof body.details === "object" ? (body.details as ErrorDetails) : {};
  return new SlipwayError(code, message, details);
}
