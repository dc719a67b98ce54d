// Hashing and random bytes, loaded when first needed. Client commands run on Bun, where loading node:crypto costs
// ~5 ms, a tenth of an unchanged build, and Bun's own hasher (the same BoringSSL digests) costs nothing to load;
// Node, and everything Bun lacks, gets node:crypto. src/oci/digest.test.ts checks both against known vectors.
import { createRequire } from "node:module";

export interface Hasher {
  update(data: string | Uint8Array): Hasher;
  digest(encoding: "hex"): string;
}

const require = createRequire(import.meta.url);
let loaded: typeof import("node:crypto") | undefined;
const bun = (globalThis as { Bun?: { CryptoHasher: new (algorithm: string) => Hasher } }).Bun;

export function nodeCrypto(): typeof import("node:crypto") {
  return (loaded ??= require("node:crypto") as typeof import("node:crypto"));
}

/** An incremental sha256 or sha512 hasher; `native: false` forces node:crypto (tests compare the two). */
export function createHasher(algorithm: "sha256" | "sha512", options: { native?: boolean } = {}): Hasher {
  return bun && options.native !== false ? new bun.CryptoHasher(algorithm) : nodeCrypto().createHash(algorithm);
}
