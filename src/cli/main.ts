#!/usr/bin/env node
// The `slipway` command. Each command lives in its own file and loads what it needs only when it runs, so that
// client commands start fast.
import { Command } from "commander";
import { register as registerBuild } from "./commands/build.js";
import { register as registerDeploy } from "./commands/deploy.js";
import { register as registerGc } from "./commands/gc.js";
import { register as registerInvoke } from "./commands/invoke.js";
import { register as registerPointers } from "./commands/pointers.js";
import { register as registerServer } from "./commands/server.js";
import { register as registerConfig } from "./commands/config.js";
import { register as registerStatus } from "./commands/status.js";
import { register as registerTraffic } from "./commands/traffic.js";
import { register as registerWebhooks } from "./commands/webhooks.js";

// Set by scripts/build.mjs: the version from package.json; true in the compiled client (src/cli/launcher.sh).
declare const SLIPWAY_VERSION: string | undefined;
declare const SLIPWAY_COMPILED: boolean | undefined;

const program = new Command();
program.name("slipway").description("push code and it runs: images by digest, atomic deployments, functions in containers");
// The runtime is part of the answer: the launcher picks Bun or Node per command (src/cli/launcher.sh).
const runtime = process.versions.bun
  ? `Bun ${process.versions.bun}${typeof SLIPWAY_COMPILED === "boolean" && SLIPWAY_COMPILED ? ", compiled" : ""}`
  : `Node ${process.version}`;
program.version(`${typeof SLIPWAY_VERSION === "string" ? SLIPWAY_VERSION : "dev"} (${runtime})`, "-V, --version");
// `slipway --version` only before a command: after one, `--version vN` is that command's (invoke, promote).
program.enablePositionalOptions();
// A usage error (unknown option, missing argument) is invalid input: exit 2, like every other invalid input.
program.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
// Each command file with the names it adds, in the order help lists them. Only the file of the command being run is
// registered (the rest cost a client command ~4 ms on Bun); no name, `help` or an unknown name registers them all,
// so help and the suggestions for a typo stay whole.
const registrars: Array<[string[], (program: Command) => void]> = [
  [["server"], registerServer],
  [["build"], registerBuild],
  [["deploy"], registerDeploy],
  [["gc"], registerGc],
  [["invoke"], registerInvoke],
  [["versions", "history", "rollback", "promote"], registerPointers],
  [["traffic"], registerTraffic],
  [["config"], registerConfig],
  [["status"], registerStatus],
  [["webhooks"], registerWebhooks],
];
const wanted = registrars.filter(([names]) => names.includes(process.argv[2] ?? ""));
for (const [, register] of wanted.length > 0 ? wanted : registrars) register(program);
await program.parseAsync(process.argv);
