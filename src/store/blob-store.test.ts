import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { sha256 } from "../oci/digest.js";
import { FsBlobStore } from "./blob-store.js";
import { tempDirs } from "../../test/helpers/temp-dirs.js";

const temp = tempDirs();

const EMPTY = sha256(Buffer.alloc(0));

describe("the filesystem blob store", () => {
  it("store and read back an empty blob, whole or streamed", async () => {
    const store = await FsBlobStore.open(await temp("slipway-blobs-"));
    expect(await store.put(Buffer.alloc(0), EMPTY)).toMatchObject({ digest: EMPTY, size: 0 });
    expect((await store.readBuffer(EMPTY)).length).toBe(0);
    const other = await FsBlobStore.open(await temp("slipway-blobs-"));
    expect(await other.putStream(Readable.from([Buffer.alloc(0)]), { digest: EMPTY, size: 0 })).toMatchObject({ digest: EMPTY, size: 0 });
    expect(other.hasSync(EMPTY)).toBe(true);
  });

  it("refuse bytes that are not the digest they are stored under, keeping nothing", async () => {
    const store = await FsBlobStore.open(await temp("slipway-blobs-"));
    const claimed = sha256(Buffer.from("expected"));
    await expect(store.put(Buffer.from("something else"), claimed)).rejects.toThrow(/digest/);
    expect(store.hasSync(claimed)).toBe(false);
  });
});
