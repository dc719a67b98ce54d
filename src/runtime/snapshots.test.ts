// The snapshot store across restarts: a store opened on a new boot that the last boot did not close drops its
// snapshots (writes the kernel had not made may be lost); one closed cleanly, or reopened on the same boot (a killed
// server), keeps them.
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { sha256 } from "../oci/digest.js";
import { FsBlobStore } from "../store/blob-store.js";
import { tempDirs } from "../../test/helpers/temp-dirs.js";
import { SnapshotStore } from "./snapshots.js";

const temp = tempDirs();

describe("snapshots across restarts", () => {
  it("are dropped on a new boot unless the last boot closed the store, and kept across a kill on the same boot", async () => {
    const dir = await temp("slipway-snapshots-");
    const blobs = await FsBlobStore.open(join(dir, "data"));
    const bootId = join(dir, "boot_id");
    const open = async (boot: string) => {
      await writeFile(bootId, `${boot}\n`);
      return SnapshotStore.open(join(dir, "snapshots"), blobs, {}, { bootIdPath: bootId });
    };
    const layer = sha256("a layer");
    const snapshot = async (store: SnapshotStore) => {
      const tmp = await store.tempDir();
      await mkdir(join(tmp, "etc"));
      await writeFile(join(tmp, "etc", "file"), "content");
      await store.adopt(tmp, layer);
    };

    const first = await open("boot-1");
    await snapshot(first);
    await first.tempDir();
    // Killed, restarted on the same boot: the page cache held every write.
    const sameBoot = await open("boot-1");
    expect(await sameBoot.has(layer)).toBe(true);
    // The machine went down with the store open: on the next boot nothing unsynced is trusted.
    const afterCrash = await open("boot-2");
    expect(await afterCrash.has(layer)).toBe(false);
    expect(existsSync(afterCrash.emptyDir)).toBe(true);
    // Closed cleanly (synced), then rebooted: kept.
    await snapshot(afterCrash);
    await afterCrash.close();
    const afterReboot = await open("boot-3");
    expect(await afterReboot.has(layer)).toBe(true);
    expect(existsSync(join(afterReboot.pathOf(layer), "etc", "file"))).toBe(true);
    // Reopened, so no longer closed: a crash now drops them again.
    const afterSecondCrash = await open("boot-4");
    expect(await afterSecondCrash.has(layer)).toBe(false);
  });
});
