// `slipway gc [--dry-run] [--grace 1h]`: garbage-collects the registry in the data directory (SLIPWAY_DATA). Keeps
// what tags, versions, their code bundles and the build cache name; safe while the server runs. --dry-run lists what would go.
import type { Command } from "commander";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { InvalidError, NotFoundError } from "../../core/errors.js";
import type { GcReport } from "../../server/gc.js";
import { loadConfig } from "../config.js";
import { runCommand } from "../output.js";

export function register(program: Command): void {
  program
    .command("gc")
    .description("delete registry blobs and manifests nothing references (tags, versions, uploads in progress)")
    .option("--dry-run", "list what would be deleted and the bytes, delete nothing")
    .option("--grace <duration>", "keep anything newer than this (e.g. 30m, 1h, 2d)", "1h")
    .option("--json", "print JSON")
    .action(async (opts: { dryRun?: boolean; grace: string; json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const config = loadConfig();
        // gc works on the data directory itself (not through SLIPWAY_URL); a dry run must not create one.
        if (!existsSync(join(config.dataDir, "slipway.db"))) {
          throw new NotFoundError(`no Slipway data directory at ${config.dataDir}: set SLIPWAY_DATA to the server's --data directory`);
        }
        const { collectGarbage } = await import("../../server/gc.js");
        const report = await collectGarbage({ dataDir: config.dataDir, dryRun: Boolean(opts.dryRun), gracePeriodMs: parseDuration(opts.grace) });
        out.result(report, () => describe(report));
      });
    });
}

function parseDuration(value: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(value.trim());
  if (!m) throw new InvalidError(`--grace ${JSON.stringify(value)} is not a duration such as 30m, 1h or 2d`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "ms" | "s" | "m" | "h" | "d"];
  return Number(m[1]) * unit;
}

function describe(report: GcReport): string {
  const verb = report.dryRun ? "would delete" : "deleted";
  const lines = [
    ...report.manifests.map((m) => `manifest ${m.repo}@${m.digest} (${m.size} bytes)`),
    ...report.links.map((l) => `link ${l.repo}@${l.digest}`),
    ...report.blobs.map((b) => `blob ${b.digest} (${b.size} bytes)`),
    ...report.uploads.map((u) => `upload ${u.id} (${u.size} bytes)`),
  ];
  const mib = (report.bytes / 1024 / 1024).toFixed(1);
  lines.push(`${verb} ${report.manifests.length} manifests, ${report.links.length} links, ${report.blobs.length} blobs, ${report.uploads.length} uploads: ${report.bytes} bytes (${mib} MiB)`);
  return lines.join("\n");
}
