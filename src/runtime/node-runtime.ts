// Prepares the Node runtime that the worker mounts into every function container: the host's node binary, the
// shared libraries it needs and the dynamic loader, so handlers run on any base image (even scratch).
//
//   <data>/runtime/node-<version>/node, ld.so, lib/*.so*, container-main.mjs
import { execFile } from "node:child_process";
import { copyFile, mkdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { UnavailableError } from "../core/errors.js";
import { newId } from "../core/ids.js";

const execFileP = promisify(execFile);

/** Where the runtime directory is mounted inside containers. */
export const RUNTIME_MOUNT = "/.slipway/rt";

export async function prepareNodeRuntime(root: string): Promise<string> {
  const dir = join(root, `node-${process.version}`);
  const main = await containerMainPath();
  if (await stat(join(dir, "ld.so")).catch(() => null)) {
    await copyFile(main, join(dir, "container-main.mjs"));
    return dir;
  }
  const tmp = join(root, `.tmp-${newId()}`);
  await mkdir(join(tmp, "lib"), { recursive: true });
  await copyFile(process.execPath, join(tmp, "node"));
  const { stdout } = await execFileP("ldd", [process.execPath]);
  for (const line of stdout.split("\n")) {
    const lib = /=>\s+(\/\S+)/.exec(line)?.[1];
    if (lib) await copyFile(lib, join(tmp, "lib", basename(lib)));
    const loader = /^\s*(\/\S*ld-linux\S*)/.exec(line)?.[1];
    if (loader) await copyFile(loader, join(tmp, "ld.so"));
  }
  await copyFile(main, join(tmp, "container-main.mjs"));
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return dir;
}

/** The command that starts the in-container runtime through the mounted loader. */
export function runtimeCommand(): string[] {
  return [`${RUNTIME_MOUNT}/ld.so`, "--library-path", `${RUNTIME_MOUNT}/lib`, `${RUNTIME_MOUNT}/node`, `${RUNTIME_MOUNT}/container-main.mjs`];
}

/** The compiled in-container runtime (dist/runtime/container-main.js). */
async function containerMainPath(): Promise<string> {
  const here = dirname(fileURLToPath(import.meta.url));
  // Beside this file in dist/runtime/, dist/runtime/ seen from the bundled CLI in dist/cli/, or dist/ from src/.
  for (const candidate of [join(here, "container-main.js"), join(here, "../runtime/container-main.js"), join(here, "../../dist/runtime/container-main.js")]) {
    if (await stat(candidate).catch(() => null)) return candidate;
  }
  throw new UnavailableError("the in-container runtime is not built: run `npm run build`");
}
