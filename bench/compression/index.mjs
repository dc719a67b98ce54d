// bench/compression: what each layer compressor costs on this machine, to choose Slipway's default by numbers.
// Packs a realistic tree (a debootstrapped Debian root at /tmp/dbs/rootfs when present, else ~200 MB of /usr) into
// one uncompressed tar with Slipway's own layer writer, then compresses that tar with each candidate: throughput
// (MB of tar per second), ratio, and whether the output is byte-identical across runs and thread counts (a layer's
// digest must not depend on the machine that built it).
//   node bench/compression/index.mjs [TREE] [--runs N]
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync } from "node:fs";
import { lstat, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import { has, median, printTable, time } from "../lib/measure.mjs";

const ROOT = resolve(import.meta.dirname, "../..");
const { entriesFromDirectory, packLayer } = await import(join(ROOT, "dist/oci/layer-writer.js"));

const args = process.argv.slice(2);
const runsAt = args.indexOf("--runs");
const RUNS = runsAt >= 0 ? Number(args[runsAt + 1]) : 3;
const explicitTree = args.find((a, i) => !a.startsWith("--") && args[i - 1] !== "--runs");
const TREE = explicitTree ?? (existsSync("/tmp/dbs/rootfs") ? "/tmp/dbs/rootfs" : "/usr");
/** When the tree is bigger (all of /usr), the walk stops after this many bytes of file content. */
const BUDGET = 200e6;

/** Top-level directories a root filesystem has but a layer never carries (device nodes, kernel mounts). */
const SKIP_TOP = new Set(["dev", "proc", "sys"]);

/** Slipway's sorted walk, cut off at BUDGET bytes of file content so every machine packs a comparable amount. */
async function* budgeted(root) {
  let bytes = 0;
  const names = (await readdir(root)).filter((n) => !SKIP_TOP.has(n)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const name of names) {
    const st = await lstat(join(root, name));
    if (!st.isDirectory()) continue;
    yield { type: "dir", path: name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
    for await (const entry of entriesFromDirectory(join(root, name))) {
      if (entry.type === "file") {
        if (bytes + entry.size > BUDGET) continue;
        bytes += entry.size;
      }
      yield { ...entry, path: `${name}/${entry.path}`, ...(entry.type === "hardlink" ? { target: `${name}/${entry.target}` } : {}) };
    }
  }
}

/** Streams a file through a transform (a zlib stream or a child process), returning output size and digest. */
async function through(input, makeFilter) {
  const hash = createHash("sha256");
  let size = 0;
  const { writable, readable, done } = makeFilter();
  const counting = (async () => {
    for await (const chunk of readable) {
      hash.update(chunk);
      size += chunk.length;
    }
  })();
  await Promise.all([pipeline(createReadStream(input, { highWaterMark: 1 << 20 }), writable), counting, done]);
  return { size, digest: hash.digest("hex") };
}

const zlibFilter = (make) => () => {
  const z = make();
  return { writable: z, readable: z, done: Promise.resolve() };
};
const processFilter = (cmd, cmdArgs) => () => {
  const child = spawn(cmd, cmdArgs, { stdio: ["pipe", "pipe", "inherit"] });
  const done = new Promise((res, rej) => child.on("close", (code) => (code === 0 ? res() : rej(new Error(`${cmd} exited ${code}`)))));
  return { writable: child.stdin, readable: child.stdout, done };
};

const work = await mkdtemp(join(tmpdir(), "slipway-bench-compression-"));
try {
  const tarPath = join(work, "layer.tar");
  const packed = await time(async () => {
    const layer = packLayer(budgeted(TREE), { compression: "none" });
    await pipeline(layer.stream, createWriteStream(tarPath));
    return layer.diffId;
  });
  const tarBytes = (await stat(tarPath)).size;
  const mb = tarBytes / 1e6;
  console.log(`tree ${TREE}: ${mb.toFixed(0)} MB of tar, walked and packed by Slipway in ${(packed.ms / 1000).toFixed(2)} s (${(mb / (packed.ms / 1000)).toFixed(0)} MB/s)`);

  const candidates = [
    { name: "gzip -1, Node zlib (Slipway's gzip)", filter: zlibFilter(() => createGzip({ level: 1, memLevel: 9, chunkSize: 1 << 16 })) },
    { name: "gzip -6, Node zlib", filter: zlibFilter(() => createGzip({ level: 6, memLevel: 9, chunkSize: 1 << 16 })) },
  ];
  if (has("pigz")) {
    candidates.push({ name: "pigz -6, 2 threads", filter: processFilter("pigz", ["-6", "-p", "2", "-c"]), same: "pigz -6, 1 thread" });
    candidates.push({ name: "pigz -6, 1 thread", filter: processFilter("pigz", ["-6", "-p", "1", "-c"]) });
    candidates.push({ name: "pigz -1, 2 threads", filter: processFilter("pigz", ["-1", "-p", "2", "-c"]) });
  }
  if (has("zstd")) {
    candidates.push({ name: "zstd -3, single thread", filter: processFilter("zstd", ["-q", "-c", "-3", "--no-check", "--single-thread"]) });
    // The zstd CLI's default is one worker (-T1): Slipway's zstd. Multi-worker output does not depend on the count,
    // but --single-thread writes other bytes, so the writer must never switch between the two modes.
    candidates.push({ name: "zstd -3 -T1 (Slipway's zstd)", filter: processFilter("zstd", ["-q", "-c", "-3", "--no-check", "-T1"]) });
    candidates.push({ name: "zstd -3 -T2", filter: processFilter("zstd", ["-q", "-c", "-3", "--no-check", "-T2"]), same: "zstd -3 -T1 (Slipway's zstd)" });
  }

  const results = new Map();
  for (const c of candidates) {
    const times = [];
    const digests = new Set();
    let size = 0;
    for (let i = 0; i < RUNS; i++) {
      const r = await time(() => through(tarPath, c.filter));
      times.push(r.ms);
      digests.add(r.value.digest);
      size = r.value.size;
    }
    results.set(c.name, { times, digests, size, same: c.same });
  }

  // Decompression, as a pull and an unpack pay it.
  const gz = join(work, "layer.tar.gz");
  const zst = join(work, "layer.tar.zst");
  await pipeline(createReadStream(tarPath), createGzip({ level: 6 }), createWriteStream(gz));
  await through(tarPath, processFilter("zstd", ["-q", "-c", "-3", "-o", zst]));
  const decompress = [];
  for (const [name, input, filter] of [
    ["gunzip, Node zlib", gz, zlibFilter(() => createGunzip({ chunkSize: 1 << 16 }))],
    ["zstd -d", zst, processFilter("zstd", ["-q", "-d", "-c"])],
  ]) {
    const times = [];
    for (let i = 0; i < RUNS; i++) times.push((await time(() => through(input, filter))).ms);
    decompress.push([name, (median(times) / 1000).toFixed(2), (mb / (median(times) / 1000)).toFixed(0)]);
  }

  printTable(
    `Compressing ${mb.toFixed(0)} MB of tar (${TREE}), median of ${RUNS}`,
    ["compressor", "seconds", "MB/s", "ratio", "out MB", "same bytes every run", "same as"],
    [...results].map(([name, r]) => {
      const s = median(r.times) / 1000;
      const sameAs = r.same ? `${r.same}: ${[...r.digests][0] === [...(results.get(r.same)?.digests ?? [])][0] ? "yes" : "no"}` : "";
      return [name, s.toFixed(2), (mb / s).toFixed(0), (tarBytes / r.size).toFixed(2), (r.size / 1e6).toFixed(1), r.digests.size === 1 ? "yes" : "no", sameAs];
    }),
  );
  printTable(`Decompressing the same tar, median of ${RUNS}`, ["decompressor", "seconds", "MB/s"], decompress);
} finally {
  await rm(work, { recursive: true, force: true });
}
