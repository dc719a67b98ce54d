// `slipway deploy APP_FILE`: build (cached), upload code, make a version, warm and smoke-test it, flip the
// deployment; `--wait` follows the deploy through the status API until it is live or failed.
import type { Command } from "commander";
import { InvalidError, UnavailableError, isSlipwayError } from "../../core/errors.js";
import { clientFrom, loadConfig } from "../config.js";
import { showBuildEvent } from "../build-progress.js";
import { parseKeyValues } from "../key-values.js";
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
    .option("--smoke <json>", "call the new version with this input before flipping; a failure leaves the deployment where it was")
    .option("--smoke-function <name>", "the function --smoke calls (needed when the app has several)")
    .option("--wait", "return only when the deploy is live (or failed), following it through the status API")
    .option("--json", "print the result as JSON")
    .action(async (appFile: string, opts: DeployOptions) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const { deployAppFile } = await import("../../sdk/deploy.js");
        const config = loadConfig();
        const client = clientFrom(config);
        let smoke: { function?: string; input: unknown } | undefined;
        if (opts.smoke !== undefined) {
          try {
            smoke = { input: JSON.parse(opts.smoke) as unknown, ...(opts.smokeFunction ? { function: opts.smokeFunction } : {}) };
          } catch (err) {
            throw new InvalidError(`--smoke is not valid JSON: ${(err as Error).message}`);
          }
        } else if (opts.smokeFunction) {
          throw new InvalidError("--smoke-function needs --smoke INPUT");
        }
        let deployId: string | null = null;
        let result: DeployResult | null = null;
        try {
          result = (await deployAppFile(client, appFile, {
            cacheDir: config.cacheDir,
            deployment: opts.deployment,
            promote: opts.promote,
            forceBuild: Boolean(opts.forceBuild),
            buildArgs: parseKeyValues(opts.buildArg, "--build-arg"),
            smoke,
            onEvent: (e) => {
              const ev = e as { type?: string; deploy?: string };
              if (ev.type === "accepted" && ev.deploy) deployId = ev.deploy;
              showBuildEvent(out, e);
            },
          })) as DeployResult;
        } catch (err) {
          // A cut stream does not stop the deploy on the server: with --wait, follow it there.
          if (!(opts.wait && deployId && isSlipwayError(err) && err.code === "unavailable")) throw err;
          out.progress(`lost the deploy stream (${err.message}); following deploy ${deployId} through the status API`);
        }
        if (!opts.wait) {
          out.result(result, () => summary(result!));
          return;
        }
        if (!deployId) throw new UnavailableError("the server did not say which deploy it started, so there is nothing to wait for");
        const { waitForDeploy } = await import("../deploy-wait.js");
        const waited = await waitForDeploy(client, deployId, out);
        out.result({ ...(result ?? {}), ...waited }, () => `${result ? summary(result) + "\n" : ""}${waited.summary}`);
      });
    });
}

interface DeployOptions {
  deployment: string;
  promote: boolean;
  forceBuild?: boolean;
  buildArg?: string[];
  smoke?: string;
  smokeFunction?: string;
  wait?: boolean;
  json?: boolean;
}

function summary(r: DeployResult): string {
  const built = Object.values(r.images).reduce((n, i) => n + i.steps.filter((s) => s.status === "miss").length, 0);
  const was = r.moved?.from ? ` (was v${r.moved.from})` : "";
  const head = r.created
    ? r.moved
      ? `${r.app}: v${r.version} is live on ${r.deployment}${was}`
      : `${r.app}: created v${r.version} (no deployment moved)`
    : r.moved
      ? `${r.app}: ${r.deployment} now runs v${r.version}${was}, which already had this content (no new version)`
      : `${r.app}: no changes; ${r.deployment} stays on v${r.version}`;
  return `${head}\n${built} step(s) built, ${(r.durationMs / 1000).toFixed(2)}s on the server`;
}
