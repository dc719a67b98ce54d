// Base images: scratch, a Debian root built with debootstrap from the Debian archive, or a rootfs tarball. Each
// produces the first layer(s) and the image config a build starts from.
import { execFile } from "node:child_process";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { FailedError, InternalError, InvalidError, isSlipwayError, UnavailableError } from "../core/errors.js";
import type { BaseSource } from "../core/schemas.js";
import { emptyImageConfig, type ImageConfig } from "../oci/manifest.js";
import { unpackLayer, type UnpackLimits } from "../oci/layer-reader.js";
import type { BlobRead } from "../store/blob-store.js";

const execFileP = promisify(execFile);

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Paths removed from a debootstrapped root: machine-specific files, caches, and what the runtime mounts. */
const DEBIAN_PRUNE = [
  "etc/hostname",
  "etc/resolv.conf",
  "var/log/bootstrap.log",
  "var/cache/apt/pkgcache.bin",
  "var/cache/apt/srcpkgcache.bin",
];
const DEBIAN_EMPTY = ["dev", "proc", "sys", "var/cache/apt/archives", "var/lib/apt/lists", "run", "tmp"];

/**
 * Fills `dir` with the base's root filesystem and returns its starting config. Scratch leaves it empty. A tarball is
 * unpacked under `limits` (those of the snapshots, whose filesystem `dir` is on).
 */
export async function materializeBase(
  source: BaseSource,
  dir: string,
  blobs: BlobRead,
  limits: UnpackLimits,
  log: (line: string) => void,
): Promise<ImageConfig> {
  const config = emptyImageConfig();
  switch (source.kind) {
    case "scratch":
      return config;
    case "debian": {
      await debootstrap(source.suite, source.variant, source.mirror, dir, log);
      config.config.Env = [`PATH=${DEFAULT_PATH}`];
      config.config.Cmd = ["bash"];
      return config;
    }
    case "tarball": {
      let head = Buffer.alloc(0);
      for await (const chunk of await blobs.read(source.digest, { start: 0, end: 1 })) head = Buffer.concat([head, chunk as Buffer]);
      const isGzip = head.equals(Buffer.from([0x1f, 0x8b]));
      await unpackLayer(await blobs.read(source.digest), dir, {
        ...limits,
        compression: isGzip ? "gzip" : "none",
        label: `base tarball ${source.name}`,
      }).catch((err: unknown) => {
        // The tar reader's own words ("Invalid tar header…") do not say which file; Slipway's errors already do.
        if (isSlipwayError(err)) throw err;
        throw new InvalidError(`base tarball ${source.name} is not a tar archive (plain or gzip): ${(err as Error).message}`, { tarball: source.name });
      });
      config.config.Env = [`PATH=${DEFAULT_PATH}`];
      return config;
    }
    case "registry":
      throw new InternalError("registry bases are pulled (build/registry-base.ts), not materialised into a directory");
  }
}

async function debootstrap(suite: string, variant: string, mirror: string, dir: string, log: (line: string) => void): Promise<void> {
  log(`debootstrap --variant=${variant} ${suite} (${mirror})`);
  try {
    await execFileP("debootstrap", [`--variant=${variant}`, suite, dir, mirror], { maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (e.code === "ENOENT") throw new UnavailableError("debootstrap is not installed (apt-get install debootstrap)");
    const tail = `${e.stdout ?? ""}${e.stderr ?? ""}`.trim().split("\n").slice(-15).join("\n");
    throw new FailedError(`debootstrap of Debian ${suite} failed:\n${tail}`, { suite, mirror, output: tail });
  }
  for (const p of DEBIAN_PRUNE) await rm(join(dir, p), { force: true });
  for (const p of DEBIAN_EMPTY) {
    for (const name of await readdir(join(dir, p)).catch(() => [] as string[])) {
      if (p === "var/lib/apt/lists" && (name === "partial" || name === "lock")) continue;
      if (p === "var/cache/apt/archives" && (name === "partial" || name === "lock")) continue;
      await rm(join(dir, p, name), { recursive: true, force: true });
    }
  }
}
