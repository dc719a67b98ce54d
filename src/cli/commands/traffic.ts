// `slipway traffic APP DEPLOYMENT v7=90 v8=10`: split a deployment's calls between versions (a canary).
import type { Command } from "commander";
import { InvalidError } from "../../core/errors.js";
import { clientFrom, loadConfig } from "../config.js";
import { runCommand } from "../output.js";

interface MoveView {
  app: string;
  deployment: string;
  from: number | null;
  to: number;
  fromTraffic: Array<{ version: number; weight: number }> | null;
  traffic: Array<{ version: number; weight: number }> | null;
  revision: number;
}

const describe = (version: number | null, split: MoveView["traffic"]) =>
  split ? split.map((e) => `v${e.version}=${e.weight}%`).join(" ") : version === null ? "(none)" : `v${version}`;

/** `v7=90` (or `7=90`, `v7=90%`) → { version: 7, weight: 90 }; the server checks the split as a whole. */
function parseSplitArgs(args: string[]): Array<{ version: number; weight: number }> {
  return args.map((arg) => {
    const m = /^v?(\d+)=(\d+)%?$/.exec(arg.trim());
    if (!m) throw new InvalidError(`${JSON.stringify(arg)} is not VERSION=WEIGHT (e.g. v7=90)`, { arg });
    return { version: Number(m[1]), weight: Number(m[2]) };
  });
}

export function register(program: Command): void {
  program
    .command("traffic <app> <deployment> <split...>")
    .description("split a deployment's calls between versions by whole-percent weights summing to 100 (v7=90 v8=10); v8=100 sends all to one")
    .option("--json", "print JSON")
    .action(async (app: string, deployment: string, split: string[], opts: { json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const body = { deployment, split: parseSplitArgs(split) };
        const res = await clientFrom(loadConfig()).post<MoveView>(`/api/v1/apps/${encodeURIComponent(app)}/traffic`, body);
        out.result(res, `${res.app}/${res.deployment}: ${describe(res.from, res.fromTraffic)} → ${describe(res.to, res.traffic)} (revision ${res.revision})`);
      });
    });
}
