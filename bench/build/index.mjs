// bench/build: one ~10-step image built by Slipway (SDK spec, `slipway build`), BuildKit (Debian's Docker engine)
// and `buildah bud --layers`, all in this run: cold, unchanged, a change in the last COPY, a change in the middle
// file (the requirements file a later RUN reads). Whole commands, CLI start included; Slipway's server-side build
// time beside each. Unchanged and last-COPY builds are sampled three times a round.   node bench/build/index.mjs
import { spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fmt, has, median, printTable, run, time } from "../lib/measure.mjs";

const ROOT = resolve(import.meta.dirname, "../..");
// The command users run (package.json's bin): client commands on Bun when installed, the server on Node.
const CLI = join(ROOT, "dist/cli/slipway");
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const work = await mkdtemp(join(tmpdir(), "slipway-bench-build-"));

// The build context: busybox rootfs tarball, a requirements file, an app directory of 200 files.
const ctx = join(work, "ctx");
await mkdir(join(ctx, "app"), { recursive: true });
const rootfs = join(work, "rootfs");
await mkdir(join(rootfs, "bin"), { recursive: true });
await mkdir(join(rootfs, "tmp"));
await cp("/bin/busybox", join(rootfs, "bin/busybox"));
for (const applet of (await run("/bin/busybox", ["--list"])).split("\n").filter((a) => a && a !== "busybox")) {
  await run("ln", ["-s", "busybox", join(rootfs, "bin", applet)]);
}
await run("tar", ["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "-C", rootfs, "-cf", join(ctx, "busybox.tar"), "."]);
await writeFile(join(ctx, "requirements.txt"), Array.from({ length: 40 }, (_, i) => `package-${i}==1.${i}.0`).join("\n") + "\n");
for (let i = 0; i < 200; i++) await writeFile(join(ctx, "app", `module_${String(i).padStart(3, "0")}.py`), `# module ${i}\nVALUE = ${i}\n`.repeat(20));

const steps = [
  ["run", "head -c 50000000 /dev/urandom > /blob.bin"],
  ["run", "echo one > /one"],
  ["run", "mkdir -p /srv && echo two > /srv/two"],
  ["copy", "requirements.txt", "/srv/requirements.txt"],
  ["run", "wc -l /srv/requirements.txt > /srv/installed.txt"],
  ["run", "echo three > /three"],
  ["env", "APP_ENV", "bench"],
  ["workdir", "/srv/app"],
  ["copy", "app", "/srv/app"],
];
const dockerfile = (from) =>
  [`FROM ${from}`, ...steps.map(([op, a, b]) => (op === "run" ? `RUN ${a}` : op === "copy" ? `COPY ${a} ${b}` : op === "env" ? `ENV ${a}=${b}` : `WORKDIR ${a}`))].join("\n") + "\n";
const sdkSpec =
  `Image.fromTarball("./busybox.tar")` +
  steps.map(([op, a, b]) => (op === "run" ? `.run(${JSON.stringify(a)})` : op === "copy" ? `.copy(${JSON.stringify(a)}, ${JSON.stringify(b)})` : op === "env" ? `.env({ ${a}: ${JSON.stringify(b)} })` : `.workdir(${JSON.stringify(a)})`)).join("");
await writeFile(
  join(ctx, "app.ts"),
  `import { App, Image } from "slipway";\nexport const app = new App("bench");\napp.function("f", { image: ${sdkSpec}, handler: "./handler.ts" });\n`,
);
// The base alone: built before Slipway's cold build, as the peers have their base image imported before theirs.
await writeFile(
  join(ctx, "base.ts"),
  `import { App, Image } from "slipway";\nexport const app = new App("bench");\napp.function("f", { image: Image.fromTarball("./busybox.tar"), handler: "./handler.ts" });\n`,
);
await writeFile(join(ctx, "handler.ts"), "export default () => null;\n");
await writeFile(join(ctx, ".dockerignore"), "app.ts\nbase.ts\nhandler.ts\nDockerfile*\n");

const edits = {
  last: (n) => writeFile(join(ctx, "app", "module_199.py"), `# edit ${n}\n`),
  middle: (n) => writeFile(join(ctx, "requirements.txt"), `package-extra==${n}\n`, { flag: "a" }),
};

/**
 * One round for one builder: cold (after `reset` empties its build cache, keeping the base image), unchanged,
 * last-COPY and middle-file builds; and, for Slipway, a first build in an empty data directory.
 */
async function round(builder, r) {
  await restore();
  // Every timed build starts with the disk's writeback done (untimed `sync`), so that what one build or builder
  // wrote does not land on the next one's time.
  const timed = async (build) => {
    await run("sync", []);
    return build();
  };
  const row = {};
  if (builder.emptyDataDir) {
    await builder.emptyDataDir();
    row.first = await timed(builder.buildOnce);
  }
  await builder.reset();
  row.cold = await timed(builder.buildOnce);
  // The fast cases take a few tens of ms, where one hiccup of this shared machine shows: three samples a round each
  // (three unchanged rebuilds; three last-COPY changes, each a new edit), of which the round keeps the median.
  row.unchanged = middleOf(await repeat(3, () => timed(builder.buildOnce)));
  row.last = middleOf(
    await repeat(3, async (i) => {
      await edits.last(`${builder.name}-${r}-${i}`);
      return timed(builder.buildOnce);
    }),
  );
  await edits.middle(`${builder.name}-${r}`);
  row.middle = await timed(builder.buildOnce);
  return row;
}

async function repeat(n, fn) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await fn(i));
  return out;
}

/** The sample with the median total time (its server-side time travels with it). */
function middleOf(samples) {
  return [...samples].sort((a, b) => a.ms - b.ms)[Math.floor(samples.length / 2)];
}

const original = { req: await readFile(join(ctx, "requirements.txt")), last: await readFile(join(ctx, "app", "module_199.py")) };
const restore = async () => {
  await writeFile(join(ctx, "requirements.txt"), original.req);
  await writeFile(join(ctx, "app", "module_199.py"), original.last);
};

const builders = [];
const teardown = [];

// Slipway: a fresh server per cold run. As for the peers (the base imported with `docker import` / `podman import`
// before their first build, then only the build cache pruned), its base is imported before the timed cold build:
// an image of the base alone is built first (tarball stored, layer unpacked). The first build in an empty data
// directory, which also imports the base, is timed apart.
{
  let server = null;
  let env = null;
  const data = join(work, "slipway-data");
  const stop = async () => {
    if (!server) return;
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
    server = null;
  };
  const fresh = async () => {
    await stop();
    await rm(data, { recursive: true, force: true });
    const port = 18000 + Math.floor(Math.random() * 1000);
    env = { ...process.env, SLIPWAY_URL: `http://127.0.0.1:${port}`, SLIPWAY_DATA: data };
    server = spawn(CLI, ["server", "--port", String(port), "--data", data], { stdio: "ignore" });
    for (let i = 0; i < 300; i++) {
      try {
        if ((await (await fetch(`${env.SLIPWAY_URL}/api/v1/health`)).json()).ok) break;
      } catch {}
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const buildOnce = async () => {
    const { ms, value } = await time(() => run(CLI, ["build", join(ctx, "app.ts"), "--json"], { env }));
    return { ms, server: JSON.parse(value).images.f.durationMs };
  };
  const reset = async () => {
    await fresh();
    await run(CLI, ["build", join(ctx, "base.ts")], { env });
  };
  builders.push({ name: "slipway", reset, buildOnce, emptyDataDir: fresh });
  teardown.push(stop);
}

// BuildKit through Debian's Docker engine, on its own socket and directories.
if (has("dockerd") && has("/usr/bin/docker")) {
  const sock = join(work, "docker.sock");
  const dockerEnv = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_BUILDKIT: "1" };
  const dockerd = spawn(
    "dockerd",
    ["--iptables=false", "--bridge=none", "--storage-driver=overlay2", "-H", `unix://${sock}`, "--data-root", join(work, "docker-root"), "--exec-root", join(work, "docker-exec"), "--pidfile", join(work, "docker.pid")],
    { stdio: "ignore" },
  );
  teardown.push(async () => {
    dockerd.kill("SIGTERM");
    await new Promise((r) => dockerd.once("exit", r));
  });
  try {
    for (let i = 0; i < 100; i++) {
      try {
        await run("/usr/bin/docker", ["info"], { env: dockerEnv });
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    await run("/usr/bin/docker", ["import", join(ctx, "busybox.tar"), "busybox:bench"], { env: dockerEnv });
    await writeFile(join(ctx, "Dockerfile.buildkit"), dockerfile("busybox:bench"));
    builders.push({
      name: "buildkit",
      reset: async () => {
        await run("/usr/bin/docker", ["builder", "prune", "-af"], { env: dockerEnv });
        await run("/usr/bin/docker", ["image", "rm", "-f", "bench:latest"], { env: dockerEnv }).catch(() => undefined);
      },
      buildOnce: async () => ({
        ms: (await time(() => run("/usr/bin/docker", ["build", "--network", "host", "-q", "-f", join(ctx, "Dockerfile.buildkit"), "-t", "bench", ctx], { env: dockerEnv }))).ms,
      }),
    });
  } catch (err) {
    console.error(`BuildKit skipped: ${err.message.split("\n")[0]}`);
  }
} else console.error("BuildKit skipped: dockerd or /usr/bin/docker is not installed");

// buildah bud --layers (chroot isolation), with podman's storage holding the base.
if (has("buildah") && has("podman")) {
  try {
    await run("podman", ["import", join(ctx, "busybox.tar"), "localhost/busybox:bench"]);
    await writeFile(join(ctx, "Dockerfile.buildah"), dockerfile("localhost/busybox:bench"));
    builders.push({
      name: "buildah",
      reset: async () => {
        await run("buildah", ["rmi", "-f", "localhost/bench:latest"]).catch(() => undefined);
        await run("buildah", ["rmi", "--prune"]).catch(() => undefined);
      },
      buildOnce: async () => ({
        ms: (await time(() => run("buildah", ["bud", "--layers", "--isolation", "chroot", "-q", "-f", join(ctx, "Dockerfile.buildah"), "-t", "bench", ctx]))).ms,
      }),
    });
    teardown.push(async () => {
      await run("buildah", ["rmi", "-f", "localhost/bench:latest", "localhost/busybox:bench"]).catch(() => undefined);
      await run("buildah", ["rmi", "--prune"]).catch(() => undefined);
    });
  } catch (err) {
    console.error(`buildah skipped: ${err.message.split("\n")[0]}`);
  }
} else console.error("buildah skipped: buildah or podman is not installed");

// Rounds interleave the builders (slipway, BuildKit, buildah, then again), so that a noisy minute on this shared
// machine falls on all of them rather than on whichever ran then.
const rows = Object.fromEntries(builders.map((b) => [b.name, []]));
try {
  for (let r = 0; r < RUNS; r++) for (const b of builders) rows[b.name].push(await round(b, r));
} finally {
  for (const stop of teardown) await stop();
}
const results = {};
for (const [name, rs] of Object.entries(rows)) {
  results[name] = Object.fromEntries(
    ["cold", "unchanged", "last", "middle"].map((k) => [
      k,
      { total: median(rs.map((row) => row[k].ms)), server: rs[0][k].server === undefined ? undefined : median(rs.map((row) => row[k].server)) },
    ]),
  );
}
// The runtimes' own start, the floor of any command written for them (measured now, like the rest), and the one
// the launcher uses for client commands.
const startOf = async (cmd) => {
  const ms = [];
  for (let i = 0; i < 7; i++) ms.push((await time(() => run(cmd, ["-e", "0"]))).ms);
  return median(ms);
};
const bunRel = /^BUN=(.*)$/m.exec(await readFile(CLI, "utf8"))?.[1] ?? "";
const clientRuntime = (await run(CLI, ["--version"])).trim();
const starts = [`Node ${fmt(await startOf(process.execPath))}`, bunRel ? `Bun ${fmt(await startOf(join(ROOT, "dist/cli", bunRel)))}` : "Bun not installed"];

const cases = [
  ["cold", "cold build"],
  ["unchanged", "unchanged rebuild"],
  ["last", "last COPY changed"],
  ["middle", "middle file changed"],
];
const ratio = (a, b) => (a && b ? (a / b).toFixed(2) : "n/a");
printTable(
  `Build, ${RUNS} rounds each (medians; whole commands; unchanged and last COPY: median of 3 per round)`,
  ["case", "slipway", "slipway server-side", "BuildKit", "buildah", "slipway / BuildKit", "target"],
  cases.map(([k, label]) => [
    label,
    fmt(results.slipway[k].total),
    fmt(results.slipway[k].server),
    results.buildkit ? fmt(results.buildkit[k].total) : "n/a",
    results.buildah ? fmt(results.buildah[k].total) : "n/a",
    ratio(results.slipway[k].total, results.buildkit?.[k].total),
    k === "unchanged" || k === "last" ? "≤ 0.50" : "≤ 1.00",
  ]),
);
if (rows.slipway?.[0]?.first) {
  const first = rows.slipway.map((row) => row.first);
  console.log(
    `Slipway's first build in an empty data directory (base tarball imported and unpacked too): ${fmt(median(first.map((f) => f.ms)))}` +
      ` (server-side ${fmt(median(first.map((f) => f.server)))}); BuildKit's cold build has its base imported beforehand`,
  );
}
console.log(`slipway --version: ${clientRuntime}; runtimes' own start here (-e 0, median of 7): ${starts.join(", ")}; BuildKit's unchanged rebuild / 2: ${results.buildkit ? fmt(results.buildkit.unchanged.total / 2) : "n/a"}`);
await rm(work, { recursive: true, force: true });
