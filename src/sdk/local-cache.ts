// What the client worked out last time, so that an unchanged deploy does not hash or bundle again: file digests by
// stat signature (git's index idea), and esbuild outputs by the digests of the files that went into them.
// Content always decides: a signature only saves re-reading a file whose inode, size, mtime and ctime are all as
// they were. Timestamps are coarse (a second write in the same tick keeps them), so, as in git's racy-index rule, a
// file whose ctime is not older than the moment this run began (read off the filesystem's own clock, a stamp file
// touched before anything is read) is hashed again next time, and a bundle with such an input is not kept.
//
//   <cache>/<app key>.json    one index per app file: { files: {path: [signature, digest]}, bundles: {key: …} }
//   <cache>/out/<hex>.mjs     bundle outputs by digest
//   <cache>/clock             the stamp file
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync, type BigIntStats } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { newId } from "../core/ids.js";
import { canonicalJson } from "../core/canonical-json.js";
import { sha256, type Digest } from "../oci/digest.js";

const FORMAT = 1;

export interface LocalCacheOptions {
  /** Where the cache lives; null remembers nothing (every file hashed, every bundle built). */
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
}

export class LocalCache {
  private readonly used: Index = { format: FORMAT, files: {}, bundles: {} };
  private changed = false;
  private beganAt: bigint | null = null;
  /** Files read and hashed, and files whose recorded digest was used, in this run. */
  readonly counts = { hashed: 0, reused: 0 };

  private constructor(
    private readonly dir: string | null,
    private readonly indexPath: string | null,
    private readonly previous: Index,
  ) {}

  /** The cache for one app file (by default under ~/.cache/slipway, or $SLIPWAY_CACHE; "off" turns it off). */
  static open(appPath: string, options: LocalCacheOptions = {}): LocalCache {
    const dir = options.dir === undefined ? defaultCacheDir() : options.dir;
    if (!dir) return new LocalCache(null, null, { format: FORMAT, files: {}, bundles: {} });
    const indexPath = join(dir, `${sha256(appPath).slice("sha256:".length, 39)}.json`);
    let previous: Index = { format: FORMAT, files: {}, bundles: {} };
    try {
      const parsed = JSON.parse(readFileSync(indexPath, "utf8")) as Index;
      if (parsed.format === FORMAT && parsed.files && parsed.bundles) previous = parsed;
    } catch {
      // No index yet, or one cut short: start over.
    }
    return new LocalCache(dir, indexPath, previous);
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
          this.beganAt = statSync(stamp, { bigint: true }).ctimeNs;
        } catch {
          // No stamp, no trust: every file counts as just changed.
          this.beganAt = BigInt(Number.MAX_SAFE_INTEGER) * 1_000_000_000n;
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
    const known = this.previous.files[path] ?? this.used.files[path];
    if (known && known[0] === sig) {
      this.used.files[path] = known;
      this.counts.reused++;
      return { digest: known[1], size: Number(st.size) };
    }
    const data = readFileSync(path);
    const digest = sha256(data);
    // A file changed since this run began may change again within the same timestamp tick: not trusted.
    this.used.files[path] = [st.ctimeNs >= began ? "racy" : sig, digest];
    this.changed = true;
    this.counts.hashed++;
    return { digest, size: data.length };
  }

  /** A recorded bundle whose every input still has its digest and every probe its signature. */
  bundle(key: string): { record: BundleRecord; code: Buffer; path: string } | null {
    const record = this.previous.bundles[key];
    if (!record || !this.dir) return null;
    for (const [path, sig] of Object.entries(record.probes)) if (probe(path) !== sig) return null;
    for (const [path, digest] of Object.entries(record.inputs)) {
      try {
        if (this.digest(path).digest !== digest) return null;
      } catch {
        return null;
      }
    }
    let code: Buffer;
    const path = this.outputPath(record.output)!;
    try {
      code = readFileSync(path);
    } catch {
      return null;
    }
    if (sha256(code) !== record.output) return null;
    this.used.bundles[key] = record;
    return { record, code, path };
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
    for (const path of inputs) {
      if (statSync(path, { bigint: true }).ctimeNs >= began) return output;
      record.inputs[path] = this.digest(path).digest;
      for (const p of resolutionProbes(path)) {
        if (p in record.probes) continue;
        const sig = probe(p);
        if (sig !== "-" && statSync(p, { bigint: true }).ctimeNs >= began) return output;
        record.probes[p] = sig;
      }
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

function defaultCacheDir(): string | null {
  if (process.env.SLIPWAY_CACHE === "off") return null;
  return process.env.SLIPWAY_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "slipway");
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
 * What can change how an input's imports resolve without changing any input: a file added beside it (its
 * directory's signature) and the config files and node_modules esbuild consults in every directory above it.
 */
function resolutionProbes(input: string): string[] {
  const out: string[] = [];
  let dir = input.slice(0, input.lastIndexOf("/")) || "/";
  out.push(dir);
  for (;;) {
    for (const name of ["tsconfig.json", "jsconfig.json", "package.json", "node_modules"]) out.push(join(dir, name));
    if (dir === "/") break;
    dir = dir.slice(0, dir.lastIndexOf("/")) || "/";
  }
  return out;
}

function writeAtomic(path: string, data: Buffer): void {
  mkdirSync(join(path, ".."), { recursive: true });
  const tmp = `${path}.${newId("tmp-")}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}
