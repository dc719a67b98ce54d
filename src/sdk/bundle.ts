// Packages what a deploy uploads: handler modules bundled with esbuild (one self-contained ESM file each) and file
// trees for COPY steps, hashed by content (path, type, mode, content or link target; never mtime).
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import { basename, join, relative, resolve } from "node:path";
import { InvalidError, NotFoundError } from "../core/errors.js";
import type { FileTree, FileTreeEntry } from "../core/schemas.js";
import { sha256 } from "../oci/digest.js";
import { IgnoreRules } from "./ignore.js";

export interface Blob {
  digest: ReturnType<typeof sha256>;
  data: Buffer;
}

/** How Slipway bundles TypeScript for Node: one in-memory ESM file, errors returned, not printed. */
export const NODE_ESM_BUNDLE = { bundle: true, write: false, platform: "node", format: "esm", target: "node20", logLevel: "silent" } as const;

/** Bundles a handler into one ESM file that runs on the mounted Node runtime without node_modules. */
export async function bundleHandler(path: string): Promise<Buffer> {
  if (!(await lstat(path).catch(() => null))) throw new NotFoundError(`handler ${path} does not exist`, { handler: path });
  try {
    const result = await build({
      ...NODE_ESM_BUNDLE,
      entryPoints: [path],
      banner: { js: "import { createRequire as __slipwayRequire } from 'node:module'; const require = __slipwayRequire(import.meta.url);" },
      metafile: true,
    });
    const exports = Object.values(result.metafile.outputs)[0]?.exports ?? [];
    if (!exports.includes("default") && !exports.includes("handler")) {
      throw new InvalidError(
        `handler ${path} exports no handler: add \`export default async function (input) { … }\` (exports found: ${exports.join(", ") || "none"})`,
        { handler: path },
      );
    }
    return Buffer.from(result.outputFiles[0]!.contents);
  } catch (err) {
    if (err instanceof InvalidError) throw err;
    throw new InvalidError(`handler ${path} does not build: ${esbuildError(err)}`, { handler: path });
  }
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
): Promise<{ tree: FileTree; dest: string; blobs: Blob[] }> {
  if (sources.length === 0) throw new InvalidError("copy needs at least one source");
  const ignore = await IgnoreRules.load(contextDir);
  const entries = new Map<string, FileTreeEntry>();
  const blobs: Blob[] = [];
  const resolved = [];
  for (const src of sources) {
    const abs = resolve(contextDir, src);
    if (relative(contextDir, abs).startsWith("..")) throw new InvalidError(`copy source ${src} is outside the app directory ${contextDir}`, { src });
    const st = await lstat(abs).catch(() => null);
    if (!st) throw new NotFoundError(`copy source ${src} does not exist (looked in ${contextDir})`, { src });
    resolved.push({ abs, isDir: st.isDirectory() });
  }

  async function add(absPath: string, entryPath: string): Promise<void> {
    const s = await lstat(absPath);
    const mode = s.mode & 0o7777;
    if (s.isDirectory()) {
      if (entryPath) entries.set(entryPath, { type: "dir", path: entryPath, mode });
      for (const name of (await readdir(absPath)).sort()) {
        const childAbs = join(absPath, name);
        if (ignore.ignores(relative(contextDir, childAbs))) continue;
        await add(childAbs, entryPath ? `${entryPath}/${name}` : name);
      }
    } else if (s.isSymbolicLink()) {
      entries.set(entryPath, { type: "symlink", path: entryPath, mode, target: await readlink(absPath) });
    } else if (s.isFile()) {
      const data = readFileSync(absPath);
      const digest = sha256(data);
      blobs.push({ digest, data });
      entries.set(entryPath, { type: "file", path: entryPath, mode, size: data.length, digest });
    }
  }

  const single = resolved.length === 1 ? resolved[0]! : null;
  let dir = dest;
  if (single && !single.isDir && !dest.endsWith("/")) {
    // `copy("a.txt", "/app/b.txt")`: dest is the file's own path.
    dir = dest.slice(0, dest.length - basename(dest).length) || "/";
    await add(single.abs, basename(dest));
  } else {
    for (const r of resolved) await add(r.abs, r.isDir ? "" : basename(r.abs));
  }
  const sorted = [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { tree: { entries: sorted }, dest: dir, blobs };
}
