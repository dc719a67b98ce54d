import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AppStore } from "../store/app-store.js";
import { ConfigStore } from "../store/config-store.js";
import { MetadataStore } from "../store/metadata-store.js";
import { MASK, RuntimeConfig, scrub } from "./config.js";
import { SecretBox } from "./secret-box.js";

describe("runtime config revisions", () => {
  let dir: string;
  let meta: MetadataStore;
  let config: RuntimeConfig;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "slipway-config-"));
    meta = MetadataStore.open(join(dir, "slipway.db"));
    new AppStore(meta).ensureApp("app");
    config = new RuntimeConfig(new ConfigStore(meta), await SecretBox.open(join(dir, "secrets.key")));
  });
  afterEach(async () => {
    meta.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("each change is a whole new revision on top of its base, with its own history", () => {
    const r1 = config.revise("app", "main", null, { set: { USER: "test", LOG: "info" } }, "alice")!;
    const r2 = config.revise("app", "main", r1.revision, { set: { LOG: "debug" }, unset: ["USER"] }, "bob")!;
    expect(config.env("app", r1.revision)).toEqual({ USER: "test", LOG: "info" });
    expect(config.env("app", r2.revision)).toEqual({ LOG: "debug" });
    expect(config.env("app", null)).toEqual({});
    expect(config.history("app").map((r) => [r.revision, r.parent, r.actor, r.changes.map((c) => `${c.op}:${c.key}`)])).toEqual([
      [1, null, "alice", ["set:USER", "set:LOG"]],
      [2, 1, "bob", ["set:LOG", "unset:USER"]],
    ]);
    // Setting what is already there changes nothing.
    expect(config.revise("app", "main", r2.revision, { set: { LOG: "debug" } }, "bob")).toBeNull();
  });

  it("seals secrets at rest and masks them when shown; the function's env has the value", async () => {
    const r = config.revise("app", "main", null, { set: { API_KEY: "sk-live-0123456789" }, secret: true }, "alice")!;
    expect(config.env("app", r.revision)).toEqual({ API_KEY: "sk-live-0123456789" });
    expect(config.view("app", r.revision).entries).toEqual([{ key: "API_KEY", value: MASK, secret: true }]);
    expect(JSON.stringify(config.history("app"))).not.toContain("sk-live");
    meta.db.pragma("wal_checkpoint(TRUNCATE)");
    for (const f of await readdir(dir)) expect((await readFile(join(dir, f))).includes("sk-live-0123456789")).toBe(false);
    expect(scrub("failed with key sk-live-0123456789!", config.secretValues("app", r.revision))).toBe(`failed with key ${MASK}!`);
  });

  it("refuses bad keys, reserved keys and empty changes, naming them", () => {
    expect(() => config.revise("app", "main", null, { set: { "1BAD": "x" } }, "a")).toThrow(/config key "1BAD" is invalid/);
    expect(() => config.revise("app", "main", null, { set: { SLIPWAY_SOCKET: "x" } }, "a")).toThrow(/reserved/);
    expect(() => config.revise("app", "main", null, {}, "a")).toThrow(/at least one/);
    expect(() => config.revise("app", "main", null, { set: { A: "1" }, unset: ["A"] }, "a")).toThrow(/both set and unset/);
  });
});
