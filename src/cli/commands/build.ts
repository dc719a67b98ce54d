// `slipway build APP_FILE`: builds the app's images (cached) without making a version; --explain says why each
// step hit or missed.
import type { Command } from "commander";
import { clientFrom, loadConfig } from "../config.js";
import { showBuildEvent } from "../build-progress.js";
import { parseKeyValues } from "../key-values.js";
import { runCommand } from "../output.js";

interface BuildResult {
  app: string;
  images: Record<string, { digest: string; durationMs: number; steps: Array<{ text: string; status: string; reason?: string }> }>;
}

export function register(program: Command): void {
  program
    .command("build <appFile>")
    .description("build the app's images without deploying; every miss says what changed since the last build")
    .option("--explain", "also say, for every hit, why it hit")
    .option("--force-build", "rebuild every step without using the cache (other images' cache entries stay)")
    .option("--build-arg <KEY=VALUE...>", "value of a build argument the images declare with .arg()")
    .option("--json", "print the result as JSON")
    .action(async (appFile: string, opts: { explain?: boolean; forceBuild?: boolean; buildArg?: string[]; json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const { buildAppFile } = await import("../../sdk/deploy.js");
        const config = loadConfig();
        const result = (await buildAppFile(clientFrom(config), appFile, {
          cacheDir: config.cacheDir,
          forceBuild: Boolean(opts.forceBuild),
          buildArgs: parseKeyValues(opts.buildArg, "--build-arg"),
          onEvent: (e) => showBuildEvent(out, e, { explainHits: Boolean(opts.explain) }),
        })) as BuildResult;
        out.result(result, () =>
          Object.entries(result.images)
            .map(([name, i]) => {
              const built = i.steps.filter((s) => s.status === "miss").length;
              return `${result.app}/${name}: ${i.digest}  (${built} of ${i.steps.length} steps built, ${(i.durationMs / 1000).toFixed(2)}s on the server)`;
            })
            .join("\n"),
        );
      });
    });
}
