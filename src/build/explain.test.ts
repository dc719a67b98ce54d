import { describe, expect, it } from "vitest";
import type { FileTree } from "../core/schemas.js";
import { sha256, type Digest } from "../oci/digest.js";
import { explainChange, type StepRecord } from "./explain.js";

/** A COPY step's record over a tree of these entries, and a loader that knows the tree. */
function copyRecord(entries: FileTree["entries"], trees: Map<Digest, FileTree>): StepRecord {
  const tree = sha256(JSON.stringify(entries));
  trees.set(tree, { entries });
  return { key: tree, parent: "p", text: "COPY files /f", step: { op: "copy", src: "files", as: undefined, tree, dest: "/f" } as StepRecord["step"], inputs: {} };
}

describe("miss explanations", () => {
  it("show file names and link targets with control characters escaped, and long ones cut", async () => {
    const trees = new Map<Digest, FileTree>();
    const file = (path: string, n: number) => ({ type: "file" as const, path, mode: 0o644, size: 1, digest: sha256(String(n)) });
    const before = copyRecord([file("a\nb", 1), { type: "symlink", path: "l", mode: 0o777, target: "x".repeat(300) }], trees);
    const after = copyRecord([file("a\nb", 2), file("\u001b[31mred", 3), { type: "symlink", path: "l", mode: 0o777, target: "y" }], trees);
    const text = await explainChange(after, before, async (d) => trees.get(d)!);
    expect(text).not.toMatch(/[\u0000-\u001f]/);
    expect(text).toContain('"a\\x0ab" changed');
    expect(text).toContain('"\\x1b[31mred" added');
    expect(text).toContain(`l changed (-> ${"x".repeat(200)}… → -> y)`);
  });
});
