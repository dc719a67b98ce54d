// Compiles src/ to dist/ with the TypeScript compiler (which also type-checks), then bundles the CLI with esbuild
// so that a command loads a handful of files instead of a hundred modules (the CLI's start is most of a cached
// deploy's time). The SDK (dist/index.js) stays unbundled: user app files import it.
import { execFileSync } from "node:child_process";
import { chmodSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
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
  define: {
    SLIPWAY_BUNDLED_SDK: JSON.stringify("./index.js"),
    SLIPWAY_VERSION: JSON.stringify(JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version),
  },
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

// The `slipway` launcher (package.json's bin): client commands on Bun when it is installed (an optional dependency)
// and runs here, as the compiled client when Bun could make one, the rest on Node; src/cli/launcher.sh says why.
const cliDir = join(root, "dist/cli");
const bun = workingBun();
const client = bun ? compileClient(bun) : null;
writeFileSync(
  join(cliDir, "slipway"),
  readFileSync(join(root, "src/cli/launcher.sh"), "utf8")
    .replace("@BUN@", bun ? relative(cliDir, bun) : "")
    .replace("@CLIENT@", client ?? ""),
);
chmodSync(join(cliDir, "slipway"), 0o755);
// The configuration main.js runs with on Bun (the launcher's --config), so that no bunfig.toml where the user runs a
// command (a preload, say) applies to Slipway's own process.
writeFileSync(join(cliDir, "bunfig.toml"), "# Slipway's CLI runs on Bun with no settings (src/cli/launcher.sh).\n");

/**
 * The CLI bundle above (main.js, with the SDK entry index.js that app files import) made one Bun executable with
 * its bytecode: a command then neither parses nor links the bundle's JavaScript. It finds esbuild, which it does not
 * contain, relative to itself (src/sdk/bundle.ts). Returns its name in dist/cli, or null when Bun cannot make it.
 */
function compileClient(bun) {
  const name = "slipway-client";
  const esbuildDir = dirname(createRequire(import.meta.url).resolve("esbuild/package.json"));
  try {
    execFileSync(
      bun,
      [
        "build", "--compile", "--bytecode", "--format=esm",
        // As on Node: a .env or bunfig.toml where the user runs a command changes nothing.
        "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig",
        "--define", "SLIPWAY_COMPILED=true",
        "--define", `SLIPWAY_ESBUILD_DIR=${JSON.stringify(relative(cliDir, esbuildDir))}`,
        join(cliDir, "main.js"), join(cliDir, "index.js"),
        "--outfile", join(cliDir, name),
      ],
      { stdio: ["ignore", "ignore", "pipe"], timeout: 120_000 },
    );
    execFileSync(join(cliDir, name), ["--version"], { stdio: "ignore", timeout: 30_000 });
  } catch (err) {
    console.warn(`build: Bun could not compile the client (${String(err.stderr ?? err.message).trim().split("\n")[0]}); client commands run main.js on Bun`);
    rmSync(join(cliDir, name), { force: true });
    return null;
  }
  return name;
}

/** Bun's path, if the optional dependency is installed here and starts on this CPU. */
function workingBun() {
  let bun;
  try {
    bun = join(dirname(createRequire(import.meta.url).resolve("@oven/bun-linux-x64/package.json")), "bin/bun");
    // Only this project's own: resolution also walks up into node_modules of the directories above it.
    if (relative(root, bun).startsWith("..")) throw new Error(`found only outside the project, at ${bun}`);
    execFileSync(bun, ["-e", "0"], { stdio: "ignore", timeout: 30_000 });
  } catch {
    console.warn("build: Bun is not installed or does not run here; every slipway command will run on Node");
    return null;
  }
  return bun;
}
