// `slipway versions|history|rollback|promote`: read and move deployment pointers.
import type { Command } from "commander";
import { InvalidError } from "../../core/errors.js";
import { clientFrom, loadConfig } from "../config.js";
import { runCommand } from "../output.js";

interface VersionView {
  number: number;
  releaseDigest: string;
  createdAt: number;
  createdBy: string;
  source: { gitCommit?: string; dirty?: boolean };
  content: { functions: Record<string, { image: string }> };
}
interface DeploymentView {
  name: string;
  version: number | null;
  revision: number;
}
interface HistoryView {
  deployment: string;
  revision: number;
  fromVersion: number | null;
  toVersion: number | null;
  fromTraffic?: Array<{ version: number; weight: number }> | null;
  toTraffic?: Array<{ version: number; weight: number }> | null;
  reason: string;
  actor: string;
  at: number;
  note: string | null;
}
interface MoveView {
  app: string;
  deployment: string;
  from: number | null;
  to: number;
  fromTraffic?: HistoryView["toTraffic"];
  traffic?: HistoryView["toTraffic"];
  revision: number;
  reason: string;
}

const app = encodeURIComponent;

function pointer(version: number | null, split: HistoryView["toTraffic"] | undefined): string {
  if (split) return split.map((e) => `v${e.version}=${e.weight}%`).join(" ");
  return version ? `v${version}` : "(none)";
}

function parseVersion(v: string): number {
  const n = Number(v.replace(/^v/, ""));
  if (!Number.isInteger(n) || n <= 0) throw new InvalidError(`${JSON.stringify(v)} is not a version (use vN or N)`);
  return n;
}

export function register(program: Command): void {
  program
    .command("versions <app>")
    .description("list an app's versions and which deployments point at them")
    .option("--json", "print JSON")
    .action(async (name: string, opts: { json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const res = await clientFrom(loadConfig()).json<{ versions: VersionView[]; deployments: DeploymentView[] }>(`/api/v1/apps/${app(name)}/versions`);
        out.result(res, () =>
          res.versions
            .map((v) => {
              const on = res.deployments.filter((d) => d.version === v.number).map((d) => d.name);
              const src = v.source.gitCommit ? ` ${v.source.gitCommit.slice(0, 10)}${v.source.dirty ? "+dirty" : ""}` : "";
              return `v${v.number}  ${new Date(v.createdAt).toISOString()}  ${v.releaseDigest.slice(0, 19)}…${src}${on.length ? `  ← ${on.join(", ")}` : ""}`;
            })
            .join("\n"),
        );
      });
    });

  program
    .command("history <app>")
    .description("every pointer move: who, when, from → to, why")
    .option("-d, --deployment <name>", "only this deployment")
    .option("--json", "print JSON")
    .action(async (name: string, opts: { deployment?: string; json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const q = opts.deployment ? `?deployment=${encodeURIComponent(opts.deployment)}` : "";
        const res = await clientFrom(loadConfig()).json<{ history: HistoryView[] }>(`/api/v1/apps/${app(name)}/history${q}`);
        out.result(res, () =>
          res.history
            .map(
              (h) =>
                `${new Date(h.at).toISOString()}  ${h.deployment.padEnd(10)} ${pointer(h.fromVersion, h.fromTraffic)} → ${pointer(h.toVersion, h.toTraffic)}  ${h.reason.padEnd(8)} by ${h.actor}${h.note ? `  (${h.note})` : ""}`,
            )
            .join("\n"),
        );
      });
    });

  program
    .command("rollback <app>")
    .description("move a deployment back to the version it pointed at before (or --to vN)")
    .option("-d, --deployment <name>", "deployment to move", "main")
    .option("--to <version>", "the version to go back to")
    .option("--json", "print JSON")
    .action(async (name: string, opts: { deployment: string; to?: string; json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const body = { deployment: opts.deployment, ...(opts.to ? { to: parseVersion(opts.to) } : {}) };
        const res = await clientFrom(loadConfig()).post<MoveView>(`/api/v1/apps/${app(name)}/rollback`, body);
        out.result(res, `${res.app}/${res.deployment}: ${pointer(res.from, res.fromTraffic)} → ${pointer(res.to, res.traffic)} (${res.reason})`);
      });
    });

  program
    .command("promote <app>")
    .description("point a deployment at another deployment's version (--from) or at a version (--version); no rebuild")
    .option("--from <deployment>", "take this deployment's version")
    .option("--version <version>", "take this version")
    .option("--to <deployment>", "deployment to move", "main")
    .option("--json", "print JSON")
    .action(async (name: string, opts: { from?: string; version?: string; to: string; json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        if ((opts.from === undefined) === (opts.version === undefined)) throw new InvalidError("give exactly one of --from DEPLOYMENT or --version vN");
        const body = { to: opts.to, ...(opts.from ? { from: opts.from } : { version: parseVersion(opts.version!) }) };
        const res = await clientFrom(loadConfig()).post<MoveView>(`/api/v1/apps/${app(name)}/promote`, body);
        out.result(res, `${res.app}/${res.deployment}: ${pointer(res.from, res.fromTraffic)} → ${pointer(res.to, res.traffic)} (${res.reason})`);
      });
    });
}
