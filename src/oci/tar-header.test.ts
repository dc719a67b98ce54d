// The tar encoder writes the bytes tar-stream wrote before it (layers keep their digests), long and non-ASCII names
// and link targets included, and GNU tar reads them back.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pack as tarPack } from "tar-stream";
import { describe, expect, it } from "vitest";
import { packLayer, type LayerEntry } from "./layer-writer.js";
import { encodeTarHeader, type TarHeader } from "./tar-header.js";

/** The tar tar-stream writes for these headers (how layers were written before), contents filled with "x". */
async function tarStreamBytes(headers: TarHeader[]): Promise<Buffer> {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  const read = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const h of headers) {
    // The file-type bit keeps a mode of 0 from being replaced by tar-stream's default, as the old writer did.
    const header = { name: h.name, type: h.type, mode: h.mode | 0o100000, uid: h.uid, gid: h.gid, mtime: new Date(0), size: h.size, linkname: h.linkname };
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (h.type === "file") pack.entry(header, Buffer.alloc(h.size, "x"), done);
      else pack.entry(header, done);
    });
  }
  pack.finalize();
  await read;
  return Buffer.concat(chunks);
}

const long = (n: number, part = "segment") => Array.from({ length: n }, (_, i) => `${part}${i}`).join("/");
const base = { mode: 0o644, uid: 0, gid: 0, size: 0 };
const cases: TarHeader[] = [
  { ...base, name: "a", type: "file", size: 3 },
  { ...base, name: "dir", type: "directory", mode: 0o755 },
  { ...base, name: "dir/", type: "directory", mode: 0o700 },
  { ...base, name: "zero", type: "file", mode: 0 },
  { ...base, name: "setuid", type: "file", mode: 0o4755, size: 512 },
  { ...base, name: "owned", type: "file", uid: 1000, gid: 100, size: 513 },
  { ...base, name: "huge-ids", type: "file", uid: 300_000, gid: 4_000_000_000 },
  { ...base, name: "link", type: "symlink", mode: 0o777, linkname: "../bin/busybox" },
  { ...base, name: "hard", type: "link", linkname: "a" },
  { ...base, name: "pipe", type: "fifo" },
  { ...base, name: "x".repeat(100), type: "file", size: 1 },
  { ...base, name: "x".repeat(101), type: "file", size: 1 },
  { ...base, name: `${"d".repeat(99)}`, type: "directory" },
  { ...base, name: `${"d".repeat(100)}`, type: "directory" },
  { ...base, name: long(20), type: "file", size: 7 },
  { ...base, name: long(20), type: "directory" },
  { ...base, name: long(40), type: "file", size: 7 },
  { ...base, name: `${"p".repeat(160)}/${"n".repeat(50)}`, type: "file" },
  { ...base, name: `${"p".repeat(150)}/${"n".repeat(50)}`, type: "file" },
  { ...base, name: "a//b/./c", type: "file" },
  { ...base, name: "café/naïve.txt", type: "file", size: 2 },
  { ...base, name: "日本語".repeat(30), type: "directory" },
  { ...base, name: "unicode-link", type: "symlink", linkname: "zielordner/übersicht" },
  { ...base, name: "long-link", type: "symlink", linkname: "t".repeat(101) },
  { ...base, name: "long-hard", type: "link", linkname: long(20) },
  { ...base, name: long(20), type: "symlink", linkname: long(30) },
  { ...base, name: "y".repeat(990), type: "file" },
  { ...base, name: "y".repeat(991), type: "file" },
  { ...base, name: "y".repeat(9985), type: "file" },
];

describe("encodeTarHeader", () => {
  it.each(cases.map((c) => [c.name.length > 40 ? `${c.name.slice(0, 40)}… (${c.name.length})` : c.name, c.type, c] as const))(
    "writes tar-stream's bytes for %s (%s)",
    async (_name, _type, header) => {
      const expected = await tarStreamBytes([header]);
      expect(encodeTarHeader(header).equals(expected.subarray(0, encodeTarHeader(header).length))).toBe(true);
    },
  );

  it("packs a whole layer to tar-stream's bytes", async () => {
    const entries: LayerEntry[] = cases.map((c) => {
      const owned = { path: c.name.replace(/\/$/, ""), mode: c.mode, uid: c.uid, gid: c.gid };
      switch (c.type) {
        case "file":
          return { ...owned, type: "file", size: c.size, open: () => Readable.from([Buffer.alloc(c.size, "x")]) };
        case "directory":
          return { ...owned, type: "dir" };
        case "symlink":
          return { ...owned, type: "symlink", target: c.linkname! };
        case "link":
          return { ...owned, type: "hardlink", target: c.linkname! };
        case "fifo":
          return { ...owned, type: "fifo" };
      }
    });
    const layer = packLayer(entries, { compression: "none" });
    const chunks: Buffer[] = [];
    for await (const c of layer.stream) chunks.push(c as Buffer);
    await layer.diffId;
    const expected = await tarStreamBytes(cases.map((c) => ({ ...c, name: c.name.replace(/\/$/, "") })));
    expect(Buffer.concat(chunks).equals(expected)).toBe(true);
  });

  it("writes headers GNU tar reads back: long, non-ASCII and linked names", () => {
    const dir = mkdtempSync(join(tmpdir(), "slipway-tar-header-"));
    try {
      const picked = cases.filter((c) => c.type !== "fifo" && c.type !== "link" && !c.name.includes("//") && c.name !== "dir/");
      const blocks = picked.map((c) => Buffer.concat([encodeTarHeader(c), Buffer.alloc(Math.ceil(c.size / 512) * 512, "x")]));
      writeFileSync(join(dir, "t.tar"), Buffer.concat([...blocks, Buffer.alloc(1024)]));
      const listed = execFileSync("tar", ["-tvf", join(dir, "t.tar")], { encoding: "utf8" }).trim().split("\n");
      expect(listed).toHaveLength(picked.length);
      picked.forEach((c, i) => {
        const line = listed[i]!;
        expect(line, c.name).toContain(c.name);
        expect(line[0], c.name).toBe(c.type === "directory" ? "d" : c.type === "symlink" ? "l" : "-");
        if (c.type === "symlink") expect(line).toContain(`-> ${c.linkname}`);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
