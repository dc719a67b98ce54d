// What the client worked out last time, so that an unchanged deploy does not hash or bundle again: file digests by
// stat signature (git's index idea), and esbuild outputs by the digests of the files that went into them.
// Content always decides: a signature only saves re-reading a file whose inode, size, mtime and ctime are all as
// they were. Timestamps are coarse (a second write in the same tick keeps them), so, as in git's racy-index rule, a
// file whose ctime is not older than the moment this run began (read off the filesystem's own clock, a stamp file
// touched before anything is read) is hashed again next time, and a bundle with such an input is not kept. That
// clock is the cache's filesystem's: files on another filesystem (a network share, a disk with coarser timestamps)
// are always hashed, and bundles that read from one are not kept.
//
//   <cache>/<app key>.json    one index per app file: { files: {path: [signature, digest]}, bundles: {key: …} }
//   <cache>/out/<hex>.mjs     bundle outputs by digest
//   <cache>/clock             the stamp file
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync, type BigIntStats } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { nodeOs } from "../core/builtins.js";
import { canonicalJson } from "../core/canonical-json.js";
import { sha256, type Digest } from "../oci/digest.js";

const FORMAT = 2;
/** A project with more directories than this is not walked for resolution changes: its bundles are not kept. */
const MAX_PROJECT_DIRS = 20_000;

export interface LocalCacheOptions {
  /** Where the cache lives (default ~/.cache/slipway); null remembers nothing (every file hashed, every bundle built). */
  dir?: string | null;
}

export interface BundleRecord {
  /** Every file esbuild read, with the digest it had. */
  inputs: Record<string, Digest>;
  /** Paths whose signature (or absence, "-") decides how imports resolve: input directories, tsconfig, package.json. */
  probes: Record<string, string>;
  output: Digest;
  exports?: string[];
}

interface Index {
  format: number;
  files: Record<string, [string, Digest]>;
  bundles: Record<string, BundleRecord>;
  /** The blobs the last successful request to a server named: all of them were there then. */
  sent?: { server: string; blobs: Digest[] };
}

export class LocalCache {
  private readonly used: Index = { format: FORMAT, files: {}, bundles: {} };
  private changed = false;
  private beganAt: bigint | null = null;
  /** The device the stamp file is on: only files there can be judged by its clock. */
  private clockDev: bigint | null = null;
  /** Files read and hashed, and files whose recorded digest was used, in this run. */
  readonly counts = { hashed: 0, reused: 0 };
  private readonly notes: string[] = [];
  private problem: string | null = null;

  private constructor(
    private readonly dir: string | null,
    private readonly indexPath: string | null,
    private readonly previous: Index,
    private readonly appDir: string,
  ) {}

  /** The cache for one app file. */
  static open(appPath: string, options: LocalCacheOptions = {}): LocalCache {
    const dir = options.dir === undefined ? join(nodeOs().homedir(), ".cache", "slipway") : options.dir;
    const appDir = dirname(resolve(appPath));
    if (!dir) return new LocalCache(null, null, { format: FORMAT, files: {}, bundles: {} }, appDir);
    const indexPath = join(dir, `${sha256(appPath).slice("sha256:".length, 39)}.json`);
    let previous: Index = { format: FORMAT, files: {}, bundles: {} };
    try {
      const parsed: unknown = JSON.parse(readFileSync(indexPath, "utf8"));
      if (isIndex(parsed)) previous = parsed;
    } catch {
      // No index yet, or one cut short: start over.
    }
    return new LocalCache(resolve(dir), indexPath, previous, appDir);
  }

  /**
   * When this run began, by the filesystem's clock (ns); fixed at the first call, which must come before anything
   * is read. A change at or after it may share a timestamp tick with a later one.
   */
  began(): bigint {
    if (this.beganAt === null) {
      this.beganAt = 0n;
      if (this.dir) {
        try {
          const stamp = join(this.dir, "clock");
          mkdirSync(this.dir, { recursive: true });
          writeFileSync(stamp, "");
          const st = statSync(stamp, { bigint: true });
          this.beganAt = st.ctimeNs;
          this.clockDev = st.dev;
        } catch (err) {
          // No stamp, no trust: every file counts as just changed.
          this.beganAt = BigInt(Number.MAX_SAFE_INTEGER) * 1_000_000_000n;
          this.problem = `cannot be written (${(err as Error).message}): every file is hashed and every bundle made`;
        }
      }
    }
    return this.beganAt;
  }

  /**
   * The content digest of a regular file, reading it only when its signature is not the one recorded. `stat`, when
   * the caller has it, must be taken after `began()`.
   */
  digest(path: string, stat?: BigIntStats): { digest: Digest; size: number } {
    const began = this.began();
    const st = stat ?? statSync(path, { bigint: true });
    const sig = signature(st);
    const known = this.used.files[path] ?? this.previous.files[path];
    if (known && known[0] === sig) {
      this.used.files[path] = known;
      this.counts.reused++;
      return { digest: known[1], size: Number(st.size) };
    }
    const data = readFileSync(path);
    const digest = sha256(data);
    // A file changed since this run began may change again within the same timestamp tick, and one on another
    // filesystem cannot be judged by this clock: neither is trusted next time.
    this.used.files[path] = [this.judgeable(st, began) ? sig : "untrusted", digest];
    this.changed = true;
    this.counts.hashed++;
    return { digest, size: data.length };
  }

  /** Whether a signature taken now can be trusted later: on the clock's filesystem, and older than this run. */
  private judgeable(st: BigIntStats, began: bigint): boolean {
    return st.dev === this.clockDev && st.ctimeNs < began;
  }

  /**
   * A recorded bundle whose every input still has its digest and every probe its signature. Otherwise null, and
   * why (for `--explain`) among `notes`, under `label`.
   */
  bundle(key: string, label: string): { record: BundleRecord; code: Buffer; path: string } | null {
    const miss = (why: string) => {
      this.notes.push(`${label}: bundled again: ${why}`);
      return null;
    };
    const record = this.previous.bundles[key];
    if (!this.dir) return null;
    if (!record) return miss("not bundled before with this esbuild, SDK and options, or not kept (an input changed while it was read)");
    this.began();
    for (const [path, sig] of Object.entries(record.probes)) {
      if (probe(path) !== sig) return miss(`${path} changed (it decides how imports resolve)`);
    }
    for (const [path, digest] of Object.entries(record.inputs)) {
      try {
        if (this.digest(path).digest !== digest) return miss(`${path} changed`);
      } catch {
        return miss(`${path} is gone`);
      }
    }
    let code: Buffer;
    const path = this.outputPath(record.output)!;
    try {
      code = readFileSync(path);
    } catch {
      return miss(`the kept output ${path} is gone`);
    }
    if (sha256(code) !== record.output) return miss(`the kept output ${path} is damaged`);
    this.used.bundles[key] = record;
    this.notes.push(`${label}: bundle reused (inputs and resolution unchanged)`);
    return { record, code, path };
  }

  /** What this run did, for `--explain`: files hashed and reused, each bundle reused or made again and why. */
  report(): string[] {
    if (!this.dir) return ["client cache: off (every file hashed, every bundle made)"];
    const state = this.problem ?? `${this.counts.reused} file(s) known by signature, ${this.counts.hashed} read and hashed`;
    return [`client cache ${this.dir}: ${state}`, ...this.notes];
  }

  /** Where a bundle output is kept (null for a cache that keeps nothing). */
  outputPath(digest: Digest): string | null {
    return this.dir ? join(this.dir, "out", `${digest.slice("sha256:".length)}.mjs`) : null;
  }

  /**
   * Records a bundle built from `inputs` (absolute paths) by a build that started after `began()`; returns the
   * output's digest and where it is kept. Not kept when an input or probe changed since the run began: the build
   * may have read it before the change.
   */
  recordBundle(key: string, inputs: string[], code: Buffer, exports?: string[]): { digest: Digest; path: string | null } {
    const output = { digest: sha256(code), path: null };
    if (!this.dir) return output;
    const began = this.began();
    const record: BundleRecord = { inputs: {}, probes: {}, output: output.digest, ...(exports ? { exports } : {}) };
    const probes = new Set<string>();
    const contents = new Set(inputs);
    for (const path of inputs) for (const p of resolutionProbes(path, this.appDir)) probes.add(p);
    // tsconfig files name others (`extends`) whose content decides resolution too.
    for (const p of [...probes]) if (/\/(ts|js)config\.json$/.test(p)) for (const e of tsconfigChain(p)) (e.content ? contents : probes).add(e.path);
    const dirs = projectDirs(this.appDir, this.dir);
    if (!dirs) return output;
    for (const d of dirs) probes.add(d);
    for (const path of contents) {
      let st: BigIntStats;
      try {
        st = statSync(path, { bigint: true });
      } catch {
        probes.add(path); // an `extends` that names nothing: its appearing later counts
        continue;
      }
      if (!this.judgeable(st, began)) return output;
      record.inputs[path] = this.digest(path, st).digest;
    }
    for (const p of probes) {
      if (p in record.inputs) continue;
      let st: BigIntStats | undefined;
      try {
        st = statSync(p, { bigint: true });
      } catch {
        st = undefined;
      }
      if (st && !this.judgeable(st, began)) return output;
      record.probes[p] = st ? signature(st) : "-";
    }
    const path = this.outputPath(output.digest)!;
    try {
      writeAtomic(path, code);
    } catch {
      return output; // a cache that cannot be written costs time next run, nothing else
    }
    this.used.bundles[key] = record;
    this.changed = true;
    return { digest: output.digest, path };
  }

  /**
   * The blobs the last successful request to `server` named (the server had every one of them then), or null when
   * the last request went elsewhere or none is recorded. A hint only: the server may have collected some since.
   */
  sentBefore(server: string): Set<Digest> | null {
    const sent = this.previous.sent;
    return sent && sent.server === server ? new Set(sent.blobs) : null;
  }

  /** Records the blobs a request that succeeded named; saved with the rest by `save()`. */
  recordSent(server: string, blobs: Digest[]): void {
    const before = this.previous.sent;
    const same = before?.server === server && before.blobs.length === blobs.length && blobs.every((d, i) => before.blobs[i] === d);
    this.used.sent = { server, blobs };
    if (!same) this.changed = true;
  }

  /** Writes what this run used (and nothing it did not: the index stays the size of one app). */
  save(): void {
    if (!this.indexPath) return;
    const dropped = Object.keys(this.previous.files).some((p) => !(p in this.used.files)) ||
      Object.keys(this.previous.bundles).some((k) => !(k in this.used.bundles));
    if (!this.changed && !dropped) return;
    try {
      writeAtomic(this.indexPath, Buffer.from(JSON.stringify(this.used)));
    } catch {
      // A cache that cannot be written costs time next run, nothing else.
    }
  }
}

/** The key of a bundle: what was bundled and how (a different esbuild or SDK path is a different bundle). */
export function bundleKey(parts: Record<string, unknown>): string {
  return sha256(canonicalJson(parts));
}

function signature(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.mode}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** A path's signature, or "-" when it does not exist. */
function probe(path: string): string {
  try {
    return signature(statSync(path, { bigint: true }));
  } catch {
    return "-";
  }
}

/**
 * What can change how an input's imports resolve without changing any input: a file added beside it or in any
 * directory between it and the app's directory (the directories' signatures; those under the app's directory come
 * from the project walk), and the config files and node_modules esbuild consults in every directory above it.
 */
function resolutionProbes(input: string, appDir: string): string[] {
  const out: string[] = [];
  const ancestorOfApp = (d: string) => d === "/" || appDir.startsWith(d + "/");
  const insideApp = (d: string) => d === appDir || d.startsWith(appDir + "/");
  let dir = dirname(input);
  out.push(dir);
  for (;;) {
    // Directories above the app's (the home directory, /tmp) change all the time and decide nothing here.
    if (!ancestorOfApp(dir) && !insideApp(dir)) out.push(dir);
    for (const name of ["tsconfig.json", "jsconfig.json", "package.json", "node_modules"]) out.push(join(dir, name));
    if (dir === "/") break;
    dir = dirname(dir);
  }
  return out;
}

/**
 * Every directory under the app's directory (not following links; dot-directories and the cache itself skipped;
 * in node_modules only the packages' own directories), or null when there are too many to check each run.
 */
function projectDirs(root: string, cacheDir: string): string[] | null {
  const out: string[] = [root];
  const walk = (dir: string, depthInModules: number): boolean => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return true;
    }
    for (const e of entries) {
      if (!e.isDirectory() || e.name.startsWith(".")) continue;
      const path = join(dir, e.name);
      if (path === cacheDir) continue;
      out.push(path);
      if (out.length > MAX_PROJECT_DIRS) return false;
      const inModules = depthInModules >= 0 ? depthInModules + 1 : e.name === "node_modules" ? 0 : -1;
      // node_modules/<pkg> and node_modules/@scope/<pkg>: a package added or removed; what is inside is content.
      if (inModules >= 0 && (inModules > 1 || (inModules === 1 && !e.name.startsWith("@")))) continue;
      if (!walk(path, inModules)) return false;
    }
    return true;
  };
  return walk(root, -1) ? out : null;
}

/**
 * The files a tsconfig.json's `extends` names, followed (relative paths as content, package paths as probes under
 * node_modules). Read loosely: tsconfig allows comments, and a name missed here is still caught by the project walk
 * when it is under the app's directory.
 */
function tsconfigChain(path: string, depth = 0): Array<{ path: string; content: boolean }> {
  if (depth > 8) return [];
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [];
  }
  const m = /"extends"\s*:\s*("(?:[^"\\]|\\.)*"|\[[^\]]*\])/.exec(text);
  if (!m) return [];
  const names = [...m[1]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((x) => x[1]!);
  const out: Array<{ path: string; content: boolean }> = [];
  for (const name of names) {
    if (name.startsWith(".") || name.startsWith("/")) {
      const target = resolve(dirname(path), name.endsWith(".json") ? name : `${name}.json`);
      out.push({ path: target, content: true }, ...tsconfigChain(target, depth + 1));
    } else {
      let dir = dirname(path);
      for (;;) {
        out.push({ path: join(dir, "node_modules", name), content: false });
        if (dir === "/") break;
        dir = dirname(dir);
      }
    }
  }
  return out;
}

function isDigestString(value: unknown): value is Digest {
  return typeof value === "string" && /^sha256:[0-9a-f]{64}$/.test(value);
}

const isStringMap = (v: unknown): v is Record<string, string> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "string");

/** An index of the right shape; anything else (an older format, a hand-edited file) is started over. */
function isIndex(v: unknown): v is Index {
  if (typeof v !== "object" || v === null) return false;
  const index = v as Partial<Index>;
  if (index.format !== FORMAT || typeof index.files !== "object" || index.files === null || typeof index.bundles !== "object" || index.bundles === null) return false;
  for (const f of Object.values(index.files)) if (!Array.isArray(f) || f.length !== 2 || typeof f[0] !== "string" || !isDigestString(f[1])) return false;
  for (const b of Object.values(index.bundles)) {
    if (typeof b !== "object" || b === null || !isStringMap(b.inputs) || !isStringMap(b.probes) || !isDigestString(b.output)) return false;
    if (b.exports !== undefined && !(Array.isArray(b.exports) && b.exports.every((x) => typeof x === "string"))) return false;
  }
  const sent = index.sent;
  if (sent !== undefined && (typeof sent !== "object" || sent === null || typeof sent.server !== "string" || !Array.isArray(sent.blobs) || !sent.blobs.every(isDigestString))) return false;
  return true;
}

let temps = 0;

function writeAtomic(path: string, data: Buffer): void {
  mkdirSync(join(path, ".."), { recursive: true });
  // Unique per process and call; no random id, whose node:crypto costs a client command on Bun ~5 ms to load.
  const tmp = `${path}.tmp-${process.pid}-${++temps}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}
