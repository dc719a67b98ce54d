// The CLI's one output module: results to stdout (human text, or one JSON document with --json), progress and
// errors to stderr. Commands never write to the console directly.
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
      process.stderr.write(line + "\n");
    },
    result(data, human) {
      if (json) process.stdout.write(JSON.stringify(data, null, 2) + "\n");
      else {
        const text = typeof human === "function" ? human() : human;
        if (text) process.stdout.write(text.endsWith("\n") ? text : text + "\n");
      }
    },
    bytes(data) {
      process.stdout.write(data);
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
    if (json) process.stdout.write(JSON.stringify({ error: { code, message, ...(isSlipwayError(err) ? { details: err.details } : {}) } }, null, 2) + "\n");
    const details = isSlipwayError(err) ? err.details : {};
    const [first, ...rest] = message.split("\n");
    process.stderr.write(`error: ${first}\n`);
    if (rest.length) process.stderr.write(rest.map((l) => `  ${l}`).join("\n") + "\n");
    if (typeof details.stack === "string" && details.stack) process.stderr.write(indent(details.stack) + "\n");
    process.exitCode = EXIT_CODES[code];
  }
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}
