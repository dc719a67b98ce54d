// bench/deploy: the deploy path on the podcast image, as whole CLI commands (CLI start included), and the runtime:
// cold start and warm call latency, beside plain runc and podman starting a container in the same run.
//   node bench/deploy/index.mjs
import { copyFile, mkdir, mkdtemp, rm, writeFile, symlink, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { spawn } from "node:child_process";
import { fmt, has, median, percentile, printTable, run, time } from "../lib/measure.mjs";

const ROOT = resolve(import.meta.dirname, "../..");
// The command users run (package.json's bin): client commands on Bun when installed, the server on Node.
const CLI = join(ROOT, "dist/cli/slipway");
const { Client } = await import(join(ROOT, "dist/index.js"));

const work = await mkdtemp(join(tmpdir(), "slipway-bench-deploy-"));
const data = join(work, "data");
const app = join(work, "app");
await mkdir(app);
for (const f of ["render.ts"]) await copyFile(join(ROOT, "examples/podcast", f), join(app, f));
await writeFile(
  join(app, "app.ts"),
  (await readFile(join(ROOT, "examples/podcast/app.ts"), "utf8")) + `\nexport const echo = app.function("echo", { image, handler: "./echo.ts", memoryMiB: 256 });\n`,
);
const echo = (n) => writeFile(join(app, "echo.ts"), `export default async (input: unknown) => ({ n: ${n}, input });\n`);
await echo(1);

const port = 17000 + Math.floor(Math.random() * 1000);
const env = { ...process.env, SLIPWAY_URL: `http://127.0.0.1:${port}`, SLIPWAY_DATA: data };
const server = spawn(CLI, ["server", "--port", String(port), "--data", data], { stdio: "ignore" });
for (let i = 0; i < 200; i++) {
  try {
    if ((await (await fetch(`${env.SLIPWAY_URL}/api/v1/health`)).json()).ok) break;
  } catch {}
  await new Promise((r) => setTimeout(r, 100));
}
const cli = (...args) => run(CLI, args, { env });
const client = new Client({ url: env.SLIPWAY_URL, token: (await readFile(join(data, "admin-token"), "utf8")).trim() });

try {
  const cold = await time(() => cli("deploy", join(app, "app.ts"), "--json"));
  const unchanged = [];
  for (let i = 0; i < 3; i++) unchanged.push((await time(() => cli("deploy", join(app, "app.ts"), "--json"))).ms);
  const codeOnly = [];
  const coldStarts = [];
  const firstCalls = [];
  for (let i = 0; i < 3; i++) {
    await echo(100 + i);
    codeOnly.push((await time(() => cli("deploy", join(app, "app.ts"), "--json"))).ms);
    const first = await time(() => client.invoke("podcast", "echo", { i }));
    firstCalls.push(first.ms);
    coldStarts.push(first.value.coldStart?.totalMs ?? NaN);
  }
  const warm = [];
  for (let i = 0; i < 20; i++) await client.invoke("podcast", "echo", { i });
  for (let i = 0; i < 300; i++) warm.push((await time(() => client.invoke("podcast", "echo", { i }))).ms);

  // Peers: starting a container that runs `true`, measured in this run.
  const peers = [];
  const rootfs = join(work, "busybox");
  await mkdir(join(rootfs, "bin"), { recursive: true });
  await copyFile("/bin/busybox", join(rootfs, "bin/busybox"));
  await symlink("busybox", join(rootfs, "bin/true"));
  if (has("runc")) {
    const bundle = join(work, "bundle");
    await mkdir(bundle);
    await run("runc", ["spec"], { cwd: bundle });
    const spec = JSON.parse(await readFile(join(bundle, "config.json"), "utf8"));
    spec.root = { path: rootfs, readonly: true };
    spec.process.terminal = false;
    spec.process.args = ["/bin/true"];
    await writeFile(join(bundle, "config.json"), JSON.stringify(spec));
    const times = [];
    for (let i = 0; i < 5; i++) times.push((await time(() => run("runc", ["--root", join(work, "runc"), "run", "--bundle", bundle, `bench${i}`]))).ms);
    peers.push(["runc run (busybox true)", median(times)]);
  }
  if (has("podman")) {
    const tar = join(work, "busybox.tar");
    await run("tar", ["-C", rootfs, "-cf", tar, "."]);
    const pod = ["--runtime", "runc", "--cgroup-manager", "cgroupfs"];
    try {
      await run("podman", [...pod, "import", tar, "slipway-bench-busybox"]);
      const times = [];
      const limits = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"];
      for (let i = 0; i < 5; i++) times.push((await time(() => run("podman", [...pod, "run", "--rm", "--network", "none", ...limits, "slipway-bench-busybox", "/bin/true"]))).ms);
      peers.push(["podman run --rm (busybox true)", median(times)]);
      await run("podman", [...pod, "rmi", "slipway-bench-busybox"]).catch(() => undefined);
    } catch (err) {
      console.error(`podman skipped: ${err.message.split("\n")[0]}`);
    }
  }

  printTable("Slipway deploy path (podcast image, whole CLI commands)", ["measurement", "time", "target"], [
    ["cold build + deploy (debootstrap, apt, version, flip)", fmt(cold.ms), ""],
    ["unchanged deploy (median of 3)", fmt(median(unchanged)), ""],
    ["code-only deploy, to live (median of 3)", fmt(median(codeOnly)), "< 2 s"],
    ["cold start: container to handler ready (server, median)", fmt(median(coldStarts)), ""],
    ["first call after a code-only deploy (client, median)", fmt(median(firstCalls)), ""],
    ["warm call latency p50 (HTTP round trip, trivial handler)", fmt(percentile(warm, 50)), "< 10 ms"],
    ["warm call latency p99", fmt(percentile(warm, 99)), ""],
  ]);
  printTable("Container start, same run", ["runtime", "median", "ratio to Slipway cold start"], [
    ["slipway cold start (runc + overlay + node runtime + handler load)", fmt(median(coldStarts)), "1.00"],
    ...peers.map(([name, ms]) => [name, fmt(ms), (ms / median(coldStarts)).toFixed(2)]),
  ]);
} finally {
  server.kill("SIGTERM");
  await new Promise((r) => server.once("exit", r));
  await rm(work, { recursive: true, force: true });
}
