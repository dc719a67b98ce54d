// Webhook subscriptions and their signatures. A delivery carries `slipway-signature: t=<unix seconds>,v1=<hex>`,
// the HMAC-SHA256 of `<t>.<body>` under the webhook's secret; receivers recompute it and reject old timestamps.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { InvalidError, NotFoundError } from "../core/errors.js";
import { checkName, newId } from "../core/ids.js";
import type { DeliveryRow, EventStore, WebhookRow } from "../store/event-store.js";
import { EVENT_TYPES } from "./events.js";
import type { SecretBox } from "./secret-box.js";

export interface WebhookView {
  id: string;
  url: string;
  app: string | null;
  events: string[];
  createdBy: string;
  createdAt: number;
  deliveries: { pending: number; delivered: number; failed: number; last: DeliveryRow | null };
}

export class Webhooks {
  constructor(
    private readonly store: EventStore,
    private readonly box: SecretBox,
  ) {}

  /** Registers a webhook; the secret is returned once (a random one unless given) and kept sealed. */
  add(params: { url: string; app?: string | null; events?: string[]; secret?: string }, actor: string): WebhookView & { secret: string } {
    let url: URL;
    try {
      url = new URL(params.url);
    } catch {
      throw new InvalidError(`webhook URL ${JSON.stringify(params.url)} is not a URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new InvalidError(`webhook URL ${params.url} must be http:// or https://`);
    // Deliveries are authenticated by their signature; credentials in a URL would be stored, listed and refused by fetch.
    if (url.username || url.password) throw new InvalidError(`webhook URL must not carry credentials (user:password@); receivers verify the signature instead`);
    if (params.app) checkName("app", params.app);
    const events = params.events?.length ? params.events : ["*"];
    for (const e of events) {
      if (e !== "*" && !(EVENT_TYPES as readonly string[]).includes(e)) {
        throw new InvalidError(`unknown event type ${JSON.stringify(e)} (known: ${EVENT_TYPES.join(", ")}, or *)`, { event: e });
      }
    }
    if (params.secret !== undefined && params.secret.length < 16) throw new InvalidError("a webhook secret needs at least 16 characters");
    const id = newId("wh_");
    const secret = params.secret ?? `whsec_${randomBytes(24).toString("base64url")}`;
    const row: WebhookRow = {
      id,
      url: url.toString(),
      app: params.app ?? null,
      events,
      sealedSecret: this.box.seal(secret, `webhook:${id}`),
      createdBy: actor,
      createdAt: Date.now(),
    };
    this.store.insertWebhook(row);
    return { ...this.view(row), secret };
  }

  list(): WebhookView[] {
    return this.store.listWebhooks().map((w) => this.view(w));
  }

  require(id: string): WebhookRow {
    const w = this.store.webhook(id);
    if (!w) {
      const ids = this.store.listWebhooks().map((x) => x.id);
      throw new NotFoundError(`no webhook ${id}${ids.length ? ` (webhooks: ${ids.join(", ")})` : ""}`, { webhook: id });
    }
    return w;
  }

  remove(id: string): void {
    this.require(id);
    this.store.removeWebhook(id, Date.now());
  }

  secretOf(w: WebhookRow): string {
    return this.box.open(w.sealedSecret, `webhook:${w.id}`);
  }

  /** A webhook's deliveries, newest first, each with its attempts. */
  log(id: string, limit = 50): Array<DeliveryRow & { attemptLog: ReturnType<EventStore["attempts"]> }> {
    this.require(id);
    return this.store.deliveries({ webhook: id, limit }).map((d) => ({ ...d, attemptLog: this.store.attempts(d.id) }));
  }

  private view(w: WebhookRow): WebhookView {
    const recent = this.store.deliveries({ webhook: w.id, limit: 1000 });
    const count = (s: string) => recent.filter((d) => d.status === s).length;
    return {
      id: w.id,
      url: w.url,
      app: w.app,
      events: w.events,
      createdBy: w.createdBy,
      createdAt: w.createdAt,
      deliveries: { pending: count("pending"), delivered: count("delivered"), failed: count("failed"), last: recent[0] ?? null },
    };
  }
}

export function signPayload(secret: string, timestamp: number, body: string): string {
  return createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
}

export function signatureHeader(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${signPayload(secret, timestamp, body)}`;
}

/** Checks a `slipway-signature` header against a body; false when it does not match or is older than the tolerance. */
export function verifySignature(header: string, secret: string, body: string, options: { toleranceS?: number; nowS?: number } = {}): boolean {
  const parts = new Map(header.split(",").map((p) => p.trim().split("=", 2) as [string, string]));
  const t = Number(parts.get("t"));
  const v1 = parts.get("v1");
  if (!Number.isInteger(t) || !v1 || !/^[a-f0-9]{64}$/.test(v1)) return false;
  const now = options.nowS ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t) > (options.toleranceS ?? 300)) return false;
  return timingSafeEqual(Buffer.from(v1, "hex"), Buffer.from(signPayload(secret, t, body), "hex"));
}
