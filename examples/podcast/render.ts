// Speaks `text` with espeak-ng, applies the EQ with sox, and returns the WAV bytes. EQ is a call parameter:
// changing it needs no build and no deploy.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface RenderInput {
  text: string;
  voice?: string;
  eq?: { bassDb?: number; trebleDb?: number; gainDb?: number };
}

export default async function render(input: RenderInput): Promise<Uint8Array> {
  if (!input || typeof input.text !== "string" || input.text.trim() === "") {
    throw new TypeError('input.text must be a non-empty string, e.g. {"text":"Hello"}');
  }
  const eq = input.eq ?? {};
  for (const [name, value] of Object.entries(eq)) {
    if (typeof value !== "number" || !Number.isFinite(value) || Math.abs(value) > 40) {
      throw new RangeError(`eq.${name} must be a number of dB between -40 and 40`);
    }
  }
  const dir = await mkdtemp(join(tmpdir(), "render-"));
  try {
    const speech = join(dir, "speech.wav");
    const out = join(dir, "episode.wav");
    await run("espeak-ng", ["-v", input.voice ?? "en-us", "-w", speech, input.text]);
    await run("sox", [
      speech, out,
      "bass", String(eq.bassDb ?? 0),
      "treble", String(eq.trebleDb ?? 0),
      "gain", String(eq.gainDb ?? 0),
    ]);
    return await readFile(out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
