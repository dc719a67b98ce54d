// Compiles src/ to dist/ with the TypeScript compiler (which also type-checks), then bundles the CLI with esbuild
// so that a command loads a handful of files instead of a hundred modules (the CLI's start is most of a cached
// deploy's time). The SDK (dist/index.js) stays unbundled: user app files import it.
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
rmSync(join(root, "dist"), { recursive: true, force: true });
execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.json")], {
  stdio: "inherit",
  cwd: root,
});
await build({
  // The SDK entry rides along (dist/cli/index.js): an app file loaded by the CLI imports it and finds every module
  // it needs already loaded, in the chunks the CLI shares with it.
  entryPoints: { main: join(root, "src/cli/main.ts"), index: join(root, "src/index.ts") },
  define: { SLIPWAY_BUNDLED_SDK: JSON.stringify("./index.js") },
  outdir: join(root, "dist/cli"),
  // Chunks sit beside main.js: code that finds files relative to itself (the SDK entry, the runtime) keeps working.
  chunkNames: "chunk-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external: ["esbuild", "fastify", "better-sqlite3", "pino", "tar-stream"],
  banner: { js: "import { createRequire as __slipwayRequire } from 'node:module'; const require = __slipwayRequire(import.meta.url);" },
  logLevel: "warning",
});
