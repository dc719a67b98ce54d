// Explains a cache miss, or a hit on what an older build cached: compares a step with the same step of the image's
// last build and names what differs (the step text, an earlier step, a build argument, or which copied file changed,
// with old and new hashes).
import { canonicalJson } from "../core/canonical-json.js";
import type { FileTree, Step } from "../core/schemas.js";
import type { Digest } from "../oci/digest.js";
import type { StepInputs } from "./cache-key.js";

export interface StepRecord {
  key: string;
  parent: string | null;
  text: string;
  step: Step;
  inputs: StepInputs;
}

/** The first step of this build whose key differs from the last build's step at that place. */
export interface EarlierChange {
  index: number;
  text: string;
}

/**
 * Why a step's key differs from the same step of the image's last build. What changed in the step itself comes first
 * (it is what the user edited); an earlier step that differs is named by its place and text, also when that step was
 * itself a cache hit (cached by a build before the last one, with other build arguments, say).
 */
export async function explainChange(
  current: StepRecord,
  previous: StepRecord | undefined,
  loadTree: (digest: Digest) => Promise<FileTree>,
  earlier?: EarlierChange,
): Promise<string> {
  if (!previous) return "first build of this step";
  if (previous.key === current.key) return "cached result is gone (its layer was garbage-collected or the cache was cleared)";
  const own = await ownChange(current, previous, loadTree);
  if (previous.parent === current.parent) return own ?? "inputs changed";
  const before = earlier ? `an earlier step changed: step ${earlier.index + 1} (${earlier.text})` : "an earlier step changed";
  return own ? `${own}; and ${before}` : before;
}

/** What differs in the step itself (its text, files, base, build arguments or settings); null when nothing does. */
async function ownChange(current: StepRecord, previous: StepRecord, loadTree: (digest: Digest) => Promise<FileTree>): Promise<string | null> {
  if (previous.step.op === "copy" && current.step.op === "copy" && previous.step.dest === current.step.dest && previous.step.tree !== current.step.tree) {
    return `copied files changed: ${await diffTrees(previous.step.tree, current.step.tree, loadTree)}`;
  }
  if (previous.step.op !== current.step.op || previous.text !== current.text) return `step changed: was ${JSON.stringify(previous.text)}`;
  if (previous.inputs.base !== current.inputs.base) {
    return `base image moved: ${current.text.replace(/^FROM /, "")} was ${previous.inputs.base ?? "unpinned"}, now ${current.inputs.base}`;
  }
  const before = previous.inputs.buildArgs ?? {};
  const after = current.inputs.buildArgs ?? {};
  const args = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => before[k] !== after[k]);
  if (args.length) return `build argument changed: ${args.map((k) => `${k} ${JSON.stringify(before[k] ?? null)} → ${JSON.stringify(after[k] ?? null)}`).join(", ")}`;
  if (canonicalJson(previous.step) !== canonicalJson(current.step)) return "step settings changed";
  return null;
}

async function diffTrees(a: Digest, b: Digest, loadTree: (digest: Digest) => Promise<FileTree>): Promise<string> {
  let before: FileTree;
  let after: FileTree;
  try {
    [before, after] = await Promise.all([loadTree(a), loadTree(b)]);
  } catch {
    return "the earlier file list is no longer stored";
  }
  const describe = (e: FileTree["entries"][number]) =>
    e.type === "file" ? `${e.digest} mode ${e.mode.toString(8)}` : e.type === "symlink" ? `-> ${printable(e.target)}` : `dir mode ${e.mode.toString(8)}`;
  const old = new Map(before.entries.map((e) => [e.path, describe(e)]));
  const now = new Map(after.entries.map((e) => [e.path, describe(e)]));
  const changes: string[] = [];
  for (const [path, d] of now) {
    const o = old.get(path);
    if (o === undefined) changes.push(`${printable(path)} added (${d})`);
    else if (o !== d) changes.push(`${printable(path)} changed (${o} → ${d})`);
  }
  for (const [path, d] of old) if (!now.has(path)) changes.push(`${printable(path)} removed (was ${d})`);
  const shown = changes.slice(0, 10).join("; ");
  return changes.length > 10 ? `${shown}; and ${changes.length - 10} more` : shown || "file list reordered";
}

/**
 * A file name or link target as a terminal line may show it: control characters (a newline, an escape sequence)
 * written as \xNN inside quotes, and cut to its first 200 characters.
 */
function printable(text: string): string {
  const cut = text.length > 200 ? `${text.slice(0, 200)}…` : text;
  const controls = /[\u0000-\u001f\u007f-\u009f]/g;
  return controls.test(cut) ? `"${cut.replace(controls, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`)}"` : cut;
}
