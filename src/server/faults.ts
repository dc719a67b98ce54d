// Fault injection for crash tests. The server's config loader reads SLIPWAY_FAULT (and nothing else does) and
// passes the parsed plan down as an option; with no plan, nothing here runs.
//
//   SLIPWAY_FAULT=pause-before-flip:<ms>   a deploy pauses after its version exists and before the pointer moves
//   SLIPWAY_FAULT=pause-in-flip:<ms>       the pointer move blocks the process inside its open transaction
//   SLIPWAY_FAULT=pause-after-flip:<ms>    a deploy pauses after the move committed, before it reports back
// Several may be given, comma-separated. Each pause first prints `slipway fault: <name>` on stderr, so a test
// knows when to kill the process.
import { InvalidError } from "../core/errors.js";

export interface FaultPlan {
  pauseBeforeFlipMs?: number;
  pauseInFlipMs?: number;
  pauseAfterFlipMs?: number;
}

const NAMES = { "pause-before-flip": "pauseBeforeFlipMs", "pause-in-flip": "pauseInFlipMs", "pause-after-flip": "pauseAfterFlipMs" } as const;

export function parseFaults(spec: string | undefined): FaultPlan {
  const plan: FaultPlan = {};
  for (const part of (spec ?? "").split(",").map((p) => p.trim()).filter(Boolean)) {
    const [name, ms] = part.split(":");
    const field = NAMES[name as keyof typeof NAMES];
    const n = Number(ms);
    if (!field || !Number.isInteger(n) || n < 0) {
      throw new InvalidError(`SLIPWAY_FAULT entry ${JSON.stringify(part)} is not one of ${Object.keys(NAMES).map((k) => `${k}:<ms>`).join(", ")}`);
    }
    plan[field] = n;
  }
  return plan;
}

/** An asynchronous pause (the process keeps serving). */
export async function pause(name: string, ms: number | undefined): Promise<void> {
  if (ms === undefined) return;
  process.stderr.write(`slipway fault: ${name} (${ms} ms)\n`);
  await new Promise((r) => setTimeout(r, ms));
}

/** A blocking pause: nothing else runs, so an open transaction stays open (stderr writes to a pipe are synchronous). */
export function block(name: string, ms: number | undefined): void {
  if (ms === undefined) return;
  process.stderr.write(`slipway fault: ${name} (${ms} ms)\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
