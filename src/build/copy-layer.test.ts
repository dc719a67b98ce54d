import { chmod, mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fileTreeSchema, type FileTree } from "../core/schemas.js";
import { sha256, type Digest } from "../oci/digest.js";
import { entriesFromDirectory, type LayerEntry } from "../oci/layer-writer.js";
import { copyLayerEntries } from "./copy-layer.js";
import { tempDirs } from "../../test/helpers/temp-dirs.js";

const temp = tempDirs();

const shape = (entries: LayerEntry[]) =>
  entries.map((e) => ("mode" in e ? `${e.type} ${e.path} ${e.mode.toString(8)}${e.type === "symlink" ? ` -> ${e.target}` : ""}${e.type === "file" ? ` ${e.size}` : ""}` : `${e.type} ${e.path}`));

describe("COPY layers written from the file tree", () => {
  it("list the same entries, in the same order, as a walk of the copied directory", async () => {
    const blobs = await temp("slipway-copy-blobs-");
    const contents: Record<string, string> = { "a/b": "inside", "a-c": "dash sorts before slash", "z/deep/er/f": "deep", "x.sh": "#!/bin/sh\n" };
    const pathOf = new Map<Digest, string>();
    const tree: FileTree = { entries: [] };
    for (const [path, text] of Object.entries(contents)) {
      const digest = sha256(Buffer.from(text));
      pathOf.set(digest, join(blobs, digest.slice(7)));
      await writeFile(pathOf.get(digest)!, text);
      tree.entries.push({ type: "file", path, mode: path === "x.sh" ? 0o755 : 0o644, size: text.length, digest });
    }
    tree.entries.push({ type: "dir", path: "a", mode: 0o750 }, { type: "symlink", path: "link", mode: 0o777, target: "a/b" });

    // The same tree, copied into /srv/app by hand (z/ and z/deep/er are implied, so 0755).
    const root = await temp("slipway-copy-dir-");
    const app = join(root, "srv/app");
    await mkdir(join(app, "a"), { recursive: true, mode: 0o755 });
    await chmod(join(app, "a"), 0o750);
    await mkdir(join(app, "z/deep/er"), { recursive: true });
    for (const [path, text] of Object.entries(contents)) await writeFile(join(app, path), text);
    await chmod(join(app, "x.sh"), 0o755);
    await symlink("a/b", join(app, "link"));
    const walked: LayerEntry[] = [];
    for await (const e of entriesFromDirectory(root)) walked.push(e);

    const fromTree = copyLayerEntries(tree, "/srv/app", (d) => pathOf.get(d)!);
    expect(shape(fromTree)).toEqual(shape(walked));
    expect(fromTree.every((e) => !("uid" in e) || (e.uid === 0 && e.gid === 0))).toBe(true);
  });

  it("refuse paths that leave the destination, writes through the tree's own symlinks and missing content", () => {
    const digest = sha256(Buffer.from("x"));
    const file = (path: string) => ({ type: "file" as const, path, mode: 0o644, size: 1, digest });
    expect(() => copyLayerEntries({ entries: [file("../x")] }, "/app", () => "/nonexistent")).toThrow(/"\.\.\/x" leaves the destination/);
    expect(() => copyLayerEntries({ entries: [file("x")] }, "../app", () => "/nonexistent")).toThrow(/destination "\.\.\/app" leaves/);
    expect(() =>
      copyLayerEntries({ entries: [file("l/passwd"), { type: "symlink", path: "l", mode: 0o777, target: "/etc" }] }, "/", () => "/nonexistent"),
    ).toThrow('COPY: "l/passwd" would be written through the symlink "l"');
    expect(() => copyLayerEntries({ entries: [file("x")] }, "/app", () => "/nonexistent")).toThrow(/content of x .* was never uploaded/);
  });

  it("name a file that a path would be written through as a file", () => {
    const digest = sha256(Buffer.from("x"));
    expect(() =>
      copyLayerEntries({ entries: [{ type: "file", path: "f", mode: 0o644, size: 1, digest }, { type: "file", path: "f/child", mode: 0o644, size: 1, digest }] }, "/", () => "/nonexistent"),
    ).toThrow('COPY: "f/child" would be written through the file "f"');
  });

  it("are refused by the tree schema for NUL bytes, overlong names and modes outside 0-07777", () => {
    const digest = sha256(Buffer.from("x"));
    const bad = [
      { type: "file", path: "a\0b", mode: 0o644, size: 1, digest },
      { type: "file", path: "x".repeat(256), mode: 0o644, size: 1, digest },
      { type: "file", path: "ok", mode: -1, size: 1, digest },
      { type: "dir", path: "d", mode: 0o177777 },
      { type: "symlink", path: "l", mode: 0o777, target: "t\0" },
    ];
    for (const entry of bad) expect(fileTreeSchema.safeParse({ entries: [entry] }).success, JSON.stringify(entry)).toBe(false);
    expect(fileTreeSchema.safeParse({ entries: [{ type: "file", path: "ok", mode: 0o4755, size: 1, digest }] }).success).toBe(true);
  });
});
