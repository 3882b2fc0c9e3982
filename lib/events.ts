// The owner of the events that leave the system: their types, their body, their subject, and the one
// publisher every service uses after it has committed a change. A new feature adds its type here.
import { randomUUID } from "node:crypto";
import { jetstream } from "@nats-io/jetstream";
import { Counter, type Registry } from "prom-client";
import type { Config } from "./config.js";
import type { Logger } from "./log.js";
import type { NatsConnection } from "./nats.js";
import type { Recording } from "../db/schema.js";
import { backoffDelay, sleep } from "./time.js";

export const eventTypes = [
  "stream.connected",
  "stream.disconnected",
  "recording.live",
  "recording.processing",
  "recording.ready",
  "recording.failed",
  "recording.deleted",
  "thumbnail.ready",
  "clip.ready",
  "clip.failed",
] as const;
export type EventType = (typeof eventTypes)[number];
/** Sent only by POST /webhooks/{id}/test, never published on the stream. */
export const TEST_EVENT_TYPE = "webhook.test";

/** The stable body of every event, on JetStream and in every webhook. */
export interface VodEvent<T extends string = EventType> {
  id: string;
  type: T;
  createdAt: string;
  data: Record<string, unknown>;
}

export function eventSubject(prefix: string, type: string): string {
  return `${prefix}.${type}`;
}

/** Which recording or stream an event is about: webhooks keep events of one key in order. */
export function orderKey(e: Pick<VodEvent<string>, "type" | "data">): string {
  const d = e.data as { id?: unknown; name?: unknown; recordingId?: unknown };
  if (e.type.startsWith("stream.")) return `stream:${String(d.name ?? "")}`;
  return `recording:${String(d.id ?? d.recordingId ?? "")}`;
}

/** A recording as the API's summary shows it, without links (they are short-lived and signed). */
export type RecordingFacts = Pick<Recording, "id" | "streamId" | "title" | "status" | "progress" | "error" | "durationSeconds" | "fileSizeBytes" | "width" | "height" | "videoCodec" | "audioCodec" | "sourcePrefix" | "sessionId"> & { createdAt: Date | string; updatedAt: Date | string };

export function recordingData(r: RecordingFacts): Record<string, unknown> {
  return {
    id: r.id,
    stream: r.streamId,
    title: r.title,
    status: r.status,
    progress: r.status === "ready" ? 1 : r.progress,
    error: r.error,
    durationSeconds: r.durationSeconds,
    fileSizeBytes: r.fileSizeBytes,
    width: r.width,
    height: r.height,
    videoCodec: r.videoCodec,
    audioCodec: r.audioCodec,
    sourceFolder: r.sourcePrefix,
    sessionId: r.sessionId,
    createdAt: new Date(r.createdAt).toISOString(),
    updatedAt: new Date(r.updatedAt).toISOString(),
  };
}

export function newEvent<T extends string>(type: T, data: Record<string, unknown>, now = new Date()): VodEvent<T> {
  return { id: `evt_${randomUUID()}`, type, createdAt: now.toISOString(), data };
}

/** Publishes a recording event with the row as it is now; a row already gone publishes nothing. */
export async function publishRecordingEvent(events: EventPublisher | undefined, type: EventType, row: RecordingFacts | undefined): Promise<void> {
  if (events && row) await events.publish(type, recordingData(row));
}

export interface EventPublisher {
  /**
   * Publishes after the caller committed its change. Never throws: while NATS is away the event waits in
   * memory and is retried (JetStream drops a retried duplicate by its id). Resolves once JetStream has it.
   */
  publish(type: EventType, data: Record<string, unknown>): Promise<void>;
  /** Waits (up to `ms`) for events still being retried, at shutdown. */
  flush(ms?: number): Promise<void>;
}

const MAX_WAITING = 10_000;

export function createEventPublisher(o: { nats: () => NatsConnection | undefined; config: Config; log: Logger; registry?: Registry }): EventPublisher {
  const published = new Counter({
    name: "vod_events_published_total",
    help: "Events published to the events stream, by type",
    labelNames: ["type"],
    registers: o.registry ? [o.registry] : [],
  });
  const waiting = new Set<Promise<void>>();

  async function send(e: VodEvent): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const nc = o.nats();
      try {
        if (!nc) throw new Error("not connected to NATS yet");
        await jetstream(nc).publish(eventSubject(o.config.events.subjectPrefix, e.type), JSON.stringify(e), { msgID: e.id, timeout: 5000 });
        published.inc({ type: e.type });
        return;
      } catch (err) {
        const delay = backoffDelay(attempt, 500, 30_000);
        if (attempt === 1 || attempt % 10 === 0)
          o.log.warn({ event: e.id, type: e.type, err: (err as Error).message, retryInMs: delay }, "could not publish an event; retrying");
        await sleep(delay, { unref: true });
      }
    }
  }

  return {
    publish(type, data) {
      const e = newEvent(type, data);
      if (waiting.size >= MAX_WAITING) {
        o.log.error({ event: e.id, type }, "too many events waiting for NATS; this one is dropped");
        return Promise.resolve();
      }
      const p = send(e).finally(() => waiting.delete(p));
      waiting.add(p);
      return p;
    },
    async flush(ms = 5000) {
      await Promise.race([Promise.all([...waiting]), sleep(ms, { unref: true })]);
    },
  };
}
