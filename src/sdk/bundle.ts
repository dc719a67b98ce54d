// Packages what a deploy uploads: handler modules bundled with esbuild (one self-contained ESM file each) and file
// trees for COPY steps, hashed by content (path, type, mode, content or link target; never mtime).
import { build } from "esbuild";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { basename, join, relative, resolve } from "node:path";
import { InvalidError, NotFoundError } from "../core/errors.js";
import type { FileTree, FileTreeEntry } from "../core/schemas.js";
import { sha256 } from "../oci/digest.js";
import { IgnoreRules } from "./ignore.js";

export interface Blob {
  digest: ReturnType<typeof sha256>;
  data: Buffer;
}

/** Bundles a handler into one ESM file that runs on the mounted Node runtime without node_modules. */
export async function bundleHandler(path: string): Promise<Buffer> {
  if (!(await lstat(path).catch(() => null))) throw new NotFoundError(`handler ${path} does not exist`, { handler: path });
  try {
    const result = await build({
      entryPoints: [path],
      bundle: true,
      write: false,
      platform: "node",
      format: "esm",
      target: "node20",
      logLevel: "silent",
      banner: { js: "import { createRequire as __slipwayRequire } from 'node:module'; const require = __slipwayRequire(import.meta.url);" },
    });
    return Buffer.from(result.outputFiles[0]!.contents);
  } catch (err) {
    const e = err as { errors?: Array<{ text: string; location?: { file: string; line: number; column: number } | null }> };
    const first = e.errors?.[0];
    const where = first?.location ? `${first.location.file}:${first.location.line}:${first.location.column}: ` : "";
    throw new InvalidError(`handler ${path} does not build: ${where}${first?.text ?? (err as Error).message}`, { handler: path });
  }
}

/**
 * Hashes a local file or directory for a COPY step. Returns the tree (entries relative to what lands in `dest`)
 * and every file's content as a blob. A single file keeps its name unless `dest` names the file itself.
 */
export async function fileTree(
  contextDir: string,
  src: string,
  dest: string,
): Promise<{ tree: FileTree; dest: string; blobs: Blob[] }> {
  const abs = resolve(contextDir, src);
  const rel = relative(contextDir, abs);
  if (rel.startsWith("..")) throw new InvalidError(`copy source ${src} is outside the app directory ${contextDir}`, { src });
  const st = await lstat(abs).catch(() => null);
  if (!st) throw new NotFoundError(`copy source ${src} does not exist (looked in ${contextDir})`, { src });
  const ignore = await IgnoreRules.load(contextDir);
  const entries: FileTreeEntry[] = [];
  const blobs: Blob[] = [];

  async function add(absPath: string, entryPath: string): Promise<void> {
    const s = await lstat(absPath);
    const mode = s.mode & 0o7777;
    if (s.isDirectory()) {
      if (entryPath) entries.push({ type: "dir", path: entryPath, mode });
      const names = (await readdir(absPath)).sort();
      for (const name of names) {
        const childAbs = join(absPath, name);
        if (ignore.ignores(relative(contextDir, childAbs), (await lstat(childAbs)).isDirectory())) continue;
        await add(childAbs, entryPath ? `${entryPath}/${name}` : name);
      }
    } else if (s.isSymbolicLink()) {
      entries.push({ type: "symlink", path: entryPath, mode, target: await readlink(absPath) });
    } else if (s.isFile()) {
      const data = await readFile(absPath);
      const digest = sha256(data);
      blobs.push({ digest, data });
      entries.push({ type: "file", path: entryPath, mode, size: data.length, digest });
    }
  }

  if (st.isDirectory()) {
    await add(abs, "");
    return { tree: { entries }, dest, blobs };
  }
  // A single file: `dest/` or an existing-directory-style dest keeps the name; otherwise dest is the file's path.
  const intoDir = dest.endsWith("/");
  const name = intoDir ? basename(abs) : basename(dest);
  const dir = intoDir ? dest : dest.slice(0, dest.length - basename(dest).length) || "/";
  await add(abs, name);
  return { tree: { entries }, dest: dir, blobs };
}
