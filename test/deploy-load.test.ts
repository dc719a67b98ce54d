// Consistency under load, through the real server on loopback: 200 concurrent callers while the pointer flips 500
// times between two versions. Every flip returns the revision (sequence number) it made; every call answers with
// the revision it resolved. Each call must name the version that revision held, the revision must have been
// current at some moment while the call was in flight, no call may fail, and long calls started before a flip
// finish on the version they resolved.
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "../src/sdk/client.js";
import { busyboxTarball } from "./helpers/busybox.js";
import { removeDataDir, startServerProcess, type ServerProcess } from "./helpers/cli.js";
import { announceSkip, containerSkipReason } from "./helpers/env.js";
import { tempDirs } from "./helpers/temp-dirs.js";

const temp = tempDirs();

const skip = announceSkip("deploy consistency under load (runc containers)", containerSkipReason());

const APP = `
import { App, Image } from "slipway";
const image = Image.fromTarball("./busybox.tar");
export const app = new App("load");
app.function("fast", { image, handler: "./fast.ts", maxContainers: 6 });
app.function("slow", { image, handler: "./slow.ts", maxContainers: 12, timeoutMs: 30000 });
`;
const FAST = (marker: string) => `export default (_input: unknown, ctx: { version: number }) => ({ marker: ${JSON.stringify(marker)}, version: ctx.version });\n`;
const SLOW = (marker: string) =>
  `export default async (input: { ms: number }, ctx: { version: number }) => { await new Promise((r) => setTimeout(r, input.ms)); return { marker: ${JSON.stringify(marker)}, version: ctx.version }; };\n`;

const CALLERS = 200;
const FLIPS = 500;

interface CallRecord {
  revision: number;
  version: number;
  bodyVersion: number;
  /** Flips whose answer had arrived before the call was sent: the pointer was at least this far. */
  committedBefore: number;
  /** Flips sent before the call's answer arrived: the pointer was at most this far. */
  sentBefore: number;
}

describe.skipIf(skip)("pointer flips under load", () => {
  let server: ServerProcess;
  let dir: string;
  let client: Client;

  beforeAll(async () => {
    server = await startServerProcess();
    dir = await temp("slipway-load-");
    await busyboxTarball(dir);
    await writeFile(join(dir, "app.ts"), APP);
    client = new Client({ url: server.url, token: readFileSync(join(server.dataDir, "admin-token"), "utf8").trim() });
    for (const marker of ["one", "two"]) {
      await writeFile(join(dir, "fast.ts"), FAST(marker));
      await writeFile(join(dir, "slow.ts"), SLOW(marker));
      const res = await server.cli(["deploy", join(dir, "app.ts"), "--json"]);
      expect(res.code, res.stderr).toBe(0);
    }
  });

  afterAll(async () => {
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
  });

  it("200 callers, 500 flips: every call names a version its pointer held while it was accepted; none fails", async () => {
    const history = await client.json<{ history: Array<{ revision: number; toVersion: number }> }>("/api/v1/apps/load/history?deployment=main");
    const flipLog = new Map<number, number>(history.history.map((h) => [h.revision, h.toVersion]));
    const baseRevision = Math.max(...flipLog.keys());
    expect(flipLog.get(baseRevision)).toBe(2);
    // Warm both versions so that the run measures flips, not cold starts.
    await Promise.all([1, 2].flatMap((v) => Array.from({ length: 6 }, () => client.invoke("load", "fast", null, { version: v }))));

    let committed = 0;
    let sent = 0;
    let flipping = true;
    const flipper = (async () => {
      for (let i = 0; i < FLIPS; i++) {
        const to = i % 2 === 0 ? 1 : 2;
        sent++;
        const moved = await client.post<{ revision: number; to: number }>("/api/v1/apps/load/promote", { version: to });
        flipLog.set(moved.revision, moved.to);
        committed++;
      }
      flipping = false;
    })();

    const calls: CallRecord[] = [];
    const failures: string[] = [];
    const call = async (fn: "fast" | "slow", input: unknown): Promise<CallRecord | null> => {
      const committedBefore = committed;
      try {
        const res = await client.invoke("load", fn, input);
        const rec = { revision: res.revision!, version: res.version, bodyVersion: (res.json() as { version: number }).version, committedBefore, sentBefore: sent };
        calls.push(rec);
        return rec;
      } catch (err) {
        failures.push(`${fn}: ${(err as Error).message}`);
        return null;
      }
    };
    // Each caller pauses a random 0-500 ms between calls: on a 2-core machine callers that never pause saturate
    // the CPU and flips queue behind calls for ~100 ms each; the check is about calls interleaving with flips.
    const callers = Array.from({ length: CALLERS }, async () => {
      while (flipping) {
        await call("fast", null);
        await new Promise((r) => setTimeout(r, Math.random() * 500));
      }
    });
    // Long calls, started while flips go on, each still has to finish on the version it resolved.
    const longCalls = (async () => {
      const started: Array<Promise<CallRecord | null>> = [];
      while (flipping && started.length < 12) {
        started.push(call("slow", { ms: 1500 }));
        await new Promise((r) => setTimeout(r, 150));
      }
      return Promise.all(started);
    })();
    await flipper;
    await Promise.all(callers);
    const long = await longCalls;

    expect(failures).toEqual([]);
    expect(committed).toBe(FLIPS);
    expect(calls.length).toBeGreaterThan(CALLERS * 2);
    expect(long.length).toBeGreaterThan(3);
    const versionsSeen = new Set<number>();
    for (const c of calls) {
      // The response names the version the revision held, and that is the version that ran.
      expect(flipLog.get(c.revision), `revision ${c.revision}`).toBe(c.version);
      expect(c.bodyVersion).toBe(c.version);
      // The revision was current at some moment between sending the call and getting its answer.
      expect(c.revision).toBeGreaterThanOrEqual(baseRevision + c.committedBefore);
      expect(c.revision).toBeLessThanOrEqual(baseRevision + c.sentBefore);
      versionsSeen.add(c.version);
    }
    expect(versionsSeen).toEqual(new Set([1, 2]));
    for (const l of long) expect(l!.bodyVersion).toBe(l!.version);
    // Calls resolved across many different revisions, not just the first and last.
    expect(new Set(calls.map((c) => c.revision)).size).toBeGreaterThan(50);
    console.log(`load: ${calls.length} calls by ${CALLERS} callers over ${FLIPS} flips, ${new Set(calls.map((c) => c.revision)).size} distinct revisions seen`);

    const after = await client.json<{ history: Array<{ revision: number; toVersion: number }> }>("/api/v1/apps/load/history?deployment=main");
    expect(after.history).toHaveLength(2 + FLIPS);
    for (const h of after.history) expect(flipLog.get(h.revision)).toBe(h.toVersion);
  });
});
