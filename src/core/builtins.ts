// Node built-ins that a client command may never need, loaded on first use, and the hasher. Client commands run on
// Bun, where loading node:crypto costs ~5 ms and node:os ~2 ms of a command that takes ~45; Bun's own hasher (the
// same BoringSSL digests) costs nothing to load. src/oci/digest.test.ts checks both hashers against known vectors.
import { createRequire } from "node:module";

export interface Hasher {
  update(data: string | Uint8Array): Hasher;
  digest(encoding: "hex"): string;
}

const require = createRequire(import.meta.url);
let crypto: typeof import("node:crypto") | undefined;
let os: typeof import("node:os") | undefined;
const bun = (globalThis as { Bun?: { CryptoHasher: new (algorithm: string) => Hasher } }).Bun;

export function nodeCrypto(): typeof import("node:crypto") {
  return (crypto ??= require("node:crypto") as typeof import("node:crypto"));
}

export function nodeOs(): typeof import("node:os") {
  return (os ??= require("node:os") as typeof import("node:os"));
}

/** An incremental sha256 or sha512 hasher; `native: false` forces node:crypto (tests compare the two). */
export function createHasher(algorithm: "sha256" | "sha512", options: { native?: boolean } = {}): Hasher {
  return bun && options.native !== false ? new bun.CryptoHasher(algorithm) : nodeCrypto().createHash(algorithm);
}
