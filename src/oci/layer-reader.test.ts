// Unpacking hostile layers: every refusal must come before anything outside the destination is touched, which each
// test checks against a sentinel directory beside the destination. Needs root (mknod, chown, trusted.* xattrs).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  closeSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync, createGzip } from "node:zlib";
import { pack } from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InvalidError, UnavailableError } from "../core/errors.js";
import { sha256 } from "./digest.js";
import { unpackLayer, type UnpackOptions } from "./layer-reader.js";
import { chunksOf, tarOf, zerosLayer, type TarEntry } from "../../test/helpers/oci-images.js";

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("layer-reader.test.ts: skipped, unpacking needs root (mknod, chown, trusted.* xattrs)");

interface NodeState {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeMs: number;
  nlink: number;
  content?: string;
  target?: string;
  xattrs: string;
}

/** Everything observable about a tree: types, modes, owners, times, link counts, contents, link targets, xattrs. */
function treeState(root: string, skip?: string): Record<string, NodeState> {
  const out: Record<string, NodeState> = {};
  const visit = (path: string, rel: string): void => {
    const st = lstatSync(path);
    const xattrs = execFileSync("getfattr", ["-h", "-d", "-m", "-", "--absolute-names", path], { encoding: "utf8" }).replace(/^# file: .*\n/m, "");
    out[rel] = {
      mode: st.mode,
      uid: st.uid,
      gid: st.gid,
      size: st.isDirectory() ? 0 : st.size,
      mtimeMs: st.mtimeMs,
      nlink: st.isDirectory() ? 0 : st.nlink,
      xattrs,
      ...(st.isFile() ? { content: createHash("sha256").update(readFileSync(path)).digest("hex") } : {}),
      ...(st.isSymbolicLink() ? { target: readlinkSync(path) } : {}),
    };
    if (st.isDirectory()) {
      for (const name of readdirSync(path).sort()) {
        if (skip && join(path, name) === skip) continue;
        visit(join(path, name), `${rel}/${name}`);
      }
    }
  };
  visit(root, ".");
  return out;
}

describe.skipIf(!isRoot)("unpackLayer refuses hostile layers before touching anything outside", () => {
  let top: string;
  let dest: string;
  let sentinel: string;
  let before: Record<string, NodeState>;

  beforeEach(() => {
    top = mkdtempSync(join(tmpdir(), "slipway-unpack-"));
    dest = join(top, "dest");
    sentinel = join(top, "sentinel");
    mkdirSync(dest);
    mkdirSync(join(sentinel, "dir"), { recursive: true, mode: 0o755 });
    writeFileSync(join(sentinel, "file"), "precious\n", { mode: 0o644 });
    writeFileSync(join(sentinel, "dir", "inner"), "inner\n", { mode: 0o600 });
    symlinkSync("file", join(sentinel, "link"));
    // Everything under `top` except the destination: the sentinel, and `top` itself (no new siblings may appear).
    before = treeState(top, dest);
  });
  afterEach(() => {
    rmSync(top, { recursive: true, force: true });
  });

  /** Empties the destination in place (recreating it would change `top`'s mtime, which the sentinel watches). */
  function emptyDest(): void {
    for (const name of readdirSync(dest)) rmSync(join(dest, name), { recursive: true, force: true });
  }
  async function unpack(entries: TarEntry[], options: Partial<UnpackOptions> = {}): Promise<unknown> {
    emptyDest();
    const tar = await tarOf(entries);
    return unpackLayer(Readable.from([tar]), dest, { compression: "none", label: "test layer", ...options });
  }
  async function expectRefused(entries: TarEntry[], message: RegExp, options: Partial<UnpackOptions> = {}): Promise<void> {
    const err = await unpack(entries, options).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err, "the layer must be refused").toBeInstanceOf(InvalidError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain("test layer");
    expectSentinelUnchanged();
  }
  function expectSentinelUnchanged(): void {
    expect(treeState(top, dest)).toEqual(before);
  }

  it("refuses entries with '..'", async () => {
    await expectRefused([{ name: "../sentinel/pwned", content: "x" }], /"\.\.\/sentinel\/pwned" contains '\.\.'/);
    await expectRefused([{ name: "a/", type: "directory" }, { name: "a/../../sentinel/file", content: "x" }], /contains '\.\.'/);
    await expectRefused([{ name: "..", type: "directory" }], /contains '\.\.'/);
  });

  it("refuses absolute paths", async () => {
    await expectRefused([{ name: `${sentinel}/pwned`, content: "x" }], /has an absolute path/);
    await expectRefused([{ name: `${sentinel}/file`, content: "x" }], /has an absolute path/);
  });

  it("refuses writes through a symlink that leads outside", async () => {
    for (const target of [sentinel, "../sentinel", `../../../../../../..${sentinel}`]) {
      await expectRefused([{ name: "evil", type: "symlink", linkname: target }, { name: "evil/pwned", content: "x" }], /written through symlink "evil"/);
    }
    const through: TarEntry[] = [
      { name: "evil/dir/", type: "directory" },
      { name: "evil/l", type: "symlink", linkname: "x" },
      { name: "evil/fifo", type: "fifo" },
      { name: "evil/.wh.file", content: "" },
      { name: "evil/.wh..wh..opq", content: "" },
      { name: "evil/h", type: "link", linkname: "f" },
      { name: "evil/dir/deeper/file", content: "x" },
    ];
    for (const entry of through) {
      await expectRefused([{ name: "f", content: "f" }, { name: "evil", type: "symlink", linkname: sentinel }, entry], /written through symlink "evil"/);
    }
  });

  it("replaces a symlink by a file of the same name instead of writing through it", async () => {
    await unpack([
      { name: "evil", type: "symlink", linkname: join(sentinel, "file") },
      { name: "evil", content: "replaced" },
    ]);
    expectSentinelUnchanged();
    expect(lstatSync(join(dest, "evil")).isFile()).toBe(true);
    expect(readFileSync(join(dest, "evil"), "utf8")).toBe("replaced");
  });

  it("refuses hardlinks to anything but a file earlier in the layer", async () => {
    await expectRefused([{ name: "h", type: "link", linkname: "../../etc/passwd" }], /hardlink "h" target "\.\.\/\.\.\/etc\/passwd" contains '\.\.'/);
    await expectRefused([{ name: "h", type: "link", linkname: "../sentinel/file" }], /contains '\.\.'/);
    await expectRefused([{ name: "h", type: "link", linkname: "/etc/passwd" }], /hardlink "h" target "\/etc\/passwd" has an absolute path/);
    await expectRefused([{ name: "h", type: "link", linkname: join(sentinel, "file") }], /absolute path/);
    await expectRefused(
      [
        { name: "s", type: "symlink", linkname: join(sentinel, "file") },
        { name: "h", type: "link", linkname: "s" },
      ],
      /not a regular file earlier in this layer/,
    );
    await expectRefused(
      [
        { name: "evil", type: "symlink", linkname: sentinel },
        { name: "h", type: "link", linkname: "evil/file" },
      ],
      /written through symlink "evil"/,
    );
    await expectRefused([{ name: "h", type: "link", linkname: "h" }], /points at itself/);
    await expectRefused([{ name: "h", type: "link", linkname: "missing/file" }], /"missing", which is not earlier in this layer/);
    // The failed hardlink to a missing directory created nothing on its way.
    expect(readdirSync(dest)).toEqual([]);
  });

  it("refuses device nodes", async () => {
    await expectRefused([{ name: "null", type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 }], /"null" is a character-device/);
    await expectRefused([{ name: "sda", type: "block-device", devmajor: 8, devminor: 0, mode: 0o660 }], /"sda" is a block-device/);
  });

  it("refuses whiteouts that name '..', '.' or nothing", async () => {
    await expectRefused([{ name: ".wh..", content: "" }], /whiteout "\.wh\.\." names an invalid path/);
    await expectRefused([{ name: "a/", type: "directory" }, { name: "a/.wh..", content: "" }], /whiteout "a\/\.wh\.\." names an invalid path/);
    await expectRefused([{ name: ".wh.", content: "" }], /names an invalid path/);
  });

  it("never applies a directory's mode or opaque marker to what later replaced it", async () => {
    await unpack([
      { name: "a/", type: "directory", mode: 0o700, uid: 4321, gid: 4321 },
      { name: "a/.wh..wh..opq", content: "" },
      { name: "a", type: "symlink", linkname: sentinel },
      { name: "b/", type: "directory", mode: 0o700 },
      { name: "b/c/", type: "directory", mode: 0o711, uid: 99 },
      { name: "b/c/.wh..wh..opq", content: "" },
      { name: "b", type: "symlink", linkname: "../sentinel" },
    ]);
    expectSentinelUnchanged();
    expect(readlinkSync(join(dest, "a"))).toBe(sentinel);
    expect(readlinkSync(join(dest, "b"))).toBe("../sentinel");
  });

  it("refuses a gzip bomb once the uncompressed size passes maxBytes", async () => {
    const maxBytes = 8 << 20;
    const zeros = Buffer.alloc(1 << 20);
    const p = pack();
    const gz = p.pipe(createGzip({ level: 1 }));
    const chunks: Buffer[] = [];
    gz.on("data", (c: Buffer) => chunks.push(c));
    const done = new Promise<void>((resolve) => gz.on("end", () => resolve()));
    const sink = p.entry({ name: "zeros", size: 256 << 20, mtime: new Date(0) });
    for (let i = 0; i < 255; i++) if (!sink.write(zeros)) await new Promise<void>((resolve) => sink.once("drain", () => resolve()));
    sink.end(zeros);
    p.finalize();
    await done;
    const bomb = Buffer.concat(chunks);
    expect(bomb.length).toBeLessThan(2 << 20);
    emptyDest();
    const err = await unpackLayer(Readable.from([bomb]), dest, { compression: "gzip", maxBytes, label: "test layer" }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InvalidError);
    expect((err as Error).message).toMatch(/uncompressed size passes the limit of 8388608 bytes/);
    expectSentinelUnchanged();
    const written = lstatSync(join(dest, "zeros"), { throwIfNoEntry: false });
    expect(written?.size ?? 0).toBeLessThanOrEqual(maxBytes);
  });

  it("refuses a gzip or zstd bomb by its compression ratio once past 256 MiB, long before maxBytes", async () => {
    for (const compression of ["gzip", "zstd"] as const) {
      const bomb = zerosLayer(compression, 2 * 1024 ** 3);
      emptyDest();
      const err = await unpackLayer(Readable.from(chunksOf(bomb)), dest, { compression, maxBytes: 1 << 30, label: "test layer" }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, compression).toBeInstanceOf(InvalidError);
      expect((err as Error).message).toMatch(
        /^test layer: refused as a decompression bomb: 256\.\d MiB unpacked from \d+\.\d MiB compressed so far \([\d.]+:1\), over the limit of 100:1 for layers past 256\.0 MiB/,
      );
      expect((err as InvalidError).details).toMatchObject({ maxRatio: 100 });
      expect((err as InvalidError).details.ratio as number).toBeGreaterThan(100);
      expectSentinelUnchanged();
      // Stopped where the ratio was first checked past the floor, not after the 2 GiB.
      expect(lstatSync(join(dest, "zeros")).size).toBeLessThanOrEqual(257 << 20);
    }
  });

  it("unpacks a layer of zeros below the ratio floor, and a larger one under a raised maxRatio", async () => {
    emptyDest();
    await unpackLayer(Readable.from(chunksOf(zerosLayer("gzip", 64 << 20))), dest, { compression: "gzip", label: "test layer" });
    expect(statSync(join(dest, "zeros")).size).toBe(64 << 20);
    emptyDest();
    await unpackLayer(Readable.from(chunksOf(zerosLayer("zstd", 64 << 20))), dest, { compression: "zstd", label: "test layer" });
    expect(statSync(join(dest, "zeros")).size).toBe(64 << 20);
    emptyDest();
    await unpackLayer(Readable.from(chunksOf(zerosLayer("gzip", 272 << 20))), dest, { compression: "gzip", maxRatio: 2000, label: "test layer" });
    expect(statSync(join(dest, "zeros")).size).toBe(272 << 20);
    expectSentinelUnchanged();
  });

  it("closes a large file's descriptor once when the layer fails mid-file: a descriptor opened next survives", async () => {
    // A refused layer used to close the file twice: once itself, once later from the write stream's destroy, which
    // then closed whatever the process had opened under the same number meanwhile (a pipe of spawnSync, an SQLite file).
    const big = Buffer.alloc(32 << 20, 1);
    const tar = await tarOf([{ name: "big", content: big }]);
    const slices = Array.from({ length: tar.length >> 16 }, (_, i) => tar.subarray(i << 16, (i + 1) << 16));
    for (let round = 0; round < 5; round++) {
      emptyDest();
      const err = await unpackLayer(Readable.from(slices), dest, { compression: "none", maxBytes: 8 << 20, label: "test layer" }).then(
        () => null,
        (e: unknown) => e,
      );
      expect((err as Error).message).toMatch(/uncompressed size passes the limit/);
      const opened = Array.from({ length: 8 }, () => openSync(join(dest, "scratch"), "w"));
      await new Promise((resolve) => setTimeout(resolve, 100));
      for (const fd of opened) {
        expect(() => fstatSync(fd), `descriptor ${fd} opened after the failure was closed behind our back`).not.toThrow();
        closeSync(fd);
      }
    }
    expectSentinelUnchanged();
  });

  it("refuses a layer with too many entries", async () => {
    const entries = Array.from({ length: 30 }, (_, i) => ({ name: `f${i}`, content: "x" }));
    await expectRefused(entries, /more than 20 entries/, { maxEntries: 20 });
  });

  it("refuses a layer whose digest or diffID differs from the expected one", async () => {
    const tar = await tarOf([{ name: "f", content: "x" }]);
    const gz = gzipSync(tar);
    const wrong = sha256("something else");
    await expect(unpackLayer(Readable.from([gz]), dest, { compression: "gzip", expectDigest: wrong, label: "L" })).rejects.toThrow(
      `L: content digest is ${sha256(gz)}, expected ${wrong}`,
    );
    emptyDest();
    await expect(unpackLayer(Readable.from([gz]), dest, { compression: "gzip", expectDiffId: wrong, label: "L" })).rejects.toThrow(
      `L: diffID is ${sha256(tar)}, expected ${wrong}`,
    );
    expectSentinelUnchanged();
  });
});

describe.skipIf(!isRoot)("unpackLayer writes what a layer says", () => {
  let dest: string;
  beforeEach(() => {
    dest = mkdtempSync(join(tmpdir(), "slipway-unpack-ok-"));
  });
  afterEach(() => {
    rmSync(dest, { recursive: true, force: true });
  });

  it("turns whiteouts into overlay whiteouts and opaque markers into trusted.overlay.opaque", async () => {
    const tar = await tarOf([
      { name: "etc/", type: "directory" },
      { name: "etc/.wh.motd", content: "" },
      { name: "var/", type: "directory" },
      { name: "var/cache/", type: "directory" },
      { name: "var/cache/.wh..wh..opq", content: "" },
      { name: "var/cache/kept", content: "kept" },
      { name: ".wh..wh.plnk", type: "directory" },
    ]);
    await unpackLayer(Readable.from([tar]), dest, { compression: "none" });
    const wh = lstatSync(join(dest, "etc", "motd"));
    expect(wh.isCharacterDevice()).toBe(true);
    expect(wh.rdev).toBe(0);
    expect(readdirSync(join(dest, "etc"))).toEqual(["motd"]);
    expect(readdirSync(join(dest, "var", "cache"))).toEqual(["kept"]);
    expect(execFileSync("getfattr", ["-h", "--absolute-names", "--only-values", "-n", "trusted.overlay.opaque", join(dest, "var", "cache")], { encoding: "utf8" })).toBe("y");
    // aufs bookkeeping entries are dropped.
    expect(readdirSync(dest).sort()).toEqual(["etc", "var"]);
  });

  it("links hardlinks to the file earlier in the layer", async () => {
    const tar = await tarOf([
      { name: "a/", type: "directory" },
      { name: "a/f", content: "shared", mode: 0o755 },
      { name: "b/g", type: "link", linkname: "a/f" },
    ]);
    await unpackLayer(Readable.from([tar]), dest, { compression: "none" });
    const f = statSync(join(dest, "a", "f"));
    const g = statSync(join(dest, "b", "g"));
    expect(g.ino).toBe(f.ino);
    expect(f.nlink).toBe(2);
    expect(readFileSync(join(dest, "b", "g"), "utf8")).toBe("shared");
  });

  it("keeps modes, owners and file times", async () => {
    const mtime = new Date("2024-05-06T07:08:09Z");
    const tar = await tarOf([
      { name: "bin/", type: "directory", mode: 0o751, uid: 0, gid: 0 },
      { name: "bin/su", content: "#!/bin/sh\n", mode: 0o4755, uid: 0, gid: 0, mtime },
      { name: "home/", type: "directory" },
      { name: "home/u/", type: "directory", mode: 0o700, uid: 1000, gid: 1000 },
      { name: "home/u/secret", content: "s", mode: 0o600, uid: 1000, gid: 100 },
      { name: "home/u/link", type: "symlink", linkname: "secret", uid: 1000, gid: 100 },
      { name: "home/u/pipe", type: "fifo", mode: 0o620, uid: 7, gid: 8 },
    ]);
    const result = await unpackLayer(Readable.from([tar]), dest, { compression: "none" });
    expect(result).toMatchObject({ diffId: sha256(tar), digest: sha256(tar), size: tar.length, entries: 7 });
    const su = statSync(join(dest, "bin", "su"));
    expect(su.mode & 0o7777).toBe(0o4755);
    expect(su.mtime.getTime()).toBe(mtime.getTime());
    expect(statSync(join(dest, "bin")).mode & 0o7777).toBe(0o751);
    const home = statSync(join(dest, "home", "u"));
    expect([home.mode & 0o7777, home.uid, home.gid]).toEqual([0o700, 1000, 1000]);
    const secret = statSync(join(dest, "home", "u", "secret"));
    expect([secret.mode & 0o7777, secret.uid, secret.gid]).toEqual([0o600, 1000, 100]);
    const link = lstatSync(join(dest, "home", "u", "link"));
    expect([link.isSymbolicLink(), link.uid, link.gid]).toEqual([true, 1000, 100]);
    const pipe = lstatSync(join(dest, "home", "u", "pipe"));
    expect([pipe.isFIFO(), pipe.mode & 0o7777, pipe.uid, pipe.gid]).toEqual([true, 0o620, 7, 8]);
  });

  it("unpacks gzip, zstd and uncompressed layers to the same files and diffID", async () => {
    const tar = await tarOf([{ name: "hello", content: "hello\n" }]);
    const zst = execFileSync("zstd", ["-q", "-c"], { input: tar });
    for (const [compression, bytes] of [["none", tar], ["gzip", gzipSync(tar)], ["zstd", zst]] as const) {
      const dir = join(dest, compression);
      mkdirSync(dir);
      const result = await unpackLayer(Readable.from([bytes]), dir, { compression, expectDigest: sha256(bytes), expectDiffId: sha256(tar) });
      expect(result.diffId).toBe(sha256(tar));
      expect(readFileSync(join(dir, "hello"), "utf8")).toBe("hello\n");
    }
  });
});

describe.skipIf(!isRoot)("unpackLayer keeps a reserve of free space (root: mounts a tmpfs)", () => {
  // A tmpfs of its own: its free space is exact, and nothing else writes there.
  let top: string;
  let dest: string;
  beforeEach(() => {
    top = mkdtempSync(join(tmpdir(), "slipway-unpack-space-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=128m", "tmpfs", top]);
    dest = join(top, "dest");
    mkdirSync(dest);
  });
  afterEach(() => {
    execFileSync("umount", [top]);
    rmSync(top, { recursive: true, force: true });
  });

  async function unpackZeros(size: number, options: Partial<UnpackOptions> = {}): Promise<unknown> {
    for (const name of readdirSync(dest)) rmSync(join(dest, name), { recursive: true, force: true });
    return unpackLayer(Readable.from(chunksOf(zerosLayer("gzip", size))), dest, { compression: "gzip", label: "test layer", ...options }).then(
      () => null,
      (e: unknown) => e,
    );
  }

  it("refuses a layer before it would leave less than the reserve free, and names the free space", async () => {
    // The default reserve (1 GiB) is more than this filesystem: refused before anything is written.
    let err = await unpackZeros(16 << 20);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(
      new RegExp(`^test layer: refused after 0\\.\\d MiB unpacked: the filesystem of ${dest} has 128\\.0 MiB free, and unpacking keeps 1024\\.0 MiB of it free`),
    );
    expect(statSync(join(dest, "zeros"), { throwIfNoEntry: false })?.size ?? 0).toBe(0);
    // 128 MiB free covers a 16 MiB reserve and the next 64 MiB at the start, but no longer once 64 MiB are written.
    err = await unpackZeros(112 << 20, { reserveBytes: 16 << 20 });
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/^test layer: refused after 64\.\d MiB unpacked: .* has 6\d\.\d MiB free, and unpacking keeps 16\.0 MiB of it free/);
    expect(statSync(join(dest, "zeros")).size).toBeLessThanOrEqual(65 << 20);
  });

  it("unpacks a layer that leaves the reserve free", async () => {
    expect(await unpackZeros(48 << 20, { reserveBytes: 16 << 20 })).toBeNull();
    expect(statSync(join(dest, "zeros")).size).toBe(48 << 20);
  });
});
