// `slipway config set|unset|show|history APP`: runtime configuration apart from code. A change makes a config
// revision and a new version with the same images and code, then flips the deployment; secrets show masked.
import type { Command } from "commander";
import { clientFrom, loadConfig } from "../config.js";
import { parseKeyValues } from "../key-values.js";
import { runCommand } from "../output.js";

interface RevisionView {
  revision: number;
  deployment: string;
  parent: number | null;
  entries: Array<{ key: string; value: string; secret: boolean }>;
  changes: Array<{ key: string; op: string; secret: boolean }>;
  actor: string;
  at: number;
}
interface ChangeView {
  changed: boolean;
  version: number;
  config: RevisionView;
  moved: { from: number | null; to: number; deployment: string } | null;
}

const path = (app: string, rest = "") => `/api/v1/apps/${encodeURIComponent(app)}/config${rest}`;

function entries(r: RevisionView): string {
  return r.entries.length ? r.entries.map((e) => `${e.key}=${e.value}${e.secret ? "  (secret)" : ""}`).join("\n") : "(no configuration)";
}

export function register(program: Command): void {
  const config = program.command("config").description("runtime configuration (environment values and secrets), apart from code");

  config
    .command("set <app> <pairs...>")
    .description("set KEY=VALUE pairs: a new config revision and version (no build), and the deployment flips to it")
    .option("--secret", "the values are secrets: sealed at rest, masked when shown")
    .option("-d, --deployment <name>", "deployment to change", "main")
    .option("--json", "print JSON")
    .action(async (app: string, pairs: string[], opts: { secret?: boolean; deployment: string; json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const set = parseKeyValues(pairs, "config value");
        const res = await clientFrom(loadConfig()).post<ChangeView>(path(app), { deployment: opts.deployment, set, secret: Boolean(opts.secret) });
        out.result(res, () => summary(app, opts.deployment, res));
      });
    });

  config
    .command("unset <app> <keys...>")
    .description("remove keys: a new config revision and version, and the deployment flips to it")
    .option("-d, --deployment <name>", "deployment to change", "main")
    .option("--json", "print JSON")
    .action(async (app: string, keys: string[], opts: { deployment: string; json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const res = await clientFrom(loadConfig()).post<ChangeView>(path(app), { deployment: opts.deployment, unset: keys });
        out.result(res, () => summary(app, opts.deployment, res));
      });
    });

  config
    .command("show <app>")
    .description("the configuration the deployment's version runs with (secrets masked)")
    .option("-d, --deployment <name>", "deployment", "main")
    .option("--json", "print JSON")
    .action(async (app: string, opts: { deployment: string; json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const res = await clientFrom(loadConfig()).json<RevisionView & { version: number }>(`${path(app)}?deployment=${encodeURIComponent(opts.deployment)}`);
        out.result(res, () => `${app}/${opts.deployment} v${res.version}, config revision ${res.revision}\n${entries(res)}`);
      });
    });

  config
    .command("history <app>")
    .description("every config revision: who, when, what changed")
    .option("-d, --deployment <name>", "only revisions made for this deployment")
    .option("--json", "print JSON")
    .action(async (app: string, opts: { deployment?: string; json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const q = opts.deployment ? `?deployment=${encodeURIComponent(opts.deployment)}` : "";
        const res = await clientFrom(loadConfig()).json<{ revisions: RevisionView[] }>(path(app, `/history${q}`));
        out.result(res, () =>
          (res.revisions.length ? res.revisions : null)
            ?.map(
              (r) =>
                `#${r.revision}  ${new Date(r.at).toISOString()}  ${r.deployment.padEnd(10)} by ${r.actor}  ${r.changes.map((c) => `${c.op === "set" ? "+" : "-"}${c.key}${c.secret ? " (secret)" : ""}`).join(" ")}`,
            )
            .join("\n") ?? `${app}: no config revisions yet`,
        );
      });
    });
}

function summary(app: string, deployment: string, res: ChangeView): string {
  if (!res.changed) return `${app}/${deployment}: configuration unchanged; stays on v${res.version}`;
  return `${app}/${deployment}: config revision ${res.config.revision}, v${res.version} is live${res.moved?.from ? ` (was v${res.moved.from})` : ""}\n${entries(res.config)}`;
}
