import { describe, expect, it } from "vitest";
import { IgnoreRules } from "./ignore.js";

describe("ignore rules", () => {
  const rules = IgnoreRules.parse(["# comment", "*.log", "build/", "docs/**/*.md", "!docs/keep.md", "/tmp", ""].join("\n"));

  it("matches globs, directories and everything below them", () => {
    expect(rules.ignores("debug.log")).toBe(true);
    expect(rules.ignores("src/debug.log")).toBe(false);
    expect(rules.ignores("build")).toBe(true);
    expect(rules.ignores("build/out/x.js")).toBe(true);
    expect(rules.ignores("tmp/a")).toBe(true);
    expect(rules.ignores("docs/a/b/c.md")).toBe(true);
  });

  it("lets a later ! line re-include, and keeps the rest", () => {
    expect(rules.ignores("docs/keep.md")).toBe(false);
    expect(rules.ignores("src/main.ts")).toBe(false);
  });
});
