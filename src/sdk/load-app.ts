// Loads a user's app file (TypeScript or JavaScript): bundles it with esbuild, with `slipway` resolved to this very
// package so that the App and Image classes it uses are ours, then imports it and finds the exported App.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { nodeOs } from "../core/builtins.js";
import { InvalidError, isSlipwayError, NotFoundError } from "../core/errors.js";
import type { App } from "./app.js";
import { cachedBundle, esbuildError, NODE_ESM_BUNDLE } from "./bundle.js";
import { LocalCache } from "./local-cache.js";

/** Set by scripts/build.mjs in the CLI bundle, whose own SDK entry (beside its chunks) shares their modules. */
declare const SLIPWAY_BUNDLED_SDK: string | undefined;

/** The SDK's entry: the CLI bundle's, or dist/index.js beside this file's directory (src/index.ts from source). */
function sdkEntry(): string {
  if (typeof SLIPWAY_BUNDLED_SDK === "string") return new URL(SLIPWAY_BUNDLED_SDK, import.meta.url).href;
  const here = dirname(fileURLToPath(import.meta.url));
  return pathToFileURL(join(here, "..", import.meta.url.endsWith(".ts") ? "index.ts" : "index.js")).href;
}

let loads = 0;

/**
 * Loads an app file: bundled (or taken from the local cache when none of its inputs changed), then evaluated, every
 * time, so that what it reads at load time (the environment, other files) is read now.
 */
export async function loadAppFile(file: string, cache?: LocalCache): Promise<{ app: App; path: string; dir: string }> {
  const path = resolve(file);
  // Synchronous file calls here: node:fs/promises costs a client command on Bun ~4 ms to load.
  if (!existsSync(path)) throw new NotFoundError(`app file ${file} does not exist`, { file });
  const entry = sdkEntry();
  let bundled: Awaited<ReturnType<typeof cachedBundle>>;
  try {
    bundled = await cachedBundle(cache ?? LocalCache.open(path, { dir: null }), { kind: "app", path, sdk: entry }, {
      ...NODE_ESM_BUNDLE,
      entryPoints: [path],
      // Paths in the bundle's comments relative to the app's directory, wherever the command runs.
      absWorkingDir: dirname(path),
      // The bundle runs from the cache (or a temporary file); paths the app resolves against its own URL stay the
      // app file's. Modules it imports are bundled into it, so theirs is the app file's too.
      define: { "import.meta.url": JSON.stringify(pathToFileURL(path).href) },
      plugins: [
        {
          name: "slipway-self",
          setup(b) {
            b.onResolve({ filter: /^slipway$/ }, () => ({ path: entry, external: true }));
          },
        },
      ],
    });
  } catch (err) {
    throw new InvalidError(`app file ${file} does not load: ${esbuildError(err)}`, { file });
  }
  // A cached bundle is imported where it is kept; otherwise from a temporary file.
  const tmp = bundled.path ? null : mkdtempSync(join(nodeOs().tmpdir(), "slipway-app-"));
  const out = bundled.path ?? join(tmp!, "app.mjs");
  if (tmp) writeFileSync(out, bundled.code);
  let mod: Record<string, unknown>;
  try {
    // A fresh URL per load: the same bundle loaded twice in one process is evaluated twice.
    mod = (await import(`${pathToFileURL(out).href}?load=${++loads}`)) as Record<string, unknown>;
  } catch (err) {
    // Slipway's own errors (a bad app or function name) say what is wrong; anything else needs its stack.
    const why = isSlipwayError(err) ? err.message : ((err as Error).stack ?? String(err));
    throw new InvalidError(`app file ${file} failed while loading: ${why}`, { file });
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
  const apps = Object.values(mod).filter(isApp);
  if (apps.length !== 1) {
    throw new InvalidError(
      apps.length === 0
        ? `app file ${file} exports no App (add: export const app = new App("name"))`
        : `app file ${file} exports ${apps.length} Apps; export exactly one`,
      { file },
    );
  }
  return { app: apps[0]!, path, dir: dirname(path) };
}

/**
 * An App, recognised by shape: the app file's App comes from the SDK entry (dist/index.js), while the CLI is a
 * bundle with its own copy of the class, so `instanceof` would not see it.
 */
function isApp(value: unknown): value is App {
  return (
    typeof value === "object" &&
    value !== null &&
    value.constructor?.name === "App" &&
    typeof (value as App).name === "string" &&
    (value as App).functions instanceof Map
  );
}
