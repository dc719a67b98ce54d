// Packages what a deploy uploads: handler modules bundled with esbuild (one self-contained ESM file each) and file
// trees for COPY steps, hashed by content (path, type, mode, content or link target; never mtime). The local cache
// spares both the work when nothing they read has changed; esbuild itself is loaded only when something must be built.
import { lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, relative, resolve } from "node:path";
import { InvalidError, NotFoundError } from "../core/errors.js";
import type { FileTree, FileTreeEntry } from "../core/schemas.js";
import { sha256, type Digest } from "../oci/digest.js";
import { IgnoreRules } from "./ignore.js";
import { bundleKey, LocalCache } from "./local-cache.js";

/** Content to upload, read only if the server lacks it. */
export interface Blob {
  digest: Digest;
  size: number;
  read(): Buffer;
}

/** How Slipway bundles TypeScript for Node: one in-memory ESM file, errors returned, not printed. */
export const NODE_ESM_BUNDLE = { bundle: true, write: false, platform: "node", format: "esm", target: "node20", logLevel: "silent" } as const;
const HANDLER_BANNER = "import { createRequire as __slipwayRequire } from 'node:module'; const require = __slipwayRequire(import.meta.url);";

type BuildOptions = Parameters<typeof import("esbuild").build>[0];

/**
 * Set by scripts/build.mjs in the compiled client (a Bun executable, which resolves no packages from node_modules):
 * esbuild's package directory, relative to the executable's own directory.
 */
declare const SLIPWAY_ESBUILD_DIR: string | undefined;

/**
 * The esbuild package: its version, part of every bundle's cache key (another esbuild may bundle differently), and
 * the path of its main file. Read once, from its package.json.
 */
let esbuildPackage: { version: string; main: string } | undefined;
function esbuild(): { version: string; main: string } {
  if (!esbuildPackage) {
    const manifest =
      typeof SLIPWAY_ESBUILD_DIR === "string"
        ? join(dirname(process.execPath), SLIPWAY_ESBUILD_DIR, "package.json")
        : createRequire(import.meta.url).resolve("esbuild/package.json");
    const { version, main } = JSON.parse(readFileSync(manifest, "utf8")) as { version: string; main: string };
    esbuildPackage = { version, main: join(dirname(manifest), main) };
  }
  return esbuildPackage;
}

/**
 * Bundles with esbuild unless the cache holds a bundle of the same entry whose inputs all still have their digests.
 * Returns the code, its exports and the digest.
 */
export async function cachedBundle(
  cache: LocalCache,
  keyParts: Record<string, unknown>,
  options: BuildOptions,
): Promise<{ code: Buffer; digest: Digest; exports: string[]; path: string | null }> {
  const key = bundleKey({ ...keyParts, esbuild: esbuild().version, options: JSON.stringify(options, (_k, v) => (typeof v === "function" ? String(v) : v)) });
  const hit = cache.bundle(key, `${String(keyParts.kind)} ${String(keyParts.path)}`);
  if (hit) return { code: hit.code, digest: hit.record.output, exports: hit.record.exports ?? [], path: hit.path };
  cache.began();
  // require, not import(): esbuild is CommonJS, and importing it from ESM first lexes its exports (~20 ms).
  const { build } = createRequire(import.meta.url)(esbuild().main) as typeof import("esbuild");
  const result = await build({ ...options, metafile: true });
  const code = Buffer.from(result.outputFiles![0]!.contents);
  const exports = Object.values(result.metafile!.outputs)[0]?.exports ?? [];
  const cwd = options.absWorkingDir ?? process.cwd();
  const inputs = Object.keys(result.metafile!.inputs).map((p) => resolve(cwd, p));
  // Inputs from a plugin's namespace ("ns:path") are not files this cache can check: such a bundle is not kept.
  const files = inputs.every((p) => lstatSync(p, { throwIfNoEntry: false })?.isFile());
  const kept = files ? cache.recordBundle(key, inputs, code, exports) : { digest: sha256(code), path: null };
  return { code, digest: kept.digest, exports, path: kept.path };
}

/**
 * Bundles a handler into one ESM file that runs on the mounted Node runtime without node_modules. The bytes depend
 * only on the files: the path comments esbuild writes are relative to `appDir`, not to the current directory.
 */
export async function bundleHandler(path: string, cache: LocalCache = LocalCache.open(path, { dir: null }), appDir = dirname(path)): Promise<Blob> {
  if (!lstatSync(path, { throwIfNoEntry: false })) throw new NotFoundError(`handler ${path} does not exist`, { handler: path });
  let bundled: Awaited<ReturnType<typeof cachedBundle>>;
  try {
    bundled = await cachedBundle(cache, { kind: "handler", path }, { ...NODE_ESM_BUNDLE, entryPoints: [path], absWorkingDir: appDir, banner: { js: HANDLER_BANNER } });
  } catch (err) {
    throw new InvalidError(`handler ${path} does not build: ${esbuildError(err)}`, { handler: path });
  }
  if (!bundled.exports.includes("default") && !bundled.exports.includes("handler")) {
    throw new InvalidError(
      `handler ${path} exports no handler: add \`export default async function (input) { … }\` (exports found: ${bundled.exports.join(", ") || "none"})`,
      { handler: path },
    );
  }
  return { digest: bundled.digest, size: bundled.code.length, read: () => bundled.code };
}

/** esbuild's first error as `file:line:column: text`, the form editors jump to. */
export function esbuildError(err: unknown): string {
  const first = (err as { errors?: Array<{ text: string; location?: { file: string; line: number; column: number } | null }> }).errors?.[0];
  const where = first?.location ? `${first.location.file}:${first.location.line}:${first.location.column}: ` : "";
  return `${where}${first?.text ?? (err as Error).message}`;
}

/**
 * Hashes local files and directories for a COPY step. Returns the tree (entries relative to the directory the step
 * writes into) and every file's content as a blob. A directory source contributes its contents; a file keeps its
 * name, unless it is the only source and `dest` (not ending in `/`) names the file itself.
 */
export async function fileTree(
  contextDir: string,
  sources: string[],
  dest: string,
  cache: LocalCache = LocalCache.open(contextDir, { dir: null }),
): Promise<{ tree: FileTree; dest: string; blobs: Blob[] }> {
  if (sources.length === 0) throw new InvalidError("copy needs at least one source");
  const ignore = await IgnoreRules.load(contextDir);
  cache.began();
  const entries = new Map<string, FileTreeEntry>();
  const blobs: Blob[] = [];
  const resolved = [];
  const realContext = realpathSync(contextDir);
  for (const src of sources) {
    const abs = resolve(contextDir, src);
    const rel = relative(contextDir, abs);
    if (rel.startsWith("..")) throw new InvalidError(`copy source ${src} is outside the app directory ${contextDir}`, { src });
    const st = lstatSync(abs, { throwIfNoEntry: false });
    if (!st) throw new NotFoundError(`copy source ${src} does not exist (looked in ${contextDir})`, { src });
    // The directories on the way must stay inside too: `etc-link/passwd` with etc-link → /etc is outside.
    const realParent = realpathSync(dirname(abs));
    if (realParent !== realContext && !realParent.startsWith(realContext + "/")) {
      throw new InvalidError(`copy source ${src} is outside the app directory ${contextDir} (through a symlink, to ${realParent})`, { src });
    }
    if (rel && ignore.ignores(rel)) throw new NotFoundError(`copy source ${src} is excluded by ${ignore.file} in ${contextDir}`, { src });
    resolved.push({ abs, isDir: st.isDirectory() });
  }

  // Synchronous calls: a tree is mostly small files, where the thread pool's round trip costs more than the call.
  // One lstat per path, handed to the cache, which needs it for the file's signature.
  function add(absPath: string, entryPath: string, contextPath: string): void {
    const s = lstatSync(absPath, { bigint: true });
    const mode = Number(s.mode & 0o7777n);
    if (s.isDirectory()) {
      if (entryPath) entries.set(entryPath, { type: "dir", path: entryPath, mode });
      for (const name of readdirSync(absPath).sort()) {
        const childContext = contextPath ? `${contextPath}/${name}` : name;
        if (ignore.ignores(childContext)) continue;
        if (name.includes("\uFFFD")) refuseUndecodable(absPath, name, contextPath);
        add(join(absPath, name), entryPath ? `${entryPath}/${name}` : name, childContext);
      }
    } else if (s.isSymbolicLink()) {
      entries.set(entryPath, { type: "symlink", path: entryPath, mode, target: readlinkSync(absPath) });
    } else if (s.isFile()) {
      const { digest, size } = cache.digest(absPath, s);
      blobs.push({ digest, size, read: () => readVerified(absPath, digest) });
      entries.set(entryPath, { type: "file", path: entryPath, mode, size, digest });
    }
  }

  const single = resolved.length === 1 ? resolved[0]! : null;
  let dir = dest;
  if (single && !single.isDir && !dest.endsWith("/")) {
    // `copy("a.txt", "/app/b.txt")`: dest is the file's own path.
    // A relative one stays relative: the server puts it under the image's working directory.
    dir = dest.slice(0, dest.length - basename(dest).length) || (dest.startsWith("/") ? "/" : ".");
    add(single.abs, basename(dest), relative(contextDir, single.abs));
  } else {
    for (const r of resolved) add(r.abs, r.isDir ? "" : basename(r.abs), relative(contextDir, r.abs));
  }
  const sorted = [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { tree: { entries: sorted }, dest: dir, blobs };
}

/**
 * Throws when `name`, as listed in `dir`, stands for bytes that are not UTF-8 (the listing replaced them with U+FFFD):
 * an image's file names are UTF-8, and the file could not even be opened by the name decoded.
 */
function refuseUndecodable(dir: string, name: string, contextPath: string): void {
  for (const raw of readdirSync(dir, { encoding: "buffer" })) {
    if (raw.toString("utf8") !== name || Buffer.from(name).equals(raw)) continue;
    const shown = [...raw].map((b) => (b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`)).join("");
    const where = contextPath ? `${contextPath}/${shown}` : shown;
    throw new InvalidError(`copy source ${where}: the file name is not valid UTF-8; rename it or exclude it in an ignore file`, { path: where });
  }
}

/** A file's bytes, read at upload time: refused if they are no longer the bytes the tree was hashed from. */
export function readVerified(path: string, digest: Digest): Buffer {
  const data = readFileSync(path);
  if (sha256(data) !== digest) throw new InvalidError(`${path} changed while the deploy was being prepared; run it again`, { path });
  return data;
}
