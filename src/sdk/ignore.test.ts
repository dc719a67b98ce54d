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

  it("matches character classes within one name, and refuses a [ that is never closed, naming the file and line", () => {
    const classes = IgnoreRules.parse(["*.py[co]", "v[!0-9]*", "x[/]y"].join("\n"), ".dockerignore");
    expect(classes.ignores("a.pyc")).toBe(true);
    expect(classes.ignores("a.pyo")).toBe(true);
    expect(classes.ignores("a.py")).toBe(false);
    expect(classes.ignores("a.pyx")).toBe(false);
    expect(classes.ignores("vendor")).toBe(true);
    expect(classes.ignores("v1")).toBe(false);
    expect(classes.ignores("x/y")).toBe(false);
    expect(() => IgnoreRules.parse("ok\n!bad[\n", ".slipwayignore")).toThrow('.slipwayignore line 2: "!bad[" has a [ with no closing ]');
  });
});
