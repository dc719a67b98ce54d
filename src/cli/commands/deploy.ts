// `slipway deploy APP_FILE`: build (cached), upload code, make a version, flip the deployment.
import type { Command } from "commander";
import { clientFrom, loadConfig } from "../config.js";
import { buildArgs, showBuildEvent } from "../build-progress.js";
import { runCommand } from "../output.js";

interface DeployResult {
  app: string;
  deployment: string;
  version: number;
  created: boolean;
  moved: { from: number | null; to: number } | null;
  images: Record<string, { digest: string; durationMs: number; steps: Array<{ status: string }> }>;
  durationMs: number;
}

export function register(program: Command): void {
  program
    .command("deploy <appFile>")
    .description("build the app's images (cached), upload its code, create a version and point the deployment at it")
    .option("-d, --deployment <name>", "deployment to move", "main")
    .option("--no-promote", "create the version without moving any deployment")
    .option("--force-build", "rebuild every step without using the cache")
    .option("--build-arg <KEY=VALUE...>", "value of a build argument the images declare with .arg()")
    .option("--json", "print the result as JSON")
    .action(async (appFile: string, opts: { deployment: string; promote: boolean; forceBuild?: boolean; buildArg?: string[]; json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const { deployAppFile } = await import("../../sdk/deploy.js");
        const client = clientFrom(loadConfig());
        const result = (await deployAppFile(client, appFile, {
          deployment: opts.deployment,
          promote: opts.promote,
          forceBuild: Boolean(opts.forceBuild),
          buildArgs: buildArgs(opts.buildArg),
          onEvent: (e) => showBuildEvent(out, e),
        })) as DeployResult;
        out.result(result, () => summary(result));
      });
    });
}

function summary(r: DeployResult): string {
  const built = Object.values(r.images).reduce((n, i) => n + i.steps.filter((s) => s.status === "miss").length, 0);
  const head = r.created
    ? r.moved
      ? `${r.app}: v${r.version} is live on ${r.deployment}${r.moved.from ? ` (was v${r.moved.from})` : ""}`
      : `${r.app}: created v${r.version} (no deployment moved)`
    : `${r.app}: no changes; ${r.deployment} stays on v${r.version}`;
  return `${head}\n${built} step(s) built, ${(r.durationMs / 1000).toFixed(2)}s on the server`;
}
