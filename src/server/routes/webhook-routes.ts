// Webhooks (add, list, test, remove, delivery log) and the events they carry.
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { parseWith } from "../../core/schemas.js";
import type { Slipway } from "../context.js";
import { actorOf, parseJsonBody } from "./common.js";

const eventsQuery = z.object({
  app: z.string().optional(),
  after: z.coerce.number().int().nonnegative().optional(),
  type: z.string().optional(),
  limit: z.coerce.number().int().positive().max(1000).optional(),
});
const addBody = z.object({
  url: z.string(),
  app: z.string().optional(),
  events: z.array(z.string()).optional(),
  secret: z.string().optional(),
});

export function registerWebhookRoutes(api: FastifyInstance, sw: Slipway): void {
  api.post("/api/v1/webhooks", async (request, reply) => {
    const body = parseWith(addBody, parseJsonBody(request.body), "webhook");
    return reply.status(201).send(sw.webhooks.add(body, actorOf(request)));
  });

  api.get("/api/v1/webhooks", async () => ({ webhooks: sw.webhooks.list() }));

  api.delete("/api/v1/webhooks/:id", async (request) => {
    const { id } = request.params as { id: string };
    sw.webhooks.remove(id);
    return { removed: id };
  });

  api.get("/api/v1/webhooks/:id/deliveries", async (request) => {
    const { id } = request.params as { id: string };
    return { webhook: id, deliveries: sw.webhooks.log(id) };
  });

  /** Sends a `webhook.test` event to one webhook and answers with its first attempt. */
  api.post("/api/v1/webhooks/:id/test", async (request) => {
    const { id } = request.params as { id: string };
    const hook = sw.webhooks.require(id);
    const event = sw.events.emit("webhook.test", hook.app, { webhook: id, by: actorOf(request) }, { onlyWebhook: id });
    const delivery = await sw.dispatcher.firstAttempt(id, event.id);
    return { event, delivery };
  });

  api.get("/api/v1/events", async (request) => {
    const q = parseWith(eventsQuery, request.query, "events query");
    return { events: sw.events.list({ app: q.app, afterSeq: q.after, types: q.type?.split(","), limit: q.limit }) };
  });
}
