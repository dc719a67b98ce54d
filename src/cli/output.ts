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
    // Best effort: the failure may be stdout itself (a full disk).
    const report = (fd: 1 | 2, text: string) => {
      try {
        write(fd, text);
      } catch {
        // Nowhere left to say it; the exit code still does.
      }
    };
    if (json) report(1, JSON.stringify({ error: { code, message, ...(isSlipwayError(err) ? { details: err.details } : {}) } }, null, 2) + "\n");
    const details = isSlipwayError(err) ? err.details : {};
    const [first, ...rest] = message.split("\n");
    report(2, `error: ${first}\n`);
    if (rest.length) report(2, rest.map((l) => `  ${l}`).join("\n") + "\n");
    if (typeof details.stack === "string" && details.stack) report(2, indent(details.stack) + "\n");
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
const readerGone = new Set<number>();

/**
 * Writes to stdout (1) or stderr (2) with writeSync: on Bun, the first touch of process.stdout or process.stderr
 * loads Node's stream machinery, 10-20 ms of a client command. A descriptor that turns out non-blocking and full
 * (EAGAIN) is handed to the stream from then on, so that order is kept and backpressure respected. When the reader
 * has gone (EPIPE: `slipway … | head`), the rest is dropped quietly, as other command-line tools do; any other
 * failure (a full disk) is an error that names the stream.
 */
function write(fd: 1 | 2, data: string | Uint8Array): void {
  if (readerGone.has(fd)) return;
  if (!throughStream.has(fd)) {
    let rest = typeof data === "string" ? Buffer.from(data) : data;
    try {
      while (rest.length > 0) rest = rest.subarray(writeSync(fd, rest));
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EPIPE") {
        readerGone.add(fd);
        return;
      }
      if (code !== "EAGAIN") throw new Error(`cannot write to ${fd === 1 ? "stdout" : "stderr"}: ${(err as Error).message}`);
      throughStream.add(fd);
      data = rest;
    }
  }
  const stream = fd === 1 ? process.stdout : process.stderr;
  // A stream's own EPIPE, after the hand-over, is the same reader leaving.
  if (stream.listenerCount("error") === 0) {
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE") readerGone.add(fd);
      else process.exitCode = 1;
    });
  }
  stream.write(data);
}
