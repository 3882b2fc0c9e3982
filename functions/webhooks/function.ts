import { z } from "zod";
import type { FunctionSpec } from "../runtime/replica.js";
import type { StorageEvent } from "../events/decode.js";
import { PermanentError } from "../runtime/handler.js";
import { orderKey, type VodEvent } from "../../lib/events.js";
import { enqueueDeliveries } from "../../db/webhooks.js";
import { closeDb, createDb } from "../../db/client.js";
import { createDeliveryLoop, type DeliveryLoop } from "./deliver.js";

const eventBody = z.object({ id: z.string().min(1), type: z.string().min(1), createdAt: z.string().datetime({ offset: true }), data: z.record(z.string(), z.unknown()) });

/** An event off the events stream as the runner carries it: `key` names it in logs. */
interface QueuedEvent {
  key: string;
  event: VodEvent<string>;
  body: string;
  seq: number;
}

let loop: DeliveryLoop | undefined;

/**
 * The webhooks function: its consumer on the events stream fans each event out into one delivery row per
 * endpoint (then acks), and a delivery loop in every replica drains those rows, one in flight per endpoint.
 * Rows rather than a consumer per endpoint: endpoints are added at run time, each needs its own retry clock
 * and log, and a dead one must not hold a JetStream ack window that the others share.
 */
export const webhooksFunction: FunctionSpec = {
  name: "webhooks",
  consumer: (c) => c.events.consumer,
  source: {
    stream: (c) => c.events.stream,
    decode: (data, seq) => {
      const body = new TextDecoder().decode(data);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        throw new PermanentError("an event that is not JSON");
      }
      const event = eventBody.parse(parsed) as VodEvent<string>;
      const queued: QueuedEvent = { key: `${event.type} ${event.id}`, event, body, seq };
      return [queued as unknown as StorageEvent];
    },
  },
  accepts: () => true,
  handler: async (raw, ctx) => {
    const { event, body, seq } = raw as unknown as QueuedEvent;
    const added = await enqueueDeliveries(ctx.db, { eventId: event.id, eventType: event.type, eventSeq: seq, orderKey: orderKey(event), eventCreatedAt: new Date(event.createdAt), body });
    if (added > 0) loop?.wake();
    return added > 0 ? "done" : "ignored";
  },
  background: (deps) => {
    // The loop's own pool: endpoints are delivered to in parallel, each attempt writes its row.
    const db = createDb(deps.config.databaseUrl, { max: 8 });
    loop = createDeliveryLoop({ db, config: deps.config, log: deps.log, registry: deps.registry, worker: deps.worker });
    const l = loop;
    return [() => l.run(deps.signal).finally(() => closeDb(db))];
  },
};
