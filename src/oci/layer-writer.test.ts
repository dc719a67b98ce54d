// Deterministic layers: the same tree gives the same bytes however and wherever it was made (case BC5).
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gunzipSync } from "node:zlib";
import { extract, type Header } from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InvalidError } from "../core/errors.js";
import { sha256 } from "./digest.js";
import { unpackLayer } from "./layer-reader.js";
import { entriesFromDirectory, packLayer, worthwhileCompression, type LayerEntry } from "./layer-writer.js";
import type { Compression } from "./media-types.js";

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("layer-writer.test.ts: whiteout and ownership tests skipped, they need root (mknod, chown)");

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function packDir(dir: string, compression: Compression = "gzip", options: Parameters<typeof entriesFromDirectory>[1] = {}): Promise<{ bytes: Buffer; diffId: string }> {
  const layer = packLayer(entriesFromDirectory(dir, options), { compression });
  const [bytes, diffId] = await Promise.all([collect(layer.stream), layer.diffId]);
  return { bytes, diffId };
}

async function tarHeaders(tar: Buffer): Promise<Array<Header & { body: string }>> {
  const out: Array<Header & { body: string }> = [];
  const ex = extract();
  const done = (async () => {
    for await (const entry of ex) {
      out.push({ ...entry.header, body: (await collect(entry as unknown as Readable)).toString() });
    }
  })();
  ex.end(tar);
  await done;
  return out;
}

/** A small tree: nested dirs, names that sort differently by bytes and by locale, a symlink, a hardlink pair. */
function fillTree(root: string, order: "forward" | "reverse"): void {
  const files: Array<[string, string]> = [
    ["a/b/deep.txt", "deep\n"],
    ["a/Z", "upper\n"],
    ["a-b", "dash\n"],
    ["a_b", "underscore\n"],
    ["B", "capital\n"],
    ["empty", ""],
    ["bin/tool", "#!/bin/sh\necho tool\n"],
  ];
  const ordered = order === "forward" ? files : [...files].reverse();
  for (const [path, content] of ordered) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  chmodSync(join(root, "bin/tool"), 0o755);
  chmodSync(join(root, "bin"), 0o750);
  symlinkSync("../bin/tool", join(root, "a", "tool-link"));
  linkSync(join(root, "bin/tool"), join(root, "a", "tool-hard"));
}

function touchAll(root: string): void {
  const later = new Date(Date.now() + 3_600_000);
  execFileSync("find", [root, "-exec", "touch", "-h", "-d", later.toISOString(), "{}", "+"]);
}

describe("packLayer + entriesFromDirectory write deterministic layers", () => {
  let top: string;
  beforeEach(() => {
    top = mkdtempSync(join(tmpdir(), "slipway-pack-"));
  });
  afterEach(() => {
    rmSync(top, { recursive: true, force: true });
  });

  it.each(["gzip", "zstd", "none"] as const)("gives byte-identical %s layers for the same tree, after touch, and made elsewhere in another order", async (compression) => {
    const one = join(top, "one");
    const two = join(top, "elsewhere", "two");
    mkdirSync(one);
    mkdirSync(two, { recursive: true });
    fillTree(one, "forward");
    fillTree(two, "reverse");
    const first = await packDir(one, compression);
    const again = await packDir(one, compression);
    touchAll(one);
    const touched = await packDir(one, compression);
    const other = await packDir(two, compression);
    expect(again.bytes.equals(first.bytes)).toBe(true);
    expect(touched.bytes.equals(first.bytes)).toBe(true);
    expect(other.bytes.equals(first.bytes)).toBe(true);
    expect(other.diffId).toBe(first.diffId);
    const tar = compression === "gzip" ? gunzipSync(first.bytes) : compression === "zstd" ? execFileSync("zstd", ["-q", "-d", "-c"], { input: first.bytes }) : first.bytes;
    expect(first.diffId).toBe(sha256(tar));
  });

  it("writes entries depth first with siblings in byte order, mtimes at the epoch and no user names", async () => {
    fillTree(top, "reverse");
    const { bytes } = await packDir(top, "none");
    const headers = await tarHeaders(bytes);
    expect(headers.map((h) => h.name)).toEqual([
      "B",
      "a",
      "a/Z",
      "a/b",
      "a/b/deep.txt",
      "a/tool-hard",
      "a/tool-link",
      "a-b",
      "a_b",
      "bin",
      "bin/tool",
      "empty",
    ]);
    for (const h of headers) {
      expect(h.mtime?.getTime(), h.name).toBe(0);
      expect(h.uname ?? "", h.name).toBe("");
      expect(h.gname ?? "", h.name).toBe("");
    }
  });

  it("writes a hardlinked file once and links its other paths to the first one in walk order", async () => {
    fillTree(top, "forward");
    const { bytes } = await packDir(top, "none");
    const headers = await tarHeaders(bytes);
    const hard = headers.find((h) => h.name === "a/tool-hard")!;
    const tool = headers.find((h) => h.name === "bin/tool")!;
    // a/tool-hard comes first in the walk, so it carries the content and bin/tool links to it.
    expect([hard.type, hard.body]).toEqual(["file", "#!/bin/sh\necho tool\n"]);
    expect([tool.type, tool.linkname, tool.body]).toEqual(["link", "a/tool-hard", ""]);
    const link = headers.find((h) => h.name === "a/tool-link")!;
    expect([link.type, link.linkname]).toEqual(["symlink", "../bin/tool"]);
  });

  it("keeps modes, including mode 0 and setuid", async () => {
    writeFileSync(join(top, "locked"), "x");
    chmodSync(join(top, "locked"), 0o000);
    writeFileSync(join(top, "su"), "x");
    chmodSync(join(top, "su"), 0o4755);
    mkdirSync(join(top, "closed"));
    chmodSync(join(top, "closed"), 0o000);
    const headers = await tarHeaders((await packDir(top, "none")).bytes);
    const mode = (name: string) => headers.find((h) => h.name === name)?.mode;
    expect([mode("locked"), mode("su"), mode("closed")]).toEqual([0o000, 0o4755, 0o000]);
  });

  it.skipIf(!isRoot)("refuses a device node, naming it (root)", async () => {
    execFileSync("mknod", [join(top, "null"), "c", "1", "3"]);
    const err = await packDir(top, "none").then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InvalidError);
    expect((err as Error).message).toBe("null is a device node; layers may not contain device nodes");
  });

  it.skipIf(!isRoot)("writes overlay whiteouts as .wh. entries and opaque dirs as .wh..wh..opq, and keeps owners (root)", async () => {
    mkdirSync(join(top, "etc"));
    execFileSync("mknod", [join(top, "etc", "motd"), "c", "0", "0"]);
    mkdirSync(join(top, "var"));
    writeFileSync(join(top, "var", "kept"), "k");
    chownSync(join(top, "var", "kept"), 1000, 100);
    const { bytes } = await packDir(top, "none", { overlayWhiteouts: true, opaqueDirs: new Set(["var"]) });
    const headers = await tarHeaders(bytes);
    expect(headers.map((h) => [h.name, h.type, h.size])).toEqual([
      ["etc", "directory", 0],
      ["etc/.wh.motd", "file", 0],
      ["var", "directory", 0],
      ["var/.wh..wh..opq", "file", 0],
      ["var/kept", "file", 1],
    ]);
    const kept = headers.find((h) => h.name === "var/kept")!;
    expect([kept.uid, kept.gid]).toEqual([1000, 100]);
  });

  it.skipIf(!isRoot)("round-trips through unpackLayer (root)", async () => {
    const src = join(top, "src");
    const out = join(top, "out");
    mkdirSync(src);
    mkdirSync(out);
    fillTree(src, "forward");
    const { bytes, diffId } = await packDir(src, "gzip");
    const result = await unpackLayer(Readable.from([bytes]), out, { compression: "gzip", expectDigest: sha256(bytes), expectDiffId: diffId as `sha256:${string}` });
    expect(result.entries).toBe(12);
    expect(readFileSync(join(out, "a/b/deep.txt"), "utf8")).toBe("deep\n");
    expect(lstatSync(join(out, "bin")).mode & 0o7777).toBe(0o750);
    expect(lstatSync(join(out, "a/tool-hard")).ino).toBe(lstatSync(join(out, "bin/tool")).ino);
    // Packing what was unpacked gives the same layer again.
    expect((await packDir(out, "gzip")).bytes.equals(bytes)).toBe(true);
  });

  it("packs entries given directly, whiteouts included", async () => {
    const entries: LayerEntry[] = [
      { type: "dir", path: "d", mode: 0o755, uid: 0, gid: 0 },
      { type: "whiteout", path: "d/gone" },
      { type: "opaque", path: "d" },
      { type: "file", path: "d/f", mode: 0o644, uid: 0, gid: 0, size: 2, open: () => Readable.from([Buffer.from("hi")]) },
    ];
    const layer = packLayer(entries, { compression: "none" });
    const [bytes, diffId] = await Promise.all([collect(layer.stream), layer.diffId]);
    expect(diffId).toBe(sha256(bytes));
    expect((await tarHeaders(bytes)).map((h) => h.name)).toEqual(["d", "d/.wh.gone", "d/.wh..wh..opq", "d/f"]);
  });
});

describe("packLayer refuses a file whose size changed after it was listed", () => {
  let top: string;
  beforeEach(() => {
    top = mkdtempSync(join(tmpdir(), "slipway-pack-size-"));
  });
  afterEach(() => {
    rmSync(top, { recursive: true, force: true });
  });

  async function packListed(mutate: (path: string) => void, bytes: number): Promise<unknown> {
    writeFileSync(join(top, "f"), Buffer.alloc(bytes, "a"));
    const entries: LayerEntry[] = [];
    for await (const e of entriesFromDirectory(top)) entries.push(e);
    mutate(join(top, "f"));
    const layer = packLayer(entries, { compression: "none" });
    const [streamed, diffId] = await Promise.allSettled([collect(layer.stream), layer.diffId]);
    expect(streamed.status).toBe("rejected");
    return diffId.status === "rejected" ? diffId.reason : null;
  }

  it.each([
    ["a small file that grew", 10, (p: string) => writeFileSync(p, "a".repeat(11)), "f changed size while it was being packed (10 → 11 or more bytes)"],
    ["a small file that shrank", 10, (p: string) => writeFileSync(p, "a".repeat(9)), "f changed size while it was being packed (10 → 9 bytes)"],
    ["a large (streamed) file that grew", 2 << 20, (p: string) => writeFileSync(p, "b", { flag: "a" }), `f changed size while it was being packed (${2 << 20} → ${(2 << 20) + 1} or more bytes)`],
    ["a large (streamed) file that shrank", 2 << 20, (p: string) => writeFileSync(p, "b"), `f changed size while it was being packed (${2 << 20} → 1 bytes)`],
  ])("%s", async (_what, bytes, mutate, message) => {
    const err = await packListed(mutate, bytes);
    expect(err).toBeInstanceOf(InvalidError);
    expect((err as Error).message).toBe(message);
  });

  it("packs a large (streamed) file between small ones whole, in order, each padded to whole blocks", async () => {
    writeFileSync(join(top, "a"), "first\n");
    writeFileSync(join(top, "b"), Buffer.alloc((2 << 20) + 3, "b"));
    writeFileSync(join(top, "c"), "last\n");
    const { bytes } = await packDir(top, "none");
    const headers = await tarHeaders(bytes);
    expect(headers.map((h) => [h.name, h.size, h.body.length])).toEqual([
      ["a", 6, 6],
      ["b", (2 << 20) + 3, (2 << 20) + 3],
      ["c", 5, 5],
    ]);
    expect(bytes.length).toBe(512 + 512 + 512 + (2 << 20) + 512 + 512 + 512 + 1024);
  });
});

describe("layer timestamps do not leak", () => {
  it("a tree touched to another time still packs to the same digest", async () => {
    const dir = mkdtempSync(join(tmpdir(), "slipway-pack-t-"));
    try {
      writeFileSync(join(dir, "f"), "x");
      const first = await packDir(dir);
      utimesSync(join(dir, "f"), new Date(0), new Date(1_000_000_000_000));
      utimesSync(dir, new Date(0), new Date(123_456_789_000));
      expect((await packDir(dir)).bytes.equals(first.bytes)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("layers whose bytes do not compress are stored uncompressed", () => {
  const made: string[] = [];
  afterEach(() => {
    for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const layerOf = async (files: Record<string, Buffer>): Promise<LayerEntry[]> => {
    const dir = mkdtempSync(join(tmpdir(), "slipway-worth-"));
    made.push(dir);
    for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
    const entries: LayerEntry[] = [];
    for await (const e of entriesFromDirectory(dir)) entries.push(e);
    return entries;
  };
  const text = (bytes: number) => Buffer.from("the quick brown fox jumps over the lazy dog\n".repeat(Math.ceil(bytes / 44))).subarray(0, bytes);

  it("keeps the preferred compression for compressible bytes, small layers and mixed layers", async () => {
    expect(worthwhileCompression(await layerOf({ "text.txt": text(20 << 20) }), "zstd")).toBe("zstd");
    expect(worthwhileCompression(await layerOf({ "random.bin": randomBytes(8 << 20) }), "zstd")).toBe("zstd");
    // 18 MiB that does not compress beside 4 MiB that does: under nine tenths.
    expect(worthwhileCompression(await layerOf({ "random.bin": randomBytes(18 << 20), "text.txt": text(4 << 20) }), "gzip")).toBe("gzip");
  });

  it("stores a layer that is mostly large incompressible files uncompressed, whatever the preferred compression", async () => {
    const entries = await layerOf({ "random.bin": randomBytes(20 << 20), "small.txt": text(100 << 10) });
    expect(worthwhileCompression(entries, "zstd")).toBe("none");
    expect(worthwhileCompression(entries, "gzip")).toBe("none");
    expect(worthwhileCompression(entries, "none")).toBe("none");
  });
});
