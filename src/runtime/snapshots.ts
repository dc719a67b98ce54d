// Unpacked layers, shared by the builder and the worker: each layer is unpacked once per machine, into
// snapshots/<diffID hex>/, and used read-only as an overlayfs lower by every image that has it.
//
//   <data>/snapshots/<hex>/        one layer's files, whiteouts in overlayfs form
//   <data>/snapshots/.tmp-<id>/    an unpack in progress (renamed into place when verified, swept at start)
//   <data>/snapshots/.empty/       the lower of an image with no layers
//   <data>/snapshots/.boot         "<boot id> open|clean": the boot that last opened the store, and whether it closed it
//
// Snapshots are caches of their blobs and are never synced one by one (README: layers). A killed server loses
// nothing of them (the page cache outlives it), but a machine that went down without closing the store may have lost
// writes the kernel had not made yet: the next open on a new boot drops every snapshot, to be unpacked again from its
// blob when needed. A clean close syncs the filesystem first.
import { readdirSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { newId } from "../core/ids.js";
import { parseDigest, type Digest } from "../oci/digest.js";
import { unpackLayer, type UnpackLimits } from "../oci/layer-reader.js";
import { hostCommand, type HostCommandError } from "./host-commands.js";
import { layerCompression } from "../oci/media-types.js";
import type { Descriptor } from "../oci/manifest.js";
import type { BlobRead } from "../store/blob-store.js";


export interface LayerRef extends Descriptor {
  diffId: Digest;
}

export class SnapshotStore {
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(
    readonly root: string,
    private readonly blobs: BlobRead,
    /** Applied to every layer unpacked onto this store's filesystem: its snapshots, and base tarballs in its temp dirs. */
    readonly limits: UnpackLimits = {},
    /** The boot that opened the store. */
    private readonly boot = "",
  ) {}

  static async open(root: string, blobs: BlobRead, limits: UnpackLimits = {}, options: { bootIdPath?: string } = {}): Promise<SnapshotStore> {
    await mkdir(join(root, ".empty"), { recursive: true });
    // Without a boot id (no /proc), every open counts as the same boot: snapshots are kept, as before.
    const boot = (await readFile(options.bootIdPath ?? "/proc/sys/kernel/random/boot_id", "utf8").catch(() => "unknown")).trim();
    const [lastBoot, state] = (await readFile(join(root, ".boot"), "utf8").catch(() => "")).trim().split(" ");
    // No record (a store from before this one, or a fresh one): nothing is known to be lost.
    const lostWrites = Boolean(lastBoot) && lastBoot !== boot && state !== "clean";
    for (const name of await readdir(root)) {
      if (name.startsWith(".tmp-") || (lostWrites && /^[0-9a-f]{64}$/.test(name))) await rm(join(root, name), { recursive: true, force: true });
    }
    await writeFile(join(root, ".boot"), `${boot} open\n`);
    return new SnapshotStore(root, blobs, limits, boot);
  }

  /** Syncs the snapshots' filesystem and records that this boot closed the store: the next boot may keep them. */
  async close(): Promise<void> {
    await hostCommand("sync", ["-f", this.root]);
    await writeFile(join(this.root, ".boot"), `${this.boot} clean\n`);
    await hostCommand("sync", ["-f", this.root]);
  }

  pathOf(diffId: Digest): string {
    return join(this.root, parseDigest(diffId).hex);
  }

  get emptyDir(): string {
    return join(this.root, ".empty");
  }

  async has(diffId: Digest): Promise<boolean> {
    return stat(this.pathOf(diffId)).then(
      () => true,
      () => false,
    );
  }

  /** A fresh directory on the snapshots' filesystem, to fill and then adopt. */
  async tempDir(): Promise<string> {
    const dir = join(this.root, `.tmp-${newId()}`);
    await mkdir(dir);
    return dir;
  }

  /** Makes a filled directory the snapshot of diffId (or drops it when another writer got there first). */
  async adopt(dir: string, diffId: Digest): Promise<string> {
    const dest = this.pathOf(diffId);
    try {
      await rename(dir, dest);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
      await rm(dir, { recursive: true, force: true });
    }
    return dest;
  }

  /** Ensures the layer is unpacked; concurrent callers for one layer share one unpack. */
  async ensure(layer: LayerRef): Promise<string> {
    if (await this.has(layer.diffId)) return this.pathOf(layer.diffId);
    const key = layer.diffId;
    let p = this.inflight.get(key);
    if (!p) {
      p = (async () => {
        const tmp = await this.tempDir();
        try {
          await unpackLayer(await this.blobs.read(layer.digest), tmp, {
            ...this.limits,
            compression: layerCompression(layer.mediaType),
            expectDigest: layer.digest,
            expectDiffId: layer.diffId,
            label: `layer ${layer.digest}`,
          });
          return await this.adopt(tmp, layer.diffId);
        } catch (err) {
          await rm(tmp, { recursive: true, force: true });
          throw err;
        }
      })().finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }
}

export interface OverlayMount {
  readonly merged: string;
  readonly upper: string;
  unmount(): Promise<void>;
}

/**
 * Mounts an overlay of lower directories (lowest first: snapshots, or a build's upper dir still being packed) with a
 * fresh upper dir under `dir`. Lower dirs are passed relative to the snapshots root so that many layers fit in the
 * mount options.
 */
export async function mountOverlay(snapshots: SnapshotStore, lowers: string[], dir: string): Promise<OverlayMount> {
  const upper = join(dir, "upper");
  const work = join(dir, "work");
  const merged = join(dir, "merged");
  await Promise.all([mkdir(upper, { recursive: true }), mkdir(work, { recursive: true }), mkdir(merged, { recursive: true })]);
  const lowerNames = lowers.length ? [...lowers].reverse().map((d) => relative(snapshots.root, d)) : [".empty"];
  const options = [
    `lowerdir=${lowerNames.join(":")}`,
    `upperdir=${upper}`,
    `workdir=${work}`,
    "redirect_dir=off",
    "index=off",
    "metacopy=off",
    // No sync of the upper filesystem at unmount (which waits for every dirty page on the disk, tens of ms): the
    // upper dir is thrown away, or packed into a blob (synced) and kept as the layer's snapshot, which, like an
    // unpacked layer, is a cache of that blob and is never synced itself (README: layers).
    "volatile",
  ].join(",");
  await hostCommand("mount", ["-t", "overlay", "overlay", "-o", options, merged], { cwd: snapshots.root });
  let mounted = true;
  return {
    merged,
    upper,
    async unmount() {
      if (!mounted) return;
      mounted = false;
      await hostCommand("umount", [merged]).catch(async () => {
        await hostCommand("umount", ["-l", merged]);
      });
      await rm(work, { recursive: true, force: true });
    },
  };
}

/** Directories under `dir` that carry overlayfs's opaque marker, as paths relative to `dir`. */
export async function opaqueDirs(dir: string): Promise<Set<string>> {
  const out = new Set<string>();
  // Only a directory can be opaque: an upper dir of files alone (most RUN steps' output) needs no getfattr.
  if (!readdirSync(dir, { withFileTypes: true }).some((e) => e.isDirectory())) return out;
  let stdout = "";
  try {
    stdout = await hostCommand("getfattr", ["-R", "-P", "--absolute-names", "-m", "^trusted\\.overlay\\.opaque$", "-d", dir]);
  } catch (err) {
    // getfattr exits 1 when some file has no such attribute; what it printed still counts.
    stdout = (err as HostCommandError).output ?? "";
  }
  let current: string | null = null;
  for (const line of stdout.split("\n")) {
    if (line.startsWith("# file: ")) current = decodeGetfattrPath(line.slice(8));
    else if (current && line.startsWith("trusted.overlay.opaque=")) {
      if (line.includes('"y"') && current.startsWith(dir)) out.add(current.slice(dir.length).replace(/^\/+/, ""));
    }
  }
  return out;
}

function decodeGetfattrPath(path: string): string {
  return Buffer.from(
    path.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8))),
    "latin1",
  ).toString("utf8");
}

/** Unmounts overlays left under `root` by a process that died, and removes their directories. */
export async function sweepMounts(root: string): Promise<number> {
  const mounts = (await readFile("/proc/mounts", "utf8"))
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .map((p) => p.replace(/\\040/g, " "))
    .filter((p) => p.startsWith(root + "/"))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await hostCommand("umount", ["-l", m]).catch(() => undefined);
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  return mounts.length;
}
