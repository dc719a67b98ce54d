// `slipway status APP [--deploy ID]`: what each deployment points at, containers per version, recent deploys.
import type { Command } from "commander";
import { clientFrom, loadConfig } from "../config.js";
import { describeStatus, waitForDeploy, type AppStatusView, type DeployStatusView } from "../deploy-wait.js";
import { runCommand } from "../output.js";

export function register(program: Command): void {
  program
    .command("status <app>")
    .description("deployments, containers per version (idle, busy, starting; draining ones marked) and recent deploys")
    .option("--deploy <id>", "follow this deploy until it is live or failed")
    .option("--json", "print JSON")
    .action(async (app: string, opts: { deploy?: string; json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const client = clientFrom(loadConfig());
        if (opts.deploy) {
          const waited = await waitForDeploy(client, opts.deploy, out);
          out.result(waited, waited.summary);
          return;
        }
        const res = await client.json<AppStatusView & { deploys: DeployStatusView[] }>(`/api/v1/apps/${encodeURIComponent(app)}/status`);
        out.result(res, () =>
          [
            describeStatus(res),
            ...res.deploys.slice(0, 5).map((d) => `deploy ${d.id}: ${d.status}${d.version ? ` v${d.version}` : ""} → ${d.deployment}${d.error ? `: ${d.error.split("\n")[0]}` : ""}`),
          ].join("\n"),
        );
      });
    });
}
