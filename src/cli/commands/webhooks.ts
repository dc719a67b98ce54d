// `slipway webhooks add|list|test|remove|log`: signed deliveries of deploy events to HTTP endpoints.
import type { Command } from "commander";
import { clientFrom, loadConfig } from "../config.js";
import { runCommand } from "../output.js";

interface Delivery {
  id: string;
  event: string;
  status: string;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  nextAt: number;
  createdAt: number;
  deliveredAt: number | null;
  attemptLog?: Array<{ attempt: number; at: number; status: number | null; error: string | null; durationMs: number }>;
}
interface WebhookView {
  id: string;
  url: string;
  app: string | null;
  events: string[];
  secret?: string;
  deliveries: { pending: number; delivered: number; failed: number; last: Delivery | null };
}

export function register(program: Command): void {
  const webhooks = program.command("webhooks").description("deliver deploy events to HTTP endpoints, signed with HMAC-SHA256");

  webhooks
    .command("add <url>")
    .description("register an endpoint; prints the signing secret once")
    .option("--app <app>", "only this app's events")
    .option("--event <type...>", "only these event types (default: all)")
    .option("--secret <secret>", "use this signing secret instead of a random one")
    .option("--json", "print JSON")
    .action(async (url: string, opts: { app?: string; event?: string[]; secret?: string; json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const res = await clientFrom(loadConfig()).post<WebhookView>("/api/v1/webhooks", { url, app: opts.app, events: opts.event, secret: opts.secret });
        out.result(res, `${res.id}  ${res.url}  events: ${res.events.join(", ")}${res.app ? `  app: ${res.app}` : ""}\nsigning secret (shown once): ${res.secret}`);
      });
    });

  webhooks
    .command("list")
    .description("registered webhooks and how their deliveries went")
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const res = await clientFrom(loadConfig()).json<{ webhooks: WebhookView[] }>("/api/v1/webhooks");
        out.result(res, () =>
          res.webhooks.length
            ? res.webhooks
                .map((w) => {
                  const d = w.deliveries;
                  const last = d.last ? `  last: ${d.last.status}${d.last.lastError ? ` (${d.last.lastError})` : ""}` : "";
                  return `${w.id}  ${w.url}  ${w.app ?? "all apps"}  ${w.events.join(",")}  delivered ${d.delivered}, pending ${d.pending}, failed ${d.failed}${last}`;
                })
                .join("\n")
            : "(no webhooks)",
        );
      });
    });

  webhooks
    .command("test <id>")
    .description("send a webhook.test event to one webhook and show its first attempt")
    .option("--json", "print JSON")
    .action(async (id: string, opts: { json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const res = await clientFrom(loadConfig()).post<{ event: { id: string }; delivery: Delivery | null }>(`/api/v1/webhooks/${encodeURIComponent(id)}/test`, {});
        const d = res.delivery;
        out.result(
          res,
          d
            ? `event ${res.event.id}: ${d.status}${d.lastStatus ? ` (HTTP ${d.lastStatus})` : ""}${d.lastError ? `: ${d.lastError}` : ""}${d.status === "pending" ? `; retrying at ${new Date(d.nextAt).toISOString()}` : ""}`
            : `event ${res.event.id}: no delivery was made`,
        );
      });
    });

  webhooks
    .command("log <id>")
    .description("a webhook's deliveries, newest first, with every attempt")
    .option("--json", "print JSON")
    .action(async (id: string, opts: { json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const res = await clientFrom(loadConfig()).json<{ deliveries: Delivery[] }>(`/api/v1/webhooks/${encodeURIComponent(id)}/deliveries`);
        out.result(res, () =>
          res.deliveries
            .map(
              (d) =>
                `${d.id}  event ${d.event}  ${d.status} after ${d.attempts} attempt(s)\n` +
                (d.attemptLog ?? []).map((a) => `    #${a.attempt} ${new Date(a.at).toISOString()}  ${a.status ?? "-"} ${a.error ?? "ok"}  ${a.durationMs} ms`).join("\n"),
            )
            .join("\n"),
        );
      });
    });

  webhooks
    .command("remove <id>")
    .description("stop delivering to a webhook (its log stays)")
    .option("--json", "print JSON")
    .action(async (id: string, opts: { json?: boolean }) => {
      await runCommand(Boolean(opts.json), async (out) => {
        const res = await clientFrom(loadConfig()).json<{ removed: string }>(`/api/v1/webhooks/${encodeURIComponent(id)}`, { method: "DELETE" });
        out.result(res, `removed ${res.removed}`);
      });
    });
}
