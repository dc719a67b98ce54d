// Traffic splits: a deployment can point at several versions with whole-percent weights (a canary). A call with a
// routing key hashes it to one of 100 buckets, so the same key lands on the same version while the split stays the
// same; a call without one draws a bucket at random, so shares converge on the weights.
import { createHash, randomInt } from "node:crypto";
import { InvalidError } from "../core/errors.js";
import type { TrafficEntry } from "../store/app-store.js";

export type { TrafficEntry };

/**
 * Checks a split: whole percents from 1 to 100, each version once, summing to 100, every version existing.
 * Returns it sorted by version, which is the order buckets are laid out in.
 */
export function checkSplit(split: TrafficEntry[], versionExists: (v: number) => boolean, where: string): TrafficEntry[] {
  if (split.length === 0) throw new InvalidError(`traffic for ${where} needs at least one version`);
  const seen = new Set<number>();
  for (const { version, weight } of split) {
    if (!Number.isInteger(version) || version <= 0) throw new InvalidError(`traffic for ${where}: ${version} is not a version number`);
    if (!Number.isInteger(weight) || weight < 1 || weight > 100) {
      throw new InvalidError(`traffic for ${where}: v${version} has weight ${weight}; weights are whole percents from 1 to 100`, { version, weight });
    }
    if (seen.has(version)) throw new InvalidError(`traffic for ${where} names v${version} twice`, { version });
    seen.add(version);
    if (!versionExists(version)) throw new InvalidError(`traffic for ${where}: v${version} does not exist`, { version });
  }
  const total = split.reduce((n, e) => n + e.weight, 0);
  if (total !== 100) {
    throw new InvalidError(`traffic for ${where} sums to ${total}%; the weights must sum to 100 (${split.map((e) => `v${e.version}=${e.weight}`).join(" ")})`, { total });
  }
  return [...split].sort((a, b) => a.version - b.version);
}

/** The version a split is "on" for history and rollback: its heaviest entry (the newer on a tie). */
export function primaryVersion(split: TrafficEntry[]): number {
  let best = split[0]!;
  for (const e of split) if (e.weight > best.weight || (e.weight === best.weight && e.version > best.version)) best = e;
  return best.version;
}

/** The bucket (0-99) of a routing key within one deployment. */
export function keyBucket(app: string, deployment: string, key: string): number {
  const h = createHash("sha256").update(`${app}\0${deployment}\0${key}`).digest();
  return h.readUInt32BE(0) % 100;
}

/** Picks the version that serves a call: by the key's bucket when there is a key, by a random bucket otherwise. */
export function route(split: TrafficEntry[], bucket: number = randomInt(100)): number {
  let upper = 0;
  for (const e of split) {
    upper += e.weight;
    if (bucket < upper) return e.version;
  }
  return split[split.length - 1]!.version;
}

export function describeSplit(split: TrafficEntry[]): string {
  return split.map((e) => `v${e.version}=${e.weight}%`).join(" ");
}
