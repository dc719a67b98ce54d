// Pointer rules on a real SQLite store: compare-and-swap, history, rollback walking, splits, and events written in
// the same transaction as the move.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AppStore } from "../store/app-store.js";
import { EventStore } from "../store/event-store.js";
import { MetadataStore } from "../store/metadata-store.js";
import { Deployments, type PointerMove } from "./deployments.js";
import { EventLog } from "./events.js";
import { Versions, type VersionContent } from "./versions.js";

const content = (n: number): VersionContent => ({
  functions: {
    f: {
      image: `sha256:${String(n).padStart(64, "0")}`,
      handler: "f.mjs",
      cpu: 1,
      memoryMiB: 128,
      timeoutMs: 1000,
      minContainers: 0,
      maxContainers: 1,
      idleTimeoutMs: 1000,
    },
  },
  code: `sha256:${"c".repeat(64)}`,
  config: null,
});

describe("deployment pointers", () => {
  let dir: string;
  let meta: MetadataStore;
  let versions: Versions;
  let deployments: Deployments;
  let events: EventLog;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "slipway-deployments-"));
    meta = MetadataStore.open(join(dir, "slipway.db"));
    const apps = new AppStore(meta);
    versions = new Versions(apps);
    events = new EventLog(new EventStore(meta));
    deployments = new Deployments(apps, versions, events);
    for (let n = 1; n <= 4; n++) versions.create("app", content(n), {}, "tester");
  });
  afterEach(async () => {
    meta.close();
    await rm(dir, { recursive: true, force: true });
  });

  const move = (to: number, reason: PointerMove["reason"] = "deploy", extra: Partial<PointerMove> = {}) =>
    deployments.move({ app: "app", deployment: "main", expectedRevision: deployments.revisionOf("app", "main"), to, reason, actor: "tester", ...extra });

  it("moves by compare-and-swap; a stale writer gets a conflict naming what the pointer holds, and nothing changes", () => {
    const readByA = deployments.revisionOf("app", "main");
    const readByB = deployments.revisionOf("app", "main");
    expect(deployments.move({ app: "app", deployment: "main", expectedRevision: readByB, to: 2, reason: "deploy", actor: "b" })).toMatchObject({ revision: 1, to: 2 });
    expect(() => deployments.move({ app: "app", deployment: "main", expectedRevision: readByA, to: 1, reason: "deploy", actor: "a" })).toThrow(
      /moved while this deploy was in progress: it now points at v2 \(revision 1, expected 0\)/,
    );
    expect(deployments.get("app", "main")).toMatchObject({ version: 2, revision: 1 });
    expect(deployments.history("app").map((h) => [h.fromVersion, h.toVersion, h.reason, h.actor])).toEqual([[null, 2, "deploy", "b"]]);
  });

  it("records a promote to an older version as a rollback, and writes moved/live/rolled_back events with the move (DV3)", () => {
    move(1);
    move(2);
    expect(move(1, "promote")).toMatchObject({ from: 2, to: 1, reason: "rollback" });
    const types = events.list({ app: "app" }).map((e) => e.type);
    expect(types.filter((t) => t === "deployment.moved")).toHaveLength(3);
    expect(types.filter((t) => t === "deployment.rolled_back")).toHaveLength(1);
    expect(types.filter((t) => t === "deployment.live")).toHaveLength(3);
  });

  it("names an unknown version with the versions the app has: all of a few, the first and last of many", () => {
    expect(() => versions.get("app", 9)).toThrow("app app has no version v9 (it has v1, v2, v3, v4)");
    for (let n = 5; n <= 7; n++) versions.create("app", content(n), {}, "tester");
    expect(() => versions.get("app", 9)).toThrow("app app has no version v9 (it has v1, …, v5, v6, v7)");
    expect(() => versions.get("nope", 1)).toThrow("app nope has no version v1: app nope does not exist");
  });

  it("a move that never commits leaves neither history nor events", () => {
    move(1);
    const before = events.list({ app: "app" }).length;
    expect(() =>
      move(2, "deploy", {
        beforeCommit: () => {
          throw new Error("crash inside the flip");
        },
      }),
    ).toThrow(/crash inside the flip/);
    expect(deployments.get("app", "main")).toMatchObject({ version: 1, revision: 1 });
    expect(deployments.history("app")).toHaveLength(1);
    expect(events.list({ app: "app" })).toHaveLength(before);
  });

  it("rollback walks the deployment's own history as a stack, splits included", () => {
    move(1);
    move(2);
    move(3);
    expect(deployments.rollbackTarget("app", "main")).toEqual({ version: 2, traffic: null });
    move(2, "rollback");
    expect(deployments.rollbackTarget("app", "main")).toEqual({ version: 1, traffic: null });
    const split = [
      { version: 2, weight: 90 },
      { version: 4, weight: 10 },
    ];
    move(2, "traffic", { traffic: split });
    expect(deployments.get("app", "main")).toMatchObject({ version: 2, traffic: split });
    expect(deployments.activeVersions("app")).toEqual(new Set([2, 4]));
    // Rolling back a canary returns to the single version held before it.
    expect(deployments.rollbackTarget("app", "main")).toEqual({ version: 2, traffic: null });
    move(4);
    // …and rolling back a deploy made on top of a canary brings the canary back.
    expect(deployments.rollbackTarget("app", "main")).toEqual({ version: 2, traffic: split });
  });

  it("rollback --to an older version starts the stack afresh; with no earlier version it says so", () => {
    move(1);
    move(2);
    move(3);
    move(1, "rollback");
    expect(() => deployments.rollbackTarget("app", "main")).toThrow(/no earlier version to roll back to/);
  });
});
