import { describe, expect, it } from "vitest";
import { stepKey } from "./cache-key.js";

const tree = `sha256:${"a".repeat(64)}` as const;
const other = `sha256:${"b".repeat(64)}` as const;

describe("step cache keys", () => {
  it("cover the parent key, the step and its inputs", () => {
    const run = { op: "run" as const, shell: "make" };
    const k = stepKey(null, run, { buildArgs: { V: "1" } });
    expect(stepKey(null, run, { buildArgs: { V: "1" } })).toBe(k);
    expect(stepKey("sha256:parent", run, { buildArgs: { V: "1" } })).not.toBe(k);
    expect(stepKey(null, run, { buildArgs: { V: "2" } })).not.toBe(k);
    expect(stepKey(null, { ...run, shell: "make all" }, { buildArgs: { V: "1" } })).not.toBe(k);
  });

  it("leave out what does not change the result: forceBuild, and a copy's display path", () => {
    expect(stepKey(null, { op: "run", shell: "x", forceBuild: true }, {})).toBe(stepKey(null, { op: "run", shell: "x" }, {}));
    expect(stepKey(null, { op: "copy", src: "a", tree, dest: "/w" }, {})).toBe(stepKey(null, { op: "copy", src: "renamed", tree, dest: "/w" }, {}));
    expect(stepKey(null, { op: "copy", src: "a", tree: other, dest: "/w" }, {})).not.toBe(stepKey(null, { op: "copy", src: "a", tree, dest: "/w" }, {}));
  });

  it("follow a registry base's pinned digest", () => {
    const base = { op: "base" as const, source: { kind: "registry" as const, ref: "busybox:1" } };
    expect(stepKey(null, base, { base: tree })).not.toBe(stepKey(null, base, { base: other }));
  });
});
