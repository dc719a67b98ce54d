// node:crypto, loaded when first needed: on Bun, where client commands run, loading it costs ~5 ms, a tenth of an
// unchanged build, which hashes nothing.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
let loaded: typeof import("node:crypto") | undefined;

export function nodeCrypto(): typeof import("node:crypto") {
  return (loaded ??= require("node:crypto") as typeof import("node:crypto"));
}
