// The outbox dispatcher: delivers pending webhook deliveries, oldest first, and records every attempt. A 2xx
// answer delivers; anything else (an error status, a refused connection, a timeout) retries with exponential
// backoff and jitter until the attempts run out. State lives only in the database, so a restart resumes where
// the last process stopped: delivery is at least once, and receivers drop duplicates by the event id.
import type { AttemptRow, DeliveryRow, EventStore } from "../store/event-store.js";
import type { EventLog } from "./events.js";
import { signatureHeader, type Webhooks } from "./webhooks.js";

export interface DispatcherOptions {
  /** First retry delay; each later one doubles, up to maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  maxAttempts?: number;
  /** How long one attempt may take before it counts as failed. */
  attemptTimeoutMs?: number;
  /** Deliveries attempted at once. */
  concurrency?: number;
}

const DEFAULTS: Required<DispatcherOptions> = {
  baseDelayMs: 1000,
  maxDelayMs: 10 * 60_000,
  maxAttempts: 12,
  attemptTimeoutMs: 10_000,
  concurrency: 8,
};

export class Dispatcher {
  private readonly options: Required<DispatcherOptions>;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = true;
  private unsubscribe: (() => void) | null = null;
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly deps: { store: EventStore; events: EventLog; webhooks: Webhooks },
    options: DispatcherOptions = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.unsubscribe = this.deps.events.onEmit(() => this.wake());
    this.wake();
  }

  /** Stops scheduling; attempts in flight finish (their result is recorded) before this resolves. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** Runs a pass now (or right after the current one). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.running = this.pass()
      .catch((err: Error) => {
        process.stderr.write(`slipway: webhook dispatcher: ${err.message}\n`);
      })
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.wake();
        } else {
          this.schedule();
        }
      });
  }

  /** Waits for the first attempt of one delivery (or for the attempt timeout) and returns it with its log. */
  async firstAttempt(webhook: string, event: string): Promise<(DeliveryRow & { attemptLog: AttemptRow[] }) | null> {
    const { store } = this.deps;
    const deadline = Date.now() + this.options.attemptTimeoutMs + 2000;
    for (;;) {
      const d = store.deliveries({ webhook, event, limit: 1 })[0];
      if (!d) return null;
      if (d.attempts > 0 || Date.now() > deadline) return { ...d, attemptLog: store.attempts(d.id) };
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    const next = this.deps.store.nextDueAt();
    if (next === null) return;
    const delay = Math.max(0, Math.min(next - Date.now(), 60_000));
    this.timer = setTimeout(() => {
      this.timer = null;
      this.wake();
    }, delay);
    this.timer.unref();
  }

  private async pass(): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const due = this.deps.store.dueDeliveries(Date.now(), this.options.concurrency * 4).filter((d) => !this.inFlight.has(d.id));
      if (due.length === 0) return;
      const queue = [...due];
      const workers = Array.from({ length: Math.min(this.options.concurrency, queue.length) }, async () => {
        for (let d = queue.shift(); d; d = queue.shift()) {
          if (this.stopped) return;
          this.inFlight.add(d.id);
          try {
            await this.attempt(d.id);
          } finally {
            this.inFlight.delete(d.id);
          }
        }
      });
      await Promise.all(workers);
    }
  }

  private async attempt(deliveryId: string): Promise<void> {
    const { store, webhooks } = this.deps;
    const d = store.delivery(deliveryId);
    if (!d || d.status !== "pending") return;
    const event = store.event(d.event);
    const hook = store.webhook(d.webhook);
    const attempt = d.attempts + 1;
    const started = Date.now();
    if (!event || !hook) {
      store.recordAttempt(
        { delivery: d.id, attempt, at: started, status: null, error: hook ? "event missing" : "webhook removed", durationMs: 0 },
        { status: "failed", nextAt: started },
      );
      return;
    }
    let status: number | null = null;
    let error: string | null = null;
    try {
      const timestamp = Math.floor(Date.now() / 1000);
      const res = await fetch(hook.url, {
        method: "POST",
        body: event.body,
        headers: {
          "content-type": "application/json",
          "user-agent": "slipway-webhooks/1",
          "slipway-event-id": event.id,
          "slipway-event-type": event.type,
          "slipway-delivery": d.id,
          "slipway-attempt": String(attempt),
          "slipway-signature": signatureHeader(webhooks.secretOf(hook), timestamp, event.body),
        },
        signal: AbortSignal.timeout(this.options.attemptTimeoutMs),
        redirect: "manual",
      });
      status = res.status;
      await res.arrayBuffer().catch(() => undefined);
      if (status < 200 || status > 299) error = `HTTP ${status}`;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      error = e.name === "TimeoutError" ? `no answer within ${this.options.attemptTimeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
    }
    const now = Date.now();
    const ok = error === null;
    const exhausted = !ok && attempt >= this.options.maxAttempts;
    store.recordAttempt(
      { delivery: d.id, attempt, at: started, status, error, durationMs: now - started },
      { status: ok ? "delivered" : exhausted ? "failed" : "pending", nextAt: ok || exhausted ? now : now + this.backoff(attempt) },
    );
  }

  /** Delay after the n-th failed attempt: base·2^(n-1), capped, ±20 % jitter so that retries do not march together. */
  backoff(attempt: number): number {
    const raw = Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** (attempt - 1));
    return Math.round(raw * (0.8 + Math.random() * 0.4));
  }
}
