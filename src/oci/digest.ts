// Content digests (`algorithm:hex`): parsing with validation, hashing buffers and streams.
import { createHasher, type Hasher } from "../core/builtins.js";
import { InvalidError } from "../core/errors.js";

import type { Digest } from "../core/schemas.js";

export type { Digest };
export type DigestAlgorithm = "sha256" | "sha512";

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

/** Validates a digest string; the error names the problem (unknown algorithm, wrong length, bad characters). */
export function parseDigest(value: string): { algorithm: DigestAlgorithm; hex: string; digest: Digest } {
  const colon = value.indexOf(":");
  if (colon <= 0) throw new InvalidError(`digest ${JSON.stringify(value)} is malformed: expected algorithm:hex`, { digest: value });
  const algorithm = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  if (algorithm !== "sha256" && algorithm !== "sha512") {
    throw new InvalidError(`digest ${JSON.stringify(value)} uses unsupported algorithm ${JSON.stringify(algorithm)}`, {
      digest: value,
      reason: "unsupported-algorithm",
    });
  }
  if (hex.length !== HEX_LENGTH[algorithm] || !/^[a-f0-9]+$/.test(hex)) {
    throw new InvalidError(
      `digest ${JSON.stringify(value)} is malformed: ${algorithm} needs ${HEX_LENGTH[algorithm]} lowercase hex digits`,
      { digest: value },
    );
  }
  return { algorithm, hex, digest: value as Digest };
}

export function isDigest(value: string): value is Digest {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

export function sha256(data: string | Uint8Array): Digest {
  return `sha256:${createHasher("sha256").update(data).digest("hex")}`;
}

export function digestOf(data: string | Uint8Array, algorithm: DigestAlgorithm = "sha256"): Digest {
  return `${algorithm}:${createHasher(algorithm).update(data).digest("hex")}`;
}

/** Incremental hasher that also counts bytes. */
export class DigestCounter {
  private readonly hash: Hasher;
  size = 0;
  constructor(readonly algorithm: DigestAlgorithm = "sha256") {
    this.hash = createHasher(algorithm);
  }
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.size += chunk.length;
  }
  digest(): Digest {
    return `${this.algorithm}:${this.hash.digest("hex")}`;
  }
}
