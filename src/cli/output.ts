// The CLI's one output module: results to stdout (human text, or one JSON document with --json), progress and
// errors to stderr. Commands never write to the console directly.
import { writeSync } from "node:fs";
import { isSlipwayError, type ErrorCode } from "../core/errors.js";

export interface Output {
  readonly json: boolean;
  /** Progress for people; goes to stderr so stdout stays clean for data. */
  progress(line: string): void;
  /** The command's result: `human` is printed without --json, `data` with it. */
  result(data: unknown, human: string | (() => string)): void;
  /** Raw bytes to stdout (invoke output). */
  bytes(data: Uint8Array): void;
}

export function createOutput(json: boolean): Output {
  return {
    json,
    progress(line) {
      write(2, line + "\n");
    },
    result(data, human) {
      if (json) write(1, JSON.stringify(data, null, 2) + "\n");
      else {
        const text = typeof human === "function" ? human() : human;
        if (text) write(1, text.endsWith("\n") ? text : text + "\n");
      }
    },
    bytes(data) {
      write(1, data);
    },
  };
}

export const EXIT_CODES: Record<ErrorCode, number> = {
  internal: 1,
  invalid: 2,
  "not-found": 3,
  conflict: 4,
  "already-exists": 4,
  unauthorized: 5,
  denied: 5,
  unavailable: 6,
  timeout: 7,
  failed: 8,
};

/** Runs a command body and maps what it throws to a one-line reason on stderr and an exit code. */
export async function runCommand(json: boolean, body: (out: Output) => Promise<void>): Promise<void> {
  const out = createOutput(json);
  try {
    await body(out);
  } catch (err) {
    const code: ErrorCode = isSlipwayError(err) ? err.code : "internal";
    const message = err instanceof Error ? err.message : String(err);
    if (json) write(1, JSON.stringify({ error: { code, message, ...(isSlipwayError(err) ? { details: err.details } : {}) } }, null, 2) + "\n");
    const details = isSlipwayError(err) ? err.details : {};
    const [first, ...rest] = message.split("\n");
    write(2, `error: ${first}\n`);
    if (rest.length) write(2, rest.map((l) => `  ${l}`).join("\n") + "\n");
    if (typeof details.stack === "string" && details.stack) write(2, indent(details.stack) + "\n");
    process.exitCode = EXIT_CODES[code];
  }
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}

const throughStream = new Set<number>();

/**
 * Writes to stdout (1) or stderr (2) with writeSync: on Bun, the first touch of process.stdout or process.stderr
 * loads Node's stream machinery, 10-20 ms of a client command. A descriptor that turns out non-blocking and full
 * (EAGAIN) is handed to the stream from then on, so that order is kept and backpressure respected.
 */
function write(fd: 1 | 2, data: string | Uint8Array): void {
  if (!throughStream.has(fd)) {
    let rest = typeof data === "string" ? Buffer.from(data) : data;
    try {
      while (rest.length > 0) rest = rest.subarray(writeSync(fd, rest));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
      throughStream.add(fd);
      data = rest;
    }
  }
  (fd === 1 ? process.stdout : process.stderr).write(data);
}
