// Registry benchmark: Slipway's registry and Debian's docker-registry (distribution 2.8.2) side by side on
// 127.0.0.1, in the same run. skopeo pushes and pulls a 512 MiB single-layer image and a 10-layer image, then
// re-pushes with every blob present; a 2 GiB streamed upload samples Slipway's resident memory. Prints a table
// with seconds, MB/s and the ratio (distribution time / Slipway time: above 1 means Slipway is faster).
//
// A skopeo pull is bound by skopeo itself (it hashes the blob twice, writes it and fsyncs it: its CPU time about
// equals the pull's wall time, while the registry serving it uses a tenth of that), so the table also times a bare
// GET of the 512 MiB layer with curl into /dev/null: the registry's own serving speed.
//
// Run: bash bench/registry/run.sh   (medians of BENCH_RUNS runs, default 4: an even number, so that each registry
// goes first equally often)
//
// Images are written by a child process (this file run with `write-image`): a process holding a 512 MiB image in
// memory takes 40-90 ms to fork each skopeo (its page tables are copied), which the timings would charge to the
// registries, and which alone would exceed a re-push's whole budget.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startDockerRegistry } from "../../test/helpers/docker-registry.js";
import { writeOciLayout } from "../../test/registry-kit.js";
import { bundleRegistryMain, spawnRegistry, type RegistryProcess } from "../../test/registry-support.js";

const run = promisify(execFile);
const RUNS = Number(process.env.BENCH_RUNS ?? 4);
const MiB = 1024 * 1024;

interface Target {
  name: string;
  host: string;
  creds: string[];
  /** Headers for a plain HTTP GET (curl). */
  headers: string[];
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function skopeo(args: string[]): Promise<void> {
  await run("skopeo", args, { maxBuffer: 1 << 24 });
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "bench-registry-"));
  let slipway: RegistryProcess | null = null;
  const distribution = await startDockerRegistry({ storage: join(work, "dist-storage"), configDir: work });
  try {
    slipway = await spawnRegistry(await bundleRegistryMain(), join(work, "slipway-data"));
    const targets: Target[] = [
      { name: "slipway", host: new URL(slipway.url).host, creds: ["--dest-creds", `bench:${slipway.adminToken}`], headers: ["-H", `Authorization: Bearer ${slipway.adminToken}`] },
      { name: "distribution", host: distribution.host, creds: [], headers: [] },
    ];

    const rows: Array<[string, string, number, number, number | null]> = [];
    for (const [label, kind] of [
      ["512 MiB, 1 layer", "big"],
      ["10 layers x 2 MiB", "ten"],
    ] as const) {
      const results: Record<string, { push: number[]; repush: number[]; pull: number[]; get: number[] }> = {};
      for (const t of targets) results[t.name] = { push: [], repush: [], pull: [], get: [] };
      let bytes = 0;
      let layer = { digest: "", size: 0 };
      for (let i = 0; i < RUNS; i++) {
        process.stderr.write(`${label}: run ${i + 1} of ${RUNS}…\n`);
        const dir = join(work, `${kind}-${i}`);
        ({ bytes, layer } = await writeImageInChild(dir, kind));
        // Who goes first alternates, and each starts with no dirty pages left by the image or by the other: their
        // writeback otherwise lands on whichever registry is being timed (the push ratio moved 1.09 -> 0.85 with
        // the order alone).
        for (const t of i % 2 === 0 ? targets : [...targets].reverse()) {
          await run("sync");
          const ref = `docker://${t.host}/bench/${kind}-${i}:v1`;
          const out = join(work, `pull-${t.name}-${i}`);
          results[t.name]!.push.push(await timed(() => skopeo(["copy", "--dest-tls-verify=false", ...t.creds, `oci:${dir}:v1`, ref])));
          results[t.name]!.repush.push(await timed(() => skopeo(["copy", "--dest-tls-verify=false", ...t.creds, `oci:${dir}:v1`, ref])));
          const src = t.creds.length ? ["--src-creds", t.creds[1]!] : [];
          results[t.name]!.pull.push(await timed(() => skopeo(["copy", "--src-tls-verify=false", ...src, ref, `oci:${out}:v1`])));
          await rm(out, { recursive: true, force: true });
          if (kind === "big") {
            const url = `http://${t.host}/v2/bench/${kind}-${i}/blobs/${layer.digest}`;
            results[t.name]!.get.push(await timed(() => curlToNull(url, t.headers, layer.size)));
          }
        }
        await rm(dir, { recursive: true, force: true });
      }
      for (const op of ["push", "repush", "pull", "get"] as const) {
        if (results.slipway![op].length === 0) continue;
        const s = median(results.slipway![op]);
        const d = median(results.distribution![op]);
        const moved = op === "get" ? layer.size : bytes;
        const name = op === "get" ? `blob GET ${label} (curl, bare)` : `${op} ${label}`;
        rows.push([name, op === "repush" ? "-" : (moved / MiB / s).toFixed(0), s, d, op === "repush" ? null : moved / MiB / d]);
      }
    }

    process.stderr.write("2 GiB streamed upload…\n");
    const memory = await streamedUpload(slipway, 2048 * MiB);

    const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
    console.log(line(["measurement", "slipway s", "slipway MB/s", "distribution s", "distribution MB/s", "ratio (dist/slipway)"]));
    console.log(line(["---", "---:", "---:", "---:", "---:", "---:"]));
    for (const [name, mbs, s, d, dmbs] of rows) {
      console.log(line([name, s.toFixed(3), mbs, d.toFixed(3), dmbs === null ? "-" : dmbs.toFixed(0), (d / s).toFixed(2)]));
    }
    console.log(
      `\n2 GiB PATCH upload to Slipway: ${memory.seconds.toFixed(2)} s (${(2048 / memory.seconds).toFixed(0)} MB/s); ` +
        `server RSS before ${(memory.before / MiB).toFixed(0)} MiB, peak ${(memory.peak / MiB).toFixed(0)} MiB (growth ${((memory.peak - memory.before) / MiB).toFixed(0)} MiB)`,
    );
    console.log(`(medians of ${RUNS} runs; re-push = every blob already present; blob GET = the layer alone, read by curl into /dev/null)`);
  } finally {
    await slipway?.kill("SIGTERM");
    await distribution.stop();
    await rm(work, { recursive: true, force: true });
  }
}

type ImageKind = "big" | "ten";

interface WrittenImage {
  /** What a push sends: config and layers. */
  bytes: number;
  /** The largest layer. */
  layer: { digest: string; size: number };
}

/** Writes a fresh image as an OCI layout in a child process. */
async function writeImageInChild(dir: string, kind: ImageKind): Promise<WrittenImage> {
  const { stdout } = await run(process.execPath, [fileURLToPath(import.meta.url), "write-image", dir, kind]);
  return JSON.parse(stdout) as WrittenImage;
}

/** GETs a blob into /dev/null with curl, which does no work per byte: the time is the registry's serving. */
async function curlToNull(url: string, headers: string[], size: number): Promise<void> {
  const { stdout } = await run("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", ...headers, url]);
  if (stdout.trim() !== `200 ${size}`) throw new Error(`GET ${url} answered ${stdout.trim()}, not 200 with ${size} bytes`);
}

/**
 * Fresh content every run: skopeo remembers where it has seen a blob and would mount it instead of pushing.
 * Random bytes do not compress, so the big layer stays 512 MiB after gzip.
 */
async function writeImage(dir: string, kind: ImageKind): Promise<WrittenImage> {
  const tars = kind === "big" ? [tarOf("big.bin", randomBytes(512 * MiB))] : Array.from({ length: 10 }, (_, i) => tarOf(`f${i}.bin`, randomBytes(2 * MiB)));
  const image = await writeOciLayout(dir, "v1", tars);
  const largest = image.layers.reduce((a, b) => (b.size > a.size ? b : a));
  return { bytes: image.config.size + image.layers.reduce((n, l) => n + l.size, 0), layer: { digest: largest.digest, size: largest.size } };
}

/** A tar holding one file (ustar header, data, padding, end blocks). */
function tarOf(name: string, data: Buffer): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0);
  header.write("0000644\0", 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(data.length.toString(8).padStart(11, "0") + "\0", 124);
  header.write("00000000000\0", 136);
  header.write("        ", 148);
  header.write("0", 156);
  header.write("ustar\0", 257);
  header.write("00", 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header, data, pad, Buffer.alloc(1024)]);
}

/** Streams `total` bytes in one PATCH while sampling the server's RSS; then finishes the upload. */
async function streamedUpload(proc: RegistryProcess, total: number): Promise<{ seconds: number; before: number; peak: number }> {
  const auth = { authorization: `Bearer ${proc.adminToken}` };
  const post = await fetch(`${proc.url}/v2/bench/stream/blobs/uploads/`, { method: "POST", headers: auth });
  const location = post.headers.get("location")!;
  const before = proc.rss();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, proc.rss())), 50);
  const chunk = randomBytes(4 * MiB);
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const url = new URL(proc.url + location);
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: "PATCH", headers: { ...auth, "content-type": "application/octet-stream" } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 202 ? resolve() : reject(new Error(`PATCH answered ${res.statusCode}`))));
    });
    req.on("error", reject);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once("drain", pump);
      }
      req.end();
    };
    pump();
  });
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  await fetch(proc.url + location, { method: "DELETE", headers: auth });
  return { seconds, before, peak };
}

if (process.argv[2] === "write-image") process.stdout.write(`${JSON.stringify(await writeImage(process.argv[3]!, process.argv[4] as ImageKind))}\n`);
else await main();
