import { sql } from "drizzle-orm";
import {
  pgTable,
  text,
  uuid,
  doublePrecision,
  bigint,
  integer,
  real,
  timestamp,
  index,
  uniqueIndex,
  check,
  jsonb,
  boolean,
  bigserial,
  customType,
  primaryKey,
} from "drizzle-orm/pg-core";

export const recordingStatuses = ["live", "processing", "ready", "failed"] as const;
export type RecordingStatus = (typeof recordingStatuses)[number];

/** Something the user should know about a ready recording: the source was damaged, what is missing and where. */
export interface RecordingWarning {
  /** `missing-media`: the source's segments could not all be read (damage); `gap`: its playlist marks seconds as missing (#EXT-X-GAP). */
  kind: "missing-media" | "gap";
  message: string;
  /** Seconds the playlist lists that the MP4 does not hold. */
  missingSeconds: number;
  /** Where, on the playlist's timeline. */
  at: { segment: string; startSeconds: number; missingSeconds: number }[];
}

/** A WebVTT side-car beside the MP4 (from a SUBTITLES rendition). */
export interface SubtitleTrack {
  key: string;
  language: string | null;
  name: string;
  isDefault: boolean;
}

/** An audio track of the MP4, in track order. */
export interface AudioTrack {
  language: string | null;
  name: string | null;
  isDefault: boolean;
}

export const abrStatuses = ["pending", "processing", "ready", "failed"] as const;
export type AbrStatus = (typeof abrStatuses)[number];

/** One rung of a recording's ABR ladder as packaged: what the master playlist and the API list. */
export interface AbrRendition {
  name: string;
  width: number;
  height: number;
  /** Peak and average bits per second of video + audio, as measured over the segments. */
  bandwidth: number;
  averageBandwidth: number;
  codecs: string;
  frameRate: number;
  /** The media playlist's key in the recordings bucket. */
  playlist: string;
  /** True when the source's video was copied rather than re-encoded. */
  copied: boolean;
}

export const recordingKinds = ["recording", "clip"] as const;
export type RecordingKind = (typeof recordingKinds)[number];

export const streamStates = ["idle", "live", "disabled"] as const;
export type StreamState = (typeof streamStates)[number];

const timestamps = {
  createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
};

export const recordings = pgTable(
  "recordings",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    /** The stream's name for broadcasts, the folder path for dropped folders. Not unique. */
    streamId: text("stream_id").notNull(),
    userId: text("user_id"),
    title: text("title").notNull(),
    durationSeconds: doublePrecision("duration_seconds"),
    /** The MP4's object key in the recordings bucket. */
    filePath: text("file_path"),
    /** The JPEG poster's object key in the recordings bucket. */
    thumbnailPath: text("thumbnail_path"),
    fileSizeBytes: bigint("file_size_bytes", { mode: "number" }),
    status: text("status", { enum: recordingStatuses }).notNull().default("processing"),
    /** The recording's source prefix (its HLS folder in hls-streams), no trailing slash: one recording per source prefix. */
    sourcePrefix: text("source_prefix").notNull(),
    /** The playlist object that was (or is being) converted, and its ETag: a changed playlist is reprocessed. */
    playlistKey: text("playlist_key"),
    playlistEtag: text("playlist_etag"),
    /** Why it failed, in words a user can act on. */
    error: text("error"),
    /** 0..1 while processing. */
    progress: real("progress").notNull().default(0),
    width: integer("width"),
    height: integer("height"),
    videoCodec: text("video_codec"),
    audioCodec: text("audio_codec"),
    storyboardPath: text("storyboard_path"),
    storyboardVttPath: text("storyboard_vtt_path"),
    /** Ready, but the source was damaged: what is missing and where. */
    warnings: jsonb("warnings").$type<RecordingWarning[]>(),
    audioTracks: jsonb("audio_tracks").$type<AudioTrack[]>(),
    subtitles: jsonb("subtitles").$type<SubtitleTrack[]>(),
    /** Objects of the recording beyond the named columns (subtitle side-cars), for deleting all of it. */
    extraKeys: text("extra_keys").array(),
    /** Which worker holds the job and until when; another may take it over after the lease ends. */
    claimedBy: text("claimed_by"),
    claimExpiresAt: timestamp("claim_expires_at", { withTimezone: true, mode: "date" }),
    attempts: integer("attempts").notNull().default(0),
    /** The ABR ladder (package function), apart from the recording's status: null when packaging is off. */
    abrStatus: text("abr_status", { enum: abrStatuses }),
    abrProgress: real("abr_progress").notNull().default(0),
    abrError: text("abr_error"),
    /** The master playlist's and DASH manifest's keys, and every rung, once ready. */
    abrMasterPath: text("abr_master_path"),
    abrDashPath: text("abr_dash_path"),
    abrRenditions: jsonb("abr_renditions").$type<AbrRendition[]>(),
    abrClaimedBy: text("abr_claimed_by"),
    abrClaimExpiresAt: timestamp("abr_claim_expires_at", { withTimezone: true, mode: "date" }),
    /** The broadcast session (gateway) this recording comes from, when it does. */
    sessionId: text("session_id"),
    /** Bytes of the source segments convert read (usage of a kept source). */
    sourceBytes: bigint("source_bytes", { mode: "number" }),
    /** Kept regardless of RECORDING_RETENTION_DAYS. */
    pinned: boolean("pinned").notNull().default(false),
    /** When it became ready: retention counts from here. */
    readyAt: timestamp("ready_at", { withTimezone: true, mode: "date" }),
    /** The retention job removed the source HLS folder (the MP4 stays): when and why. */
    sourceDeletedAt: timestamp("source_deleted_at", { withTimezone: true, mode: "date" }),
    sourceDeletedReason: text("source_deleted_reason"),
    /** The retention job claimed the recording for deletion: its objects go, then the row (a crash is resumed, never orphans). */
    deletingSince: timestamp("deleting_since", { withTimezone: true, mode: "date" }),
    /** A broadcast or dropped folder's recording, or a clip cut from one (its own MP4 under its own prefix). */
    kind: text("kind", { enum: recordingKinds }).notNull().default("recording"),
    /** A clip's parent recording. No foreign key: a clip outlives its parent and stays playable. */
    parentId: uuid("parent_id"),
    /** Seconds on the parent's timeline that the clip covers (after snapping to keyframes). */
    clipStart: doublePrecision("clip_start"),
    clipEnd: doublePrecision("clip_end"),
    ...timestamps,
  },
  (t) => [
    uniqueIndex("recordings_source_prefix_key").on(t.sourcePrefix),
    index("recordings_created_at_id_idx").on(t.createdAt.desc(), t.id.desc()),
    index("recordings_status_created_at_idx").on(t.status, t.createdAt.desc(), t.id.desc()),
    index("recordings_stream_created_at_idx").on(t.streamId, t.createdAt.desc(), t.id.desc()),
    // The retention job's scan: ready recordings by when they became ready.
    index("recordings_ready_at_idx").on(t.readyAt).where(sql`${t.status} = 'ready'`),
    index("recordings_parent_created_at_idx").on(t.parentId, t.createdAt.desc(), t.id.desc()),
    check("recordings_kind_check", sql`${t.kind} in ('recording', 'clip')`),
    check("recordings_status_check", sql`${t.status} in ('live', 'processing', 'ready', 'failed')`),
    check("recordings_progress_check", sql`${t.progress} >= 0 and ${t.progress} <= 1`),
    check("recordings_abr_status_check", sql`${t.abrStatus} is null or ${t.abrStatus} in ('pending', 'processing', 'ready', 'failed')`),
  ],
);

export const streams = pgTable(
  "streams",
  {
    name: text("name").primaryKey(),
    /** SRT passphrase (10-79 characters), checked at the handshake. */
    secret: text("secret").notNull(),
    userId: text("user_id"),
    title: text("title"),
    state: text("state", { enum: streamStates }).notNull().default("idle"),
    currentSession: text("current_session"),
    currentRecordingId: uuid("current_recording_id"),
    lastConnectedAt: timestamp("last_connected_at", { withTimezone: true, mode: "date" }),
    lastSegmentAt: timestamp("last_segment_at", { withTimezone: true, mode: "date" }),
    /** Refuses callers with `disabled` (kept apart from state, which the broadcasts drive). */
    disabled: boolean("disabled").notNull().default(false),
    /** Per-stream overrides of MAX_BROADCAST_SECONDS, SOURCE_RETENTION and RECORDING_RETENTION_DAYS; null = the global one. */
    maxBroadcastSeconds: integer("max_broadcast_seconds"),
    /** `keep`, `delete` or a number of days. */
    sourceRetention: text("source_retention"),
    recordingRetentionDays: doublePrecision("recording_retention_days"),
    ...timestamps,
  },
  (t) => [check("streams_state_check", sql`${t.state} in ('idle', 'live', 'disabled')`)],
);

export const deliveryStatuses = ["pending", "delivered", "failed"] as const;
export type DeliveryStatus = (typeof deliveryStatuses)[number];

export const webhookEndpoints = pgTable("webhook_endpoints", {
  id: uuid("id").primaryKey().defaultRandom(),
  url: text("url").notNull(),
  /** Event types it wants; null = all. */
  events: text("events").array(),
  description: text("description"),
  /** Standard Webhooks secret (`whsec_<base64>`), shown on create and rotate only. */
  secret: text("secret").notNull(),
  enabled: boolean("enabled").notNull().default(true),
  /** Why it was disabled by the system (failing for WEBHOOK_RETRY_HOURS). */
  disabledReason: text("disabled_reason"),
  /** First failure since the last success: the endpoint is disabled once this is old enough. */
  failingSince: timestamp("failing_since", { withTimezone: true, mode: "date" }),
  ...timestamps,
});

/** One event to one endpoint: the per-endpoint queue the delivery loop drains, oldest event first. */
export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    endpointId: uuid("endpoint_id")
      .notNull()
      .references(() => webhookEndpoints.id, { onDelete: "cascade" }),
    eventId: text("event_id").notNull(),
    eventType: text("event_type").notNull(),
    /** The event's sequence in the events stream: delivery order. */
    eventSeq: bigint("event_seq", { mode: "number" }).notNull(),
    /** The recording or stream it is about. */
    orderKey: text("order_key").notNull(),
    eventCreatedAt: timestamp("event_created_at", { withTimezone: true, mode: "date" }).notNull(),
    body: text("body").notNull(),
    status: text("status", { enum: deliveryStatuses }).notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    claimedBy: text("claimed_by"),
    claimExpiresAt: timestamp("claim_expires_at", { withTimezone: true, mode: "date" }),
    deliveredAt: timestamp("delivered_at", { withTimezone: true, mode: "date" }),
    createdAt: timestamps.createdAt,
  },
  (t) => [
    uniqueIndex("webhook_deliveries_endpoint_event_key").on(t.endpointId, t.eventId),
    index("webhook_deliveries_pending_idx").on(t.endpointId, t.eventSeq).where(sql`${t.status} = 'pending'`),
    check("webhook_deliveries_status_check", sql`${t.status} in ('pending', 'delivered', 'failed')`),
  ],
);

/** Every attempt, for GET /webhooks/{id}/deliveries. */
export const webhookAttempts = pgTable(
  "webhook_attempts",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    deliveryId: bigint("delivery_id", { mode: "number" })
      .notNull()
      .references(() => webhookDeliveries.id, { onDelete: "cascade" }),
    endpointId: uuid("endpoint_id").notNull(),
    eventId: text("event_id").notNull(),
    eventType: text("event_type").notNull(),
    attempt: integer("attempt").notNull(),
    statusCode: integer("status_code"),
    durationMs: integer("duration_ms").notNull(),
    error: text("error"),
    nextRetryAt: timestamp("next_retry_at", { withTimezone: true, mode: "date" }),
    at: timestamp("at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [index("webhook_attempts_endpoint_at_idx").on(t.endpointId, t.at.desc())],
);

/** Raw bytes (PostgreSQL bytea): the live assembly's packed sample tables and codec configuration. */
const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => "bytea" });

export const liveAssemblyStatuses = ["assembling", "abandoned", "complete"] as const;
export type LiveAssemblyStatus = (typeof liveAssemblyStatuses)[number];

/**
 * A broadcast's MP4 built while it is live (convert's live assembly): one row per source prefix. Its media
 * goes into a multipart upload of the final MP4 key as the segments arrive; the sample tables of each
 * uploaded part are in live_assembly_parts. The first segments (held back for part 1, which carries the
 * moov) and the segments after the last part are not stored: they are read again from the bucket.
 */
export const liveAssemblies = pgTable(
  "live_assemblies",
  {
    sourcePrefix: text("source_prefix").primaryKey(),
    playlistKey: text("playlist_key").notNull(),
    mp4Key: text("mp4_key").notNull(),
    uploadId: text("upload_id").notNull(),
    status: text("status", { enum: liveAssemblyStatuses }).notNull().default("assembling"),
    /** Why it was abandoned (the recording is then made by the whole-folder path). */
    reason: text("reason"),
    /** The codec configuration of the first segment (FFmpeg's fragmented-MP4 moov): later segments must match it. */
    init: bytea("init"),
    /** Segments (from the first) whose media opens the MP4 in part 1, and their media bytes. */
    headSegments: integer("head_segments"),
    headBytes: bigint("head_bytes", { mode: "number" }),
    /** Segments covered by the head and the uploaded parts, and a hash of their URIs (the playlist must keep them). */
    segmentsDone: integer("segments_done").notNull().default(0),
    uriHash: text("uri_hash"),
    partsBytes: bigint("parts_bytes", { mode: "number" }).notNull().default(0),
    /** What the finished MP4 holds, once complete (a redelivered ENDLIST event marks the row ready from it). */
    facts: jsonb("facts").$type<Record<string, unknown>>(),
    leaseOwner: text("lease_owner"),
    leaseExpiresAt: timestamp("lease_expires_at", { withTimezone: true, mode: "date" }),
    ...timestamps,
  },
  (t) => [check("live_assemblies_status_check", sql`${t.status} in ('assembling', 'abandoned', 'complete')`)],
);

/** One uploaded part of a live assembly: its ETag, which segments it holds, and their sample tables (packed, zlib). */
export const liveAssemblyParts = pgTable(
  "live_assembly_parts",
  {
    sourcePrefix: text("source_prefix")
      .notNull()
      .references(() => liveAssemblies.sourcePrefix, { onDelete: "cascade" }),
    partNumber: integer("part_number").notNull(),
    etag: text("etag").notNull(),
    firstSegment: integer("first_segment").notNull(),
    segments: integer("segments").notNull(),
    bytes: bigint("bytes", { mode: "number" }).notNull(),
    tables: bytea("tables").notNull(),
  },
  (t) => [primaryKey({ columns: [t.sourcePrefix, t.partNumber] })],
);

export type LiveAssembly = typeof liveAssemblies.$inferSelect;
export type LiveAssemblyPart = typeof liveAssemblyParts.$inferSelect;

export type WebhookEndpoint = typeof webhookEndpoints.$inferSelect;
export type WebhookDelivery = typeof webhookDeliveries.$inferSelect;
export type WebhookAttempt = typeof webhookAttempts.$inferSelect;
export type Recording = typeof recordings.$inferSelect;
export type NewRecording = typeof recordings.$inferInsert;
export type Stream = typeof streams.$inferSelect;
