// The main demo end to end, on real Debian packages: the podcast example deployed from a copy of
// examples/podcast, invoked, redeployed unchanged, with a handler edit, with one more apt package, rolled back,
// deployed to staging, and promoted. One server and one debootstrap serve the whole file.
import { execFileSync } from "node:child_process";
import { copyFile, mkdtemp, readFile, writeFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeDataDir, ROOT, startServerProcess, type ServerProcess } from "./helpers/cli.js";
import { announceSkip, containerSkipReason, toolSkipReason } from "./helpers/env.js";

const skip = announceSkip("podcast end to end", containerSkipReason() ?? toolSkipReason("debootstrap"));

interface Deployed {
  version: number;
  created: boolean;
  moved: { from: number | null; to: number } | null;
  images: Record<string, { digest: string; steps: Array<{ text: string; status: "hit" | "miss" }> }>;
}

/** Parses a WAV file's header: format and the number of samples. */
function wavInfo(wav: Buffer): { channels: number; rate: number; bits: number; samples: number } {
  expect(wav.subarray(0, 4).toString("latin1")).toBe("RIFF");
  expect(wav.subarray(8, 12).toString("latin1")).toBe("WAVE");
  let offset = 12;
  let fmt: { channels: number; rate: number; bits: number } | null = null;
  while (offset + 8 <= wav.length) {
    const id = wav.subarray(offset, offset + 4).toString("latin1");
    const size = wav.readUInt32LE(offset + 4);
    if (id === "fmt ") fmt = { channels: wav.readUInt16LE(offset + 10), rate: wav.readUInt32LE(offset + 12), bits: wav.readUInt16LE(offset + 22) };
    if (id === "data" && fmt) return { ...fmt, samples: Math.min(size, wav.length - offset - 8) / (fmt.channels * (fmt.bits / 8)) };
    offset += 8 + size + (size % 2);
  }
  throw new Error("no data chunk");
}

const steps = (d: Deployed) => Object.values(d.images)[0]!.steps.map((s) => s.status);

describe.skipIf(skip)("podcast example end to end", () => {
  let server: ServerProcess;
  let dir: string;
  const text = "Welcome to the Slipway podcast.";

  const deploy = async (...extra: string[]) => {
    const res = await server.cli(["deploy", join(dir, "app.ts"), "--json", ...extra]);
    expect(res.code, res.stderr).toBe(0);
    return res.json<Deployed>();
  };
  const invoke = async (input: unknown, ...extra: string[]) => {
    const res = await server.cli(["invoke", "podcast/render", "--input", JSON.stringify(input), ...extra]);
    expect(res.code, res.stderr).toBe(0);
    return res.stdout;
  };

  beforeAll(async () => {
    server = await startServerProcess();
    dir = await mkdtemp(join(tmpdir(), "slipway-podcast-"));
    for (const f of ["app.ts", "render.ts"]) await copyFile(join(ROOT, "examples/podcast", f), join(dir, f));
  });

  afterAll(async () => {
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("builds, deploys v1 and renders a WAV of the spoken text; the EQ changes the audio", async () => {
    const d = await deploy();
    expect(d).toMatchObject({ version: 1, created: true, moved: { from: null, to: 1 } });
    expect(steps(d)).toEqual(["miss", "miss", "miss"]);

    const flat = await invoke({ text, eq: {} });
    const info = wavInfo(flat);
    expect(info).toMatchObject({ channels: 1, bits: 16, rate: 22050 });
    // espeak-ng speaks about 2.5 words a second: this text is a couple of seconds of audio, not silence or noise.
    expect(info.samples / info.rate).toBeGreaterThan(1);
    expect(info.samples / info.rate).toBeLessThan(6);
    if (!toolSkipReason("espeak-ng")) {
      // The same espeak-ng release on the host speaks the same text to the same number of samples.
      const hostWav = execFileSync("espeak-ng", ["-v", "en-us", "--stdout", text]);
      expect(info.samples).toBe(wavInfo(hostWav).samples);
    }
    const longer = wavInfo(await invoke({ text: `${text} ${text}`, eq: {} }));
    expect(longer.samples).toBeGreaterThan(info.samples * 1.5);

    const bass = await invoke({ text, eq: { bassDb: 9 } });
    const treble = await invoke({ text, eq: { trebleDb: 9, gainDb: -3 } });
    expect(wavInfo(bass).samples).toBe(info.samples);
    expect(bass.equals(flat)).toBe(false);
    expect(treble.equals(bass)).toBe(false);
  });

  it("deploying again unchanged executes no step and makes no version", async () => {
    const d = await deploy();
    expect(d).toMatchObject({ version: 1, created: false, moved: null });
    expect(steps(d)).toEqual(["hit", "hit", "hit"]);
    const versions = await server.cli(["versions", "podcast", "--json"]);
    expect(versions.json<{ versions: unknown[] }>().versions).toHaveLength(1);
  });

  it("a handler-only change deploys with no image step executed and the next call runs the new code", async () => {
    await writeFile(join(dir, "render.ts"), `export default async (input: { text: string }) => ({ code: "v2", text: input.text });\n`);
    const d = await deploy();
    expect(d).toMatchObject({ version: 2, created: true, moved: { from: 1, to: 2 } });
    expect(steps(d)).toEqual(["hit", "hit", "hit"]);
    expect(JSON.parse((await invoke({ text: "hi" })).toString())).toEqual({ code: "v2", text: "hi" });
  });

  it("adding one apt package rebuilds that step and the ones after it; the Debian base stays cached", async () => {
    const app = await readFile(join(dir, "app.ts"), "utf8");
    await writeFile(join(dir, "app.ts"), app.replace(`["sox", "espeak-ng"]`, `["sox", "espeak-ng", "jq"]`));
    const d = await deploy();
    expect(d).toMatchObject({ version: 3, created: true });
    expect(steps(d)).toEqual(["hit", "miss", "miss"]);
    await writeFile(join(dir, "render.ts"), `import { execFileSync } from "node:child_process";\nexport default async () => ({ code: "v4", jq: execFileSync("jq", ["--version"], { encoding: "utf8" }).trim() });\n`);
    const d4 = await deploy();
    expect(steps(d4)).toEqual(["hit", "hit", "hit"]);
    expect(JSON.parse((await invoke({})).toString())).toMatchObject({ code: "v4", jq: expect.stringMatching(/^jq-/) });
  });

  it("rollback puts main back on the previous version, calls run the old code, and history shows the moves", async () => {
    const rb = await server.cli(["rollback", "podcast", "--json"]);
    expect(rb.code, rb.stderr).toBe(0);
    expect(rb.json()).toMatchObject({ deployment: "main", from: 4, to: 3, reason: "rollback" });
    expect(JSON.parse((await invoke({ text: "x" })).toString())).toEqual({ code: "v2", text: "x" });
    const history = (await server.cli(["history", "podcast", "--json"])).json<{ history: Array<{ fromVersion: number | null; toVersion: number; reason: string; actor: string }> }>().history;
    expect(history.map((h) => [h.fromVersion, h.toVersion, h.reason])).toEqual([
      [null, 1, "deploy"],
      [1, 2, "deploy"],
      [2, 3, "deploy"],
      [3, 4, "deploy"],
      [4, 3, "rollback"],
    ]);
    expect(history.every((h) => h.actor === "admin")).toBe(true);
  });

  it("a deploy to staging leaves main untouched; each runs its own code; promote moves main without a rebuild", async () => {
    await writeFile(join(dir, "render.ts"), `export default async () => ({ code: "staging" });\n`);
    const d = await deploy("--deployment", "staging");
    expect(d).toMatchObject({ version: 5, created: true, moved: { from: null, to: 5 } });
    expect(JSON.parse((await invoke({}, "--deployment", "staging")).toString())).toEqual({ code: "staging" });
    expect(JSON.parse((await invoke({ text: "m" })).toString())).toEqual({ code: "v2", text: "m" });

    const promoted = await server.cli(["promote", "podcast", "--from", "staging", "--to", "main", "--json"]);
    expect(promoted.code, promoted.stderr).toBe(0);
    expect(promoted.json()).toMatchObject({ deployment: "main", from: 3, to: 5, reason: "promote" });
    expect(JSON.parse((await invoke({})).toString())).toEqual({ code: "staging" });
  });
});
