// The `slipway` launcher (dist/cli/slipway, package.json's bin): client commands on Bun when the build found it
// working, `server` and `gc` always on Node (they load better-sqlite3, a Node addon), SLIPWAY_RUNTIME=node for all.
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CLI } from "./helpers/cli.js";
import { tempDirs } from "./helpers/temp-dirs.js";

const bunPath = /^BUN=(.*)$/m.exec(readFileSync(CLI, "utf8"))?.[1] ?? "";
const slipway = (args: string[], env: Record<string, string> = {}, cmd = CLI) =>
  execFileSync(cmd, args, { env: { ...process.env, ...env }, encoding: "utf8" }).trim();
const temp = tempDirs();

describe("the slipway launcher", () => {
  it.skipIf(bunPath === "")("runs client commands on Bun, also through a symlink as npm links bins", async () => {
    const link = join(await temp("slipway-launcher-"), "slipway");
    symlinkSync(CLI, link);
    expect(slipway(["--version"])).toMatch(/^\d+\.\d+\.\d+ \(Bun \d/);
    expect(slipway(["--version"], {}, link)).toMatch(/\(Bun \d/);
  });
  if (bunPath === "") console.log("skipped the Bun check: the build found no working Bun (optional dependency @oven/bun-linux-x64)");

  it("runs on Node when Bun is gone since the build, and when called by a bare name from its own directory", async () => {
    // A launcher beside which Bun's recorded path leads nowhere; main.js is the real one.
    const dir = await temp("slipway-launcher-");
    writeFileSync(join(dir, "slipway"), readFileSync(CLI, "utf8").replace(/^BUN=.*$/m, "BUN=../no-such/bun"), { mode: 0o755 });
    symlinkSync(join(CLI, "../main.js"), join(dir, "main.js"));
    expect(slipway(["--version"], {}, join(dir, "slipway"))).toMatch(/\(Node v\d/);
    const bare = spawnSync("sh", ["slipway", "--version"], { cwd: join(CLI, ".."), encoding: "utf8" });
    expect(bare.stderr).toBe("");
    expect(bare.stdout).toMatch(bunPath ? /\(Bun \d/ : /\(Node v\d/);
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
