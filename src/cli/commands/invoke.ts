// `slipway invoke APP/FUNCTION --input JSON`: calls a function; JSON results print as JSON, bytes go to stdout.
import type { Command } from "commander";
import { InvalidError, NotFoundError } from "../../core/errors.js";
import { clientFrom, loadConfig } from "../config.js";
import { runCommand } from "../output.js";

export function register(program: Command): void {
  program
    .command("invoke <target>")
    .description("call APP/FUNCTION; JSON results are printed, bytes are written to stdout (redirect them to a file)")
    .option("-i, --input <json>", "input as JSON", "null")
    .option("--input-file <path>", "read the input JSON from a file")
    .option("-d, --deployment <name>", "deployment whose version serves the call (default: main)")
    .option("-v, --version <n>", "pin a version (vN or N)")
    .option("-k, --key <routing key>", "routing key: with a traffic split, the same key always lands on the same version")
    .option("--json", "print a JSON document with the result and the version that served it")
    .action(async (target: string, opts: { input: string; inputFile?: string; deployment?: string; version?: string; key?: string; json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const [app, fn, extra] = target.split("/");
        if (!app || !fn || extra !== undefined) throw new InvalidError(`target ${JSON.stringify(target)} must be APP/FUNCTION`);
        const text = opts.inputFile
          ? // Loaded here: node:fs/promises costs every other command ~4 ms on Bun.
            await (await import("node:fs/promises")).readFile(opts.inputFile, "utf8").catch((err: NodeJS.ErrnoException) => {
              throw err.code === "ENOENT" ? new NotFoundError(`--input-file ${opts.inputFile} does not exist`) : err;
            })
          : opts.input;
        let input: unknown;
        try {
          input = JSON.parse(text);
        } catch (err) {
          throw new InvalidError(`--input is not valid JSON: ${(err as Error).message}`);
        }
        if (opts.version !== undefined && opts.deployment !== undefined) {
          throw new InvalidError("give --version (pin a version) or --deployment (follow its pointer), not both");
        }
        const version = opts.version !== undefined ? Number(opts.version.replace(/^v/, "")) : undefined;
        if (version !== undefined && !(Number.isInteger(version) && version > 0)) throw new InvalidError(`--version ${opts.version} is not a version number`);
        const res = await clientFrom(loadConfig()).invoke(app, fn, input, { version, deployment: opts.deployment, routingKey: opts.key });
        const isJson = res.contentType.startsWith("application/json");
        out.progress(`served by ${app} v${res.version} (${res.image.slice(0, 19)}…) in ${res.durationMs} ms${res.coldStart ? " (cold start)" : ""}`);
        if (out.json) {
          out.result(
            {
              version: res.version,
              image: res.image,
              invocation: res.invocation,
              durationMs: res.durationMs,
              coldStart: res.coldStart,
              contentType: res.contentType,
              ...(isJson ? { output: res.json() } : { outputBase64: res.body.toString("base64") }),
            },
            "",
          );
        } else if (isJson) {
          out.result(null, JSON.stringify(res.json(), null, 2));
        } else {
          out.bytes(res.body);
        }
      });
    });
}
