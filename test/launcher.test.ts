// The `slipway` launcher (dist/cli/slipway, package.json's bin): client commands as the compiled client (one Bun
// executable) when the build could make one, else main.js on Bun when Bun runs here, else Node; `server` and `gc`
// always on Node (they load better-sqlite3, a Node addon); SLIPWAY_RUNTIME=node for all.
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { CLI, freePort } from "./helpers/cli.js";
import { tempDirs } from "./helpers/temp-dirs.js";

const launcher = readFileSync(CLI, "utf8");
const bunPath = /^BUN=(.*)$/m.exec(launcher)?.[1] ?? "";
const clientPath = /^CLIENT=(.*)$/m.exec(launcher)?.[1] ?? "";
const slipway = (args: string[], env: Record<string, string> = {}, cmd = CLI) =>
  execFileSync(cmd, args, { env: { ...process.env, ...env }, encoding: "utf8" }).trim();
const temp = tempDirs();

/**
 * A copy of the launcher in a fresh directory, beside the real main.js (and Bun's settings for it), naming these
 * paths (absolute, or "" for none) as Bun and the compiled client.
 */
async function launcherCopy(paths: { bun: string; client: string }): Promise<string> {
  const dir = await temp("slipway-launcher-");
  const rel = (p: string) => (p ? relative(dir, p) : "");
  const text = launcher.replace(/^BUN=.*$/m, `BUN=${rel(paths.bun)}`).replace(/^CLIENT=.*$/m, `CLIENT=${rel(paths.client)}`);
  writeFileSync(join(dir, "slipway"), text, { mode: 0o755 });
  for (const file of ["main.js", "bunfig.toml"]) symlinkSync(join(CLI, "..", file), join(dir, file));
  return join(dir, "slipway");
}

/** The real Bun, without the compiled client (as when it is gone since the build). */
const bunOnly = () => launcherCopy({ bun: bunPath && join(CLI, "..", bunPath), client: "" });

describe("the slipway launcher", () => {
  it.skipIf(clientPath === "")("runs client commands as the compiled client, also through a symlink as npm links bins", async () => {
    const link = join(await temp("slipway-launcher-"), "slipway");
    symlinkSync(CLI, link);
    expect(slipway(["--version"])).toMatch(/^\d+\.\d+\.\d+ \(Bun \d[^,]*, compiled\)$/);
    expect(slipway(["--version"], {}, link)).toMatch(/\(Bun \d[^,]*, compiled\)/);
  });
  if (clientPath === "") console.log("skipped the compiled-client check: the build made no compiled client (it needs a working Bun)");

  it.skipIf(bunPath === "")("runs main.js on Bun when the compiled client is gone since the build", async () => {
    const copy = await bunOnly();
    expect(slipway(["--version"], {}, copy)).toMatch(/^\d+\.\d+\.\d+ \(Bun \d[^,]*\)$/);
  });
  if (bunPath === "") console.log("skipped the Bun check: the build found no working Bun (optional dependency @oven/bun-linux-x64)");

  it("runs on Node when Bun is gone since the build, and when called by a bare name from its own directory", async () => {
    const copy = await launcherCopy({ bun: "/no-such/bun", client: "/no-such/client" });
    expect(slipway(["--version"], {}, copy)).toMatch(/\(Node v\d/);
    const bare = spawnSync("sh", ["slipway", "--version"], { cwd: join(CLI, ".."), encoding: "utf8" });
    expect(bare.stderr).toBe("");
    expect(bare.stdout).toMatch(clientPath ? /\(Bun \d[^,]*, compiled\)/ : bunPath ? /\(Bun \d/ : /\(Node v\d/);
  });

  it("runs every command on Node with SLIPWAY_RUNTIME=node", () => {
    expect(slipway(["--version"], { SLIPWAY_RUNTIME: "node" })).toMatch(/\(Node v\d/);
  });

  it("runs server and gc on Node whatever the runtime of client commands", async () => {
    // A `node` first on PATH that says how it was called: the launcher's choice, observed without starting a server.
    const bin = await temp("slipway-launcher-");
    writeFileSync(join(bin, "node"), '#!/bin/sh\necho "node $*"\n');
    chmodSync(join(bin, "node"), 0o755);
    const env = { PATH: `${bin}:${process.env.PATH}` };
    expect(slipway(["server", "--port", "1"], env)).toMatch(/^node \S+\/dist\/cli\/main\.js server --port 1$/);
    expect(slipway(["gc", "--dry-run"], env)).toMatch(/^node \S+\/dist\/cli\/main\.js gc --dry-run$/);
    if (bunPath !== "") expect(slipway(["--version"], env)).toMatch(/\(Bun \d/);
  });

  // Each way of running the client loads an app file, bundles it and its handler with esbuild (an empty client cache:
  // nothing to reuse) and gets as far as the server, which is not there.
  const runtimes: Array<[string, () => Promise<string>, Record<string, string>, RegExp]> = [
    ["the compiled client", async () => CLI, {}, /compiled/],
    ["main.js on Bun", bunOnly, {}, /\(Bun \d[^,]*\)$/],
    ["Node", async () => CLI, { SLIPWAY_RUNTIME: "node" }, /Node/],
  ];
  for (const [name, launcherPath, env, version] of runtimes) {
    const missing = (name === "the compiled client" && clientPath === "") || (name === "main.js on Bun" && bunPath === "");
    it.skipIf(missing)(`bundles an app file and its handler with esbuild as ${name}`, async () => {
      const app = await temp("slipway-launcher-app-");
      writeFileSync(
        join(app, "app.ts"),
        'import { App, Image } from "slipway";\nexport const app = new App("mini");\napp.function("f", { image: Image.fromTarball("./base.tar"), handler: "./handler.ts" });\n',
      );
      writeFileSync(join(app, "handler.ts"), "export default (x: number): number => x;\n");
      writeFileSync(join(app, "base.tar"), Buffer.alloc(1024));
      // Bun reads these where it runs unless told not to; Node does not, and neither does Slipway on either.
      writeFileSync(join(app, ".env"), "SLIPWAY_URL=http://127.0.0.1:1\n");
      writeFileSync(join(app, "bunfig.toml"), 'preload = ["./preload.ts"]\n');
      writeFileSync(join(app, "preload.ts"), 'console.error("preloaded from the app directory");\n');
      const cache = await temp("slipway-launcher-cache-");
      const port = await freePort();
      const cmd = await launcherPath();
      const all = { ...env, SLIPWAY_CACHE: cache, SLIPWAY_URL: `http://127.0.0.1:${port}`, SLIPWAY_TOKEN: "unused" };
      expect(slipway(["--version"], all, cmd)).toMatch(version);
      // From the app's directory, as users run it: none of Slipway's packages are found from there.
      const run = spawnSync(cmd, ["build", "app.ts"], { cwd: app, env: { ...process.env, ...all }, encoding: "utf8" });
      expect(run.stderr).toMatch(new RegExp(`cannot reach the Slipway server at http://127\\.0\\.0\\.1:${port}`));
      expect(run.stderr).not.toMatch(/preloaded/);
      expect(run.status).toBe(6);
      // Both bundles were made and kept: the app file's and the handler's.
      expect(readdirSync(join(cache, "out")).filter((f) => f.endsWith(".mjs"))).toHaveLength(2);
    });
  }
});

describe("the slipway command", () => {
  it("lists every command in its help, though it registers only the one being run", () => {
    const help = slipway(["--help"]);
    for (const name of ["server", "build", "deploy", "gc", "invoke", "versions", "history", "rollback", "promote", "traffic", "config", "status", "webhooks"]) {
      expect(help).toMatch(new RegExp(`^  ${name}\\b`, "m"));
    }
    expect(slipway(["build", "--help"])).toMatch(/^Usage: slipway build \[options\] <appFile>/);
  });

  it("suggests the command a typo meant, and exits 2", () => {
    const typo = spawnSync(CLI, ["biuld", "app.ts"], { encoding: "utf8" });
    expect(typo.status).toBe(2);
    expect(typo.stderr).toMatch(/unknown command 'biuld'[\s\S]*Did you mean build\?/);
  });
});
