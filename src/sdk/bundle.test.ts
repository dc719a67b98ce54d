import { writeFileSync } from "node:fs";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bundleHandler, fileTree } from "./bundle.js";
import { tempDirs } from "../../test/helpers/temp-dirs.js";

const temp = tempDirs();

describe("handler bundles", () => {
  it("bundle a TypeScript handler into one ESM file", async () => {
    const dir = await temp("slipway-bundle-");
    await writeFile(join(dir, "lib.ts"), "export const twice = (n: number): number => n * 2;\n");
    await writeFile(join(dir, "h.ts"), `import { twice } from "./lib.ts";\nexport default (n: number) => twice(n);\n`);
    const code = (await bundleHandler(join(dir, "h.ts"))).read().toString();
    expect(code).toContain("n * 2");
    expect(code).not.toContain("./lib");
  });

  it("give the same bytes whatever directory the command runs in, naming files relative to the app", async () => {
    const dir = await temp("slipway-bundle-");
    await mkdir(join(dir, "handlers"));
    await writeFile(join(dir, "lib.ts"), "export const twice = (n: number): number => n * 2;\n");
    await writeFile(join(dir, "handlers", "h.ts"), `import { twice } from "../lib.ts";\nexport default (n: number) => twice(n);\n`);
    const from = async (cwd: string) => {
      const before = process.cwd();
      process.chdir(cwd);
      try {
        return (await bundleHandler(join(dir, "handlers", "h.ts"), undefined, dir)).read().toString();
      } finally {
        process.chdir(before);
      }
    };
    const [inApp, atRoot, inHandlers] = [await from(dir), await from("/"), await from(join(dir, "handlers"))];
    expect(atRoot).toBe(inApp);
    expect(inHandlers).toBe(inApp);
    expect(inApp).toContain("// handlers/h.ts");
    expect(inApp).not.toContain(dir.slice(1));
  });

  it("refuse a handler module without a default or `handler` export, naming what it exports", async () => {
    const dir = await temp("slipway-bundle-");
    await writeFile(join(dir, "h.ts"), "export const other = 1;\n");
    await expect(bundleHandler(join(dir, "h.ts"))).rejects.toThrow(/exports no handler.*exports found: other/);
  });
});

describe("file trees for COPY", () => {
  it("name a single file by dest, or keep its name under a dest ending in /", async () => {
    const dir = await temp("slipway-tree-");
    await writeFile(join(dir, "a.txt"), "a");
    expect((await fileTree(dir, ["a.txt"], "/app/b.txt")).tree.entries.map((e) => e.path)).toEqual(["b.txt"]);
    expect((await fileTree(dir, ["a.txt"], "/app/")).dest).toBe("/app/");
    await expect(fileTree(dir, ["../etc"], "/x")).rejects.toThrow(/outside the app directory/);
  });

  it("refuse a file whose name is not UTF-8, naming its bytes, unless an ignore file excludes it", async () => {
    const dir = await temp("slipway-tree-");
    await mkdir(join(dir, "odd"));
    await writeFile(join(dir, "odd", "fine.txt"), "ok");
    const name = Buffer.concat([Buffer.from("bad"), Buffer.from([0xff, 0xfe]), Buffer.from("name")]);
    writeFileSync(Buffer.concat([Buffer.from(join(dir, "odd") + "/"), name]), "x");
    await expect(fileTree(dir, ["odd"], "/odd")).rejects.toThrow(/copy source odd\/bad\\xff\\xfename: the file name is not valid UTF-8/);
    await writeFile(join(dir, ".slipwayignore"), "odd/bad*\n");
    expect((await fileTree(dir, ["odd"], "/odd")).tree.entries.map((e) => e.path)).toEqual(["fine.txt"]);
  });

  it("refuse a source named directly but excluded by the ignore file, and one reached through a symlink out of the app", async () => {
    const dir = await temp("slipway-tree-");
    await writeFile(join(dir, ".slipwayignore"), "secret.env\nprivate/\n");
    await writeFile(join(dir, "secret.env"), "TOKEN=x");
    await mkdir(join(dir, "private"));
    await expect(fileTree(dir, ["secret.env"], "/app/")).rejects.toThrow(/copy source secret.env is excluded by .slipwayignore/);
    await expect(fileTree(dir, ["private"], "/app/")).rejects.toThrow(/copy source private is excluded by .slipwayignore/);
    const outside = await temp("slipway-outside-");
    await writeFile(join(outside, "hostname"), "host");
    await symlink(outside, join(dir, "etc-link"));
    await expect(fileTree(dir, ["etc-link/hostname"], "/app/h")).rejects.toThrow(/copy source etc-link\/hostname is outside the app directory .* \(through a symlink/);
  });
});
