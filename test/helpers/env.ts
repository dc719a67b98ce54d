// What a test needs from the machine, with the reason it skips when that is missing.
import { execFileSync } from "node:child_process";

function has(cmd: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Null when containers can run here (root, runc, overlayfs tools); otherwise why not. */
export function containerSkipReason(): string | null {
  if (process.getuid?.() !== 0) return "needs root (runc, overlayfs mounts)";
  for (const cmd of ["runc", "getfattr", "setfattr"]) if (!has(cmd)) return `needs ${cmd} (run scripts/host-setup.sh)`;
  return null;
}

export function toolSkipReason(...cmds: string[]): string | null {
  for (const cmd of cmds) if (!has(cmd)) return `needs ${cmd} (run scripts/host-setup.sh)`;
  return null;
}

/** Prints why a suite is skipped, so a skip is never silent. */
export function announceSkip(suite: string, reason: string | null): boolean {
  if (reason) console.log(`SKIP ${suite}: ${reason}`);
  return reason !== null;
}
