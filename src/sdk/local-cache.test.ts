import { existsSync, statSync } from "node:fs";
import { mkdir, readdir, readFile, stat, symlink, unlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { sha256 } from "../oci/digest.js";
import { bundleHandler, fileTree } from "./bundle.js";
import { LocalCache } from "./local-cache.js";
import { loadAppFile } from "./load-app.js";
import { tempDirs } from "../../test/helpers/temp-dirs.js";

const temp = tempDirs();

async function workspace(): Promise<{ dir: string; cacheDir: string }> {
  // The cache lives apart from the app: making it must not count as a change beside the app's files.
  const root = await temp("slipway-local-cache-");
  return { dir: root, cacheDir: join(await temp("slipway-local-cache-dir-"), "slipway") };
}

const cacheFor = (dir: string, cacheDir: string) => LocalCache.open(join(dir, "app.ts"), { dir: cacheDir });

/** One run that hashes `file` and keeps what it learned. */
function hashAndSave(dir: string, cacheDir: string, file: string): LocalCache {
  const cache = cacheFor(dir, cacheDir);
  cache.digest(file);
  cache.save();
  return cache;
}

/** /dev/shm is another filesystem than the temporary directory on most machines; the test needs one. */
const otherFs = existsSync("/dev/shm") && statSync("/dev/shm").dev !== statSync(tmpdir()).dev ? "/dev/shm" : null;
if (!otherFs) console.log("skipping the other-filesystem test: /dev/shm is missing or on the same filesystem as the temporary directory");

let clockDir: Promise<string> | undefined;

/** Waits until the filesystem's clock has moved past the last change under `dir`, as it has for any edit made before a deploy. */
async function settle(dir: string): Promise<void> {
  const newest = async (): Promise<bigint> => {
    let max = 0n;
    for (const name of await readdir(dir)) {
      const st = await stat(join(dir, name), { bigint: true });
      if (st.ctimeNs > max) max = st.ctimeNs;
    }
    return max;
  };
  const target = await newest();
  clockDir ??= temp("slipway-clock-");
  const probe = join(await clockDir, "probe");
  for (;;) {
    await writeFile(probe, "");
    if ((await stat(probe, { bigint: true })).ctimeNs > target) return;
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe("the client's local cache", () => {
  it("reuse a file's digest while its signature is unchanged, and hash it again when it is not", async () => {
    const { dir, cacheDir } = await workspace();
    const file = join(dir, "a.txt");
    await writeFile(file, "one");
    await settle(dir);
    const first = cacheFor(dir, cacheDir);
    expect(first.digest(file).digest).toBe(sha256(Buffer.from("one")));
    first.save();

    const second = cacheFor(dir, cacheDir);
    expect(second.digest(file).digest).toBe(sha256(Buffer.from("one")));
    expect(second.counts).toEqual({ hashed: 0, reused: 1 });
    second.save();

    // Same size, mtime put back: only the ctime tells, and content decides.
    const { mtime } = await stat(file);
    await writeFile(file, "two");
    await utimes(file, mtime, mtime);
    await settle(dir);
    const third = cacheFor(dir, cacheDir);
    expect(third.digest(file).digest).toBe(sha256(Buffer.from("two")));
    expect(third.counts).toEqual({ hashed: 1, reused: 0 });
  });

  it("do not trust the signature of a file changed after the run began (it may change again in the same tick)", async () => {
    const { dir, cacheDir } = await workspace();
    const file = join(dir, "a.txt");
    const first = cacheFor(dir, cacheDir);
    first.began();
    await writeFile(file, "one");
    first.digest(file);
    first.save();
    expect(hashAndSave(dir, cacheDir, file).counts).toEqual({ hashed: 1, reused: 0 });
  });

  it.skipIf(!otherFs)("always hash files on another filesystem than the cache's (its clock cannot judge them)", async () => {
    const { dir } = await workspace();
    const cacheDir = await temp("slipway-local-cache-", otherFs!);
    const file = join(dir, "a.txt");
    await writeFile(file, "one");
    await settle(dir);
    hashAndSave(dir, cacheDir, file);
    expect(hashAndSave(dir, cacheDir, file).counts).toEqual({ hashed: 1, reused: 0 });
  });

  it("start over from an index of the wrong shape", async () => {
    const { dir, cacheDir } = await workspace();
    await writeFile(join(dir, "h.ts"), "export default () => 1;\n");
    await settle(dir);
    const c1 = cacheFor(dir, cacheDir);
    await bundleHandler(join(dir, "h.ts"), c1);
    c1.save();
    const index = join(cacheDir, (await readdir(cacheDir)).find((n) => n.endsWith(".json"))!);
    const parsed = JSON.parse(await readFile(index, "utf8"));
    for (const b of Object.values(parsed.bundles) as Array<Record<string, unknown>>) b.probes = null;
    await writeFile(index, JSON.stringify(parsed));
    expect((await bundleHandler(join(dir, "h.ts"), cacheFor(dir, cacheDir))).read().toString()).toContain("=> 1");
  });

  it("survive a corrupt index by starting over", async () => {
    const { dir, cacheDir } = await workspace();
    const file = join(dir, "a.txt");
    await writeFile(file, "one");
    await settle(dir);
    hashAndSave(dir, cacheDir, file);
    const index = (await readdir(cacheDir)).find((n) => n.endsWith(".json"))!;
    await writeFile(join(cacheDir, index), "{ not json");
    const second = cacheFor(dir, cacheDir);
    expect(second.digest(file).digest).toBe(sha256(Buffer.from("one")));
    expect(second.counts.hashed).toBe(1);
  });

  it("give COPY trees the same digests with or without the cache", async () => {
    const { dir, cacheDir } = await workspace();
    await writeFile(join(dir, "x.txt"), "x");
    const plain = await fileTree(dir, ["x.txt"], "/app/");
    await settle(dir);
    const cache = cacheFor(dir, cacheDir);
    await fileTree(dir, ["x.txt"], "/app/", cache);
    cache.save();
    const again = cacheFor(dir, cacheDir);
    const cached = await fileTree(dir, ["x.txt"], "/app/", again);
    expect(cached.tree).toEqual(plain.tree);
    expect(again.counts.reused).toBe(1);
    expect(cached.blobs[0]!.read().toString()).toBe("x");
  });

  it("refuse to upload a file that changed after it was hashed", async () => {
    const { dir } = await workspace();
    await writeFile(join(dir, "x.txt"), "x");
    const t = await fileTree(dir, ["x.txt"], "/app/");
    await writeFile(join(dir, "x.txt"), "y");
    expect(() => t.blobs[0]!.read()).toThrow(/x\.txt changed while the deploy was being prepared/);
  });
});

describe("bundles from the local cache", () => {
  it("bundle and hash as usual when the cache cannot be written", async () => {
    const { dir } = await workspace();
    const blocker = join(dir, "not-a-dir");
    await writeFile(blocker, "a file where the cache directory would go");
    await writeFile(join(dir, "h.ts"), "export default () => 42;\n");
    const cache = LocalCache.open(join(dir, "app.ts"), { dir: join(blocker, "slipway") });
    expect((await bundleHandler(join(dir, "h.ts"), cache)).read().toString()).toContain("42");
    expect(cache.digest(join(dir, "h.ts")).digest).toBe(sha256(Buffer.from("export default () => 42;\n")));
    cache.save();
    expect(cache.report()[0]).toMatch(/client cache .*: cannot be written \(.*\): every file is hashed and every bundle made/);
  });

  it("reuse a handler bundle until a file it imports changes", async () => {
    const { dir, cacheDir } = await workspace();
    await writeFile(join(dir, "lib.ts"), "export const n = 1;\n");
    await writeFile(join(dir, "h.ts"), `import { n } from "./lib";\nexport default () => n;\n`);
    await rebundlesAfter(dir, cacheDir, () => writeFile(join(dir, "lib.ts"), "export const n = 2;\n"), "n = 1", "n = 2");
  });

  it("say, for --explain, which bundles were reused and why one was made again", async () => {
    const { dir, cacheDir } = await workspace();
    await writeFile(join(dir, "lib.ts"), "export const n = 1;\n");
    await writeFile(join(dir, "h.ts"), `import { n } from "./lib";\nexport default () => n;\n`);
    await settle(dir);
    const c1 = cacheFor(dir, cacheDir);
    await bundleHandler(join(dir, "h.ts"), c1);
    c1.save();
    expect(c1.report().join("\n")).toMatch(/handler .*h\.ts: bundled again: not bundled before/);
    const c2 = cacheFor(dir, cacheDir);
    await bundleHandler(join(dir, "h.ts"), c2);
    c2.save();
    expect(c2.report()).toEqual([expect.stringMatching(/2 file\(s\) known by signature, 0 read and hashed/), expect.stringMatching(/h\.ts: bundle reused/)]);
    await writeFile(join(dir, "lib.ts"), "export const n = 2;\n");
    await settle(dir);
    const c3 = cacheFor(dir, cacheDir);
    await bundleHandler(join(dir, "h.ts"), c3);
    expect(c3.report().join("\n")).toContain(`bundled again: ${join(dir, "lib.ts")} changed`);
  });

  it("bundle again when a new file changes how an import resolves", async () => {
    const { dir, cacheDir } = await workspace();
    await writeFile(join(dir, "lib.js"), "export const n = 'from js';\n");
    await writeFile(join(dir, "h.ts"), `import { n } from "./lib";\nexport default () => n;\n`);
    await settle(dir);
    const c1 = cacheFor(dir, cacheDir);
    expect((await bundleHandler(join(dir, "h.ts"), c1)).read().toString()).toContain("from js");
    c1.save();
    // esbuild prefers .ts to .js: no input changed, but the import now means another file.
    await writeFile(join(dir, "lib.ts"), "export const n = 'from ts';\n");
    await settle(dir);
    expect((await bundleHandler(join(dir, "h.ts"), cacheFor(dir, cacheDir))).read().toString()).toContain("from ts");
  });

  it("bundle again when the tsconfig above the handler changes", async () => {
    const { dir, cacheDir } = await workspace();
    await writeFile(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { paths: { "@lib": ["./a.ts"] } } }));
    await writeFile(join(dir, "a.ts"), "export const n = 'a';\n");
    await writeFile(join(dir, "b.ts"), "export const n = 'b';\n");
    await writeFile(join(dir, "h.ts"), `import { n } from "@lib";\nexport default () => n;\n`);
    await settle(dir);
    const c1 = cacheFor(dir, cacheDir);
    expect((await bundleHandler(join(dir, "h.ts"), c1)).read().toString()).toContain('n = "a"');
    c1.save();
    await writeFile(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { paths: { "@lib": ["./b.ts"] } } }));
    await settle(dir);
    expect((await bundleHandler(join(dir, "h.ts"), cacheFor(dir, cacheDir))).read().toString()).toContain('n = "b"');
  });

  /** Bundles h.ts with the cache, applies `change`, and expects the next bundle to contain `expected`. */
  async function rebundlesAfter(dir: string, cacheDir: string, change: () => Promise<void>, before: string, after: string): Promise<void> {
    await settle(dir);
    const c1 = cacheFor(dir, cacheDir);
    expect((await bundleHandler(join(dir, "h.ts"), c1)).read().toString()).toContain(before);
    c1.save();
    const c2 = cacheFor(dir, cacheDir);
    await bundleHandler(join(dir, "h.ts"), c2);
    c2.save();
    expect(c2.counts.hashed).toBe(0);
    expect(c2.report().join("\n")).toMatch(/h\.ts: bundle reused/);
    await change();
    await settle(dir);
    expect((await bundleHandler(join(dir, "h.ts"), cacheFor(dir, cacheDir))).read().toString()).toContain(after);
  }

  it("bundle again when a file added higher up takes over an import (./lib/index.js, then ./lib.js)", async () => {
    const { dir, cacheDir } = await workspace();
    await mkdir(join(dir, "sub/lib"), { recursive: true });
    await writeFile(join(dir, "sub/lib/index.js"), "export const tag = 'index';\n");
    await writeFile(join(dir, "h.ts"), `import { tag } from "./sub/lib";\nexport default () => tag;\n`);
    await rebundlesAfter(dir, cacheDir, () => writeFile(join(dir, "sub/lib.js"), "export const tag = 'file';\n"), '"index"', '"file"');
  });

  it("bundle again when a tsconfig it extends changes", async () => {
    const { dir, cacheDir } = await workspace();
    await mkdir(join(dir, "cfg"));
    await writeFile(join(dir, "tsconfig.json"), `{ // comments are allowed\n "extends": "./cfg/base.json" }`);
    await writeFile(join(dir, "cfg/base.json"), JSON.stringify({ compilerOptions: { paths: { "@lib": ["../a.ts"] } } }));
    await writeFile(join(dir, "a.ts"), "export const n = 'a';\n");
    await writeFile(join(dir, "b.ts"), "export const n = 'b';\n");
    await writeFile(join(dir, "h.ts"), `import { n } from "@lib";\nexport default () => n;\n`);
    await rebundlesAfter(dir, cacheDir, () => writeFile(join(dir, "cfg/base.json"), JSON.stringify({ compilerOptions: { paths: { "@lib": ["../b.ts"] } } })), 'n = "a"', 'n = "b"');
  });

  it("bundle again when a file appears in a directory a tsconfig path tries first", async () => {
    const { dir, cacheDir } = await workspace();
    await mkdir(join(dir, "over"));
    await mkdir(join(dir, "libA"));
    await writeFile(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { paths: { "@lib/*": ["./over/*", "./libA/*"] } } }));
    await writeFile(join(dir, "libA/thing.ts"), "export const n = 'libA';\n");
    await writeFile(join(dir, "h.ts"), `import { n } from "@lib/thing";\nexport default () => n;\n`);
    await rebundlesAfter(dir, cacheDir, () => writeFile(join(dir, "over/thing.ts"), "export const n = 'over';\n"), '"libA"', '"over"');
  });

  it("bundle again when a symlink an import goes through is pointed elsewhere", async () => {
    const { dir, cacheDir } = await workspace();
    for (const d of ["links", "libA", "libB"]) await mkdir(join(dir, d));
    await writeFile(join(dir, "libA/thing.ts"), "export const n = 'libA';\n");
    await writeFile(join(dir, "libB/thing.ts"), "export const n = 'libB';\n");
    await symlink("../libA/thing.ts", join(dir, "links/thing.ts"));
    await writeFile(join(dir, "h.ts"), `import { n } from "./links/thing";\nexport default () => n;\n`);
    await rebundlesAfter(
      dir,
      cacheDir,
      async () => {
        await unlink(join(dir, "links/thing.ts"));
        await symlink("../libB/thing.ts", join(dir, "links/thing.ts"));
      },
      '"libA"',
      '"libB"',
    );
  });

  it("evaluate a cached app file on every load, so what it reads at load time is read again", async () => {
    const { dir, cacheDir } = await workspace();
    await writeFile(join(dir, "h.ts"), "export default () => 1;\n");
    await writeFile(
      join(dir, "app.ts"),
      `import { App, Image } from "slipway";\nimport { readFileSync } from "node:fs";\n` +
        `export const app = new App(readFileSync(new URL("./name.txt", import.meta.url), "utf8").trim());\n` +
        `app.function("f", { image: Image.scratch(), handler: "./h.ts" });\n`,
    );
    await writeFile(join(dir, "name.txt"), "first");
    await settle(dir);
    const c1 = cacheFor(dir, cacheDir);
    expect((await loadAppFile(join(dir, "app.ts"), c1)).app.name).toBe("first");
    c1.save();
    await writeFile(join(dir, "name.txt"), "second");
    await settle(dir);
    const c2 = cacheFor(dir, cacheDir);
    expect((await loadAppFile(join(dir, "app.ts"), c2)).app.name).toBe("second");
    expect(c2.counts.reused).toBe(1);
  });
});
