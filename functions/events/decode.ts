import { z } from "zod";

/** One object-created (or other) notification, whatever store sent it. */
export interface StorageEvent {
  bucket: string;
  key: string;
  eventName: string;
  size: number;
  etag: string;
  sequencer: string;
}

export class EventDecodeError extends Error {
  override name = "EventDecodeError";
}

/** The source tag the sweep puts on the events it re-publishes; keys in them are raw. */
export const SWEEP_EVENT_SOURCE = "vod:sweep";

const record = z.object({
  eventSource: z.string().optional(),
  eventName: z.string(),
  s3: z.object({
    bucket: z.object({ name: z.string().min(1) }),
    object: z.object({
      key: z.string().min(1),
      size: z.number().optional(),
      eTag: z.string().nullish(),
      sequencer: z.string().nullish(),
    }),
  }),
});
const body = z.object({
  EventName: z.string().optional(),
  Key: z.string().optional(),
  Records: z.array(record).min(1),
});

/** AWS/MinIO object keys in events are query-escaped: `+` is a space, then percent-decoding. */
function queryUnescape(key: string): string {
  return decodeURIComponent(key.replaceAll("+", " "));
}

/**
 * Turns a notification body into events. MinIO (eventSource "minio:s3") query-escapes keys and
 * also gives the raw `<bucket>/<key>` at the top level; the Versity gateway and the sweep send raw keys.
 */
export function decodeStorageEvent(data: Uint8Array | string): StorageEvent[] {
  let json: unknown;
  try {
    json = JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data));
  } catch {
    throw new EventDecodeError("notification body is not JSON");
  }
  // S3's test event (the Versity gateway sends one when it connects) carries no object.
  if ((json as { Event?: unknown })?.Event === "s3:TestEvent") return [];
  const parsed = body.safeParse(json);
  if (!parsed.success) throw new EventDecodeError(`notification body is not an S3 event: ${parsed.error.issues[0]?.message}`);
  const { Records, Key } = parsed.data;

  return Records.map((r) => {
    const bucket = r.s3.bucket.name;
    let key = r.s3.object.key;
    if (r.eventSource === "minio:s3") {
      // One record per body in practice; the top-level Key is the unescaped form of that record's key.
      if (Records.length === 1 && Key?.startsWith(`${bucket}/`)) key = Key.slice(bucket.length + 1);
      else key = queryUnescape(key);
    }
    return {
      bucket,
      key,
      eventName: r.eventName.startsWith("s3:") ? r.eventName : `s3:${r.eventName}`,
      size: r.s3.object.size ?? 0,
      etag: (r.s3.object.eTag ?? "").replaceAll('"', ""),
      sequencer: r.s3.object.sequencer ?? "",
    };
  });
}

export function isObjectCreated(e: StorageEvent): boolean {
  return e.eventName.startsWith("s3:ObjectCreated:");
}

export function isPlaylistKey(key: string): boolean {
  return key.toLowerCase().endsWith(".m3u8");
}

/** The body the sweep publishes: the S3 event form, with a raw key. */
export function encodeSweepEvent(e: Omit<StorageEvent, "eventName" | "sequencer"> & { sequencer?: string }): string {
  return JSON.stringify({
    Records: [
      {
        eventVersion: "2.2",
        eventSource: SWEEP_EVENT_SOURCE,
        eventTime: new Date().toISOString(),
        eventName: "s3:ObjectCreated:Put",
        s3: {
          s3SchemaVersion: "1.0",
          bucket: { name: e.bucket },
          object: { key: e.key, size: e.size, eTag: e.etag, sequencer: e.sequencer ?? "" },
        },
      },
    ],
  });
}

/**
 * The events worth a function's time: created playlists in the HLS bucket. Everything else
 * (segments, other buckets, deletions) is acknowledged without work; the Versity gateway sends it all.
 */
export function playlistEvents(events: StorageEvent[], hlsBucket: string): StorageEvent[] {
  return events.filter((e) => isPlaylistCreated(e, hlsBucket));
}

/** The one rule for "this event is work": a playlist created in the HLS bucket. */
export function isPlaylistCreated(e: StorageEvent, hlsBucket: string): boolean {
  return e.bucket === hlsBucket && isObjectCreated(e) && isPlaylistKey(e.key);
}
