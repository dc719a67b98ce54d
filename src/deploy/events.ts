// Deploy events: what happened, written to the outbox in the same transaction as the change it describes, with
// one pending delivery per webhook that wants it. Delivery is outbox.ts's job; nothing here touches the network.
import { newId } from "../core/ids.js";
import type { EventRow, EventStore } from "../store/event-store.js";

export const EVENT_TYPES = [
  "build.started",
  "build.finished",
  "version.created",
  "deployment.moved",
  "deployment.live",
  "deployment.rolled_back",
  "deploy.failed",
  "config.changed",
  "webhook.test",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** The document a webhook receives; `id` stays the same across retries, so receivers can drop duplicates. */
export interface SlipwayEvent {
  id: string;
  type: EventType;
  app: string | null;
  at: string;
  data: Record<string, unknown>;
}

export class EventLog {
  private readonly listeners = new Set<() => void>();

  constructor(private readonly store: EventStore) {}

  /**
   * Records an event and its deliveries. Inside a caller's transaction, both land or vanish with the change;
   * `onlyWebhook` addresses a single webhook (a test delivery) regardless of its filters.
   */
  emit(type: EventType, app: string | null, data: Record<string, unknown>, options: { onlyWebhook?: string } = {}): SlipwayEvent {
    const now = Date.now();
    const event: SlipwayEvent = { id: newId("evt_"), type, app, at: new Date(now).toISOString(), data };
    this.store.meta.tx(() => {
      this.store.insertEvent({ id: event.id, type, app, body: JSON.stringify(event), at: now });
      for (const w of this.store.listWebhooks()) {
        const wanted = options.onlyWebhook
          ? w.id === options.onlyWebhook
          : (w.app === null || w.app === app) && (w.events.includes("*") || w.events.includes(type));
        if (wanted) this.store.insertDelivery({ id: newId("dlv_"), webhook: w.id, event: event.id, nextAt: now, createdAt: now });
      }
    });
    // Listeners run after the current synchronous code, by which time the caller's transaction has committed.
    queueMicrotask(() => this.listeners.forEach((l) => l()));
    return event;
  }

  list(filter: { app?: string; afterSeq?: number; types?: string[]; limit?: number }): Array<SlipwayEvent & { seq: number }> {
    return this.store.listEvents({ ...filter, limit: Math.min(filter.limit ?? 100, 1000) }).map(toEvent);
  }

  /** Called after events are written, so the dispatcher can wake at once. */
  onEmit(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

function toEvent(row: EventRow): SlipwayEvent & { seq: number } {
  return { ...(JSON.parse(row.body) as SlipwayEvent), seq: row.seq };
}
