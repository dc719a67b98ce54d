// The events outbox and webhook subscriptions: events, the webhooks that want them, one delivery per (webhook,
// event) and every delivery attempt. The deploy module's events.ts and outbox.ts hold the rules; this file holds
// the SQL.
import type { MetadataStore } from "./metadata-store.js";

export interface EventRow {
  seq: number;
  id: string;
  type: string;
  app: string | null;
  /** The exact JSON document every delivery of this event sends. */
  body: string;
  at: number;
}

export interface WebhookRow {
  id: string;
  url: string;
  app: string | null;
  events: string[];
  /** The signing secret, sealed with the data directory's key. */
  sealedSecret: string;
  createdBy: string;
  createdAt: number;
}

export type DeliveryStatus = "pending" | "delivered" | "failed";

export interface DeliveryRow {
  id: string;
  webhook: string;
  event: string;
  status: DeliveryStatus;
  attempts: number;
  nextAt: number;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: number;
  deliveredAt: number | null;
}

export interface AttemptRow {
  delivery: string;
  attempt: number;
  at: number;
  status: number | null;
  error: string | null;
  durationMs: number;
}

export class EventStore {
  constructor(readonly meta: MetadataStore) {}

  insertEvent(e: Omit<EventRow, "seq">): EventRow {
    const r = this.meta.statement("INSERT INTO events (id, type, app, body, at) VALUES (?, ?, ?, ?, ?)").run(e.id, e.type, e.app, e.body, e.at);
    return { ...e, seq: Number(r.lastInsertRowid) };
  }

  event(id: string): EventRow | null {
    return (this.meta.statement("SELECT * FROM events WHERE id = ?").get(id) as EventRow | undefined) ?? null;
  }

  listEvents(filter: { app?: string; afterSeq?: number; types?: string[]; limit: number }): EventRow[] {
    const where: string[] = ["seq > ?"];
    const args: unknown[] = [filter.afterSeq ?? 0];
    if (filter.app) {
      where.push("app = ?");
      args.push(filter.app);
    }
    if (filter.types?.length) {
      where.push(`type IN (${filter.types.map(() => "?").join(", ")})`);
      args.push(...filter.types);
    }
    args.push(filter.limit);
    return this.meta.statement(`SELECT * FROM events WHERE ${where.join(" AND ")} ORDER BY seq LIMIT ?`).all(...args) as EventRow[];
  }

  insertWebhook(w: WebhookRow): void {
    this.meta
      .statement("INSERT INTO webhooks (id, url, app, events, secret, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(w.id, w.url, w.app, JSON.stringify(w.events), w.sealedSecret, w.createdBy, w.createdAt);
  }

  webhook(id: string): WebhookRow | null {
    const r = this.meta.statement("SELECT * FROM webhooks WHERE id = ? AND removed_at IS NULL").get(id) as RawWebhook | undefined;
    return r ? toWebhook(r) : null;
  }

  listWebhooks(): WebhookRow[] {
    return (this.meta.statement("SELECT * FROM webhooks WHERE removed_at IS NULL ORDER BY created_at, id").all() as RawWebhook[]).map(toWebhook);
  }

  /** Marks a webhook removed; its pending deliveries are dropped, its log stays. */
  removeWebhook(id: string, at: number): boolean {
    return this.meta.tx(() => {
      const r = this.meta.statement("UPDATE webhooks SET removed_at = ? WHERE id = ? AND removed_at IS NULL").run(at, id);
      if (r.changes !== 1) return false;
      this.meta
        .statement("UPDATE webhook_deliveries SET status = 'failed', last_error = 'webhook removed' WHERE webhook = ? AND status = 'pending'")
        .run(id);
      return true;
    });
  }

  insertDelivery(d: Pick<DeliveryRow, "id" | "webhook" | "event" | "nextAt" | "createdAt">): void {
    this.meta
      .statement("INSERT OR IGNORE INTO webhook_deliveries (id, webhook, event, status, attempts, next_at, created_at) VALUES (?, ?, ?, 'pending', 0, ?, ?)")
      .run(d.id, d.webhook, d.event, d.nextAt, d.createdAt);
  }

  /** Pending deliveries due at `now`, oldest first. */
  dueDeliveries(now: number, limit: number): DeliveryRow[] {
    return (
      this.meta
        .statement("SELECT * FROM webhook_deliveries WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, created_at LIMIT ?")
        .all(now, limit) as RawDelivery[]
    ).map(toDelivery);
  }

  /** When the next pending delivery falls due, or null when none is pending. */
  nextDueAt(): number | null {
    const r = this.meta.statement("SELECT MIN(next_at) AS at FROM webhook_deliveries WHERE status = 'pending'").get() as { at: number | null };
    return r.at;
  }

  delivery(id: string): DeliveryRow | null {
    const r = this.meta.statement("SELECT * FROM webhook_deliveries WHERE id = ?").get(id) as RawDelivery | undefined;
    return r ? toDelivery(r) : null;
  }

  deliveries(filter: { webhook?: string; event?: string; limit: number }): DeliveryRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.webhook) {
      where.push("webhook = ?");
      args.push(filter.webhook);
    }
    if (filter.event) {
      where.push("event = ?");
      args.push(filter.event);
    }
    args.push(filter.limit);
    const sql = `SELECT * FROM webhook_deliveries ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, rowid DESC LIMIT ?`;
    return (this.meta.statement(sql).all(...args) as RawDelivery[]).map(toDelivery);
  }

  /**
   * Records one attempt and the delivery's next state in one transaction. Guarded on the attempt count the
   * dispatcher read, so that an attempt is never counted twice.
   */
  recordAttempt(a: AttemptRow, next: { status: DeliveryStatus; nextAt: number }): boolean {
    return this.meta.tx(() => {
      const r = this.meta
        .statement(
          `UPDATE webhook_deliveries SET status = ?, attempts = ?, next_at = ?, last_status = ?, last_error = ?, delivered_at = ?
           WHERE id = ? AND attempts = ? AND status = 'pending'`,
        )
        .run(next.status, a.attempt, next.nextAt, a.status, a.error, next.status === "delivered" ? a.at : null, a.delivery, a.attempt - 1);
      if (r.changes !== 1) return false;
      this.meta
        .statement("INSERT INTO webhook_attempts (delivery, attempt, at, status, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?)")
        .run(a.delivery, a.attempt, a.at, a.status, a.error, a.durationMs);
      return true;
    });
  }

  attempts(delivery: string): AttemptRow[] {
    return (
      this.meta.statement("SELECT * FROM webhook_attempts WHERE delivery = ? ORDER BY attempt").all(delivery) as Array<{
        delivery: string;
        attempt: number;
        at: number;
        status: number | null;
        error: string | null;
        duration_ms: number;
      }>
    ).map((r) => ({ delivery: r.delivery, attempt: r.attempt, at: r.at, status: r.status, error: r.error, durationMs: r.duration_ms }));
  }
}

interface RawWebhook {
  id: string;
  url: string;
  app: string | null;
  events: string;
  secret: string;
  created_by: string;
  created_at: number;
}
interface RawDelivery {
  id: string;
  webhook: string;
  event: string;
  status: DeliveryStatus;
  attempts: number;
  next_at: number;
  last_status: number | null;
  last_error: string | null;
  created_at: number;
  delivered_at: number | null;
}

function toWebhook(r: RawWebhook): WebhookRow {
  return {
    id: r.id,
    url: r.url,
    app: r.app,
    events: JSON.parse(r.events) as string[],
    sealedSecret: r.secret,
    createdBy: r.created_by,
    createdAt: r.created_at,
  };
}
function toDelivery(r: RawDelivery): DeliveryRow {
  return {
    id: r.id,
    webhook: r.webhook,
    event: r.event,
    status: r.status,
    attempts: r.attempts,
    nextAt: r.next_at,
    lastStatus: r.last_status,
    lastError: r.last_error,
    createdAt: r.created_at,
    deliveredAt: r.delivered_at,
  };
}
