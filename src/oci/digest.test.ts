// Digests: known vectors, chunked hashing equal to one-shot, Bun's native hasher equal to node:crypto (this file
// also runs on Bun: scripts/test-client-on-bun.sh), and parse errors that name the problem.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createHasher } from "../core/builtins.js";
import { DigestCounter, digestOf, parseDigest, sha256 } from "./digest.js";

describe("digests", () => {
  it("match the FIPS 180-2 vectors for sha256 and sha512", () => {
    expect(sha256("abc")).toBe("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(sha256(new Uint8Array())).toBe("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(digestOf("abc", "sha512")).toBe(
      "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
    );
  });

  it("are the same whether the bytes come at once or in chunks, and count them", () => {
    const data = randomBytes(1 << 20);
    const counter = new DigestCounter();
    for (let i = 0; i < data.length; i += 7919) counter.update(data.subarray(i, i + 7919));
    expect(counter.digest()).toBe(sha256(data));
    expect(counter.size).toBe(data.length);
  });

  it("are the same from the runtime's native hasher and from node:crypto", () => {
    const data = randomBytes(300_000);
    for (const algorithm of ["sha256", "sha512"] as const) {
      const native = createHasher(algorithm).update(data).update("tail").digest("hex");
      expect(native).toBe(createHasher(algorithm, { native: false }).update(data).update("tail").digest("hex"));
    }
  });

  it("refuse malformed digests, naming what is wrong", () => {
    expect(() => parseDigest("md5:abc")).toThrow(/unsupported algorithm "md5"/);
    expect(() => parseDigest("sha256:abc")).toThrow(/sha256 needs 64 lowercase hex digits/);
    expect(() => parseDigest("nocolon")).toThrow(/malformed: expected algorithm:hex/);
  });
});
