// The API's shapes, declared once: they validate requests, type the handlers and write /openapi.json.
import { z } from "@hono/zod-openapi";
import { abrStatuses, recordingKinds, recordingStatuses } from "../../db/schema.js";
import { CURSOR_MESSAGE, CURSOR_PATTERN } from "./cursor.js";
import { errorKinds } from "../../lib/http/errors.js";

export const ErrorSchema = z
  .object({
    error: z.object({
      kind: z.enum(Object.keys(errorKinds) as [keyof typeof errorKinds, ...(keyof typeof errorKinds)[]]),
      message: z.string().openapi({ example: "limit: expected an integer from 1 to 200" }),
      field: z.string().optional().openapi({ description: "The request field that was wrong, for 400s", example: "limit" }),
    }),
  })
  .openapi("Error");

const errorResponse = (description: string) => ({ content: { "application/json": { schema: ErrorSchema } }, description });
export const errors = {
  400: errorResponse("A parameter or the body is wrong; `field` names it"),
  401: errorResponse("No bearer token was sent"),
  403: errorResponse("The bearer token is wrong, or writes are disabled because API_TOKEN is not set"),
  404: errorResponse("No such recording or broadcast"),
  409: errorResponse("The recording is in a state that forbids this"),
  410: errorResponse("The source HLS was deleted by the retention settings; the MP4 stays"),
  502: errorResponse("The stored HLS playlist could not be served"),
  503: errorResponse("A dependency (database, object store) did not answer"),
};

// PostgreSQL refuses NUL in text: a string holding one is the client's mistake (400), never the database's (500).
const NUL_MESSAGE = "must not contain NUL characters (\\u0000); remove them";
// As a pattern (not a refinement) so /openapi.json says it too, and fuzzers and clients can know.
const NO_NUL = /^[^\u0000]*$/;
// trim()'s whitespace spelled out: `\s` means other characters to other regex engines (Python's includes \x1c-\x1f).
const TRIMMED = "\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff";
/** Some character trim() keeps, and no NUL: what a title or a search needs, as a pattern /openapi.json carries. */
const SOME_TEXT = new RegExp(`^[^\\u0000]*[^\\u0000${TRIMMED}][^\\u0000]*$`);

/** An ISO date (`2025-01-31`) or date-time (`2025-01-31T12:00:00Z`). */
const FIRST_DATE = Date.parse("0001-01-01T00:00:00Z");
const LAST_DATE = Date.parse("9999-12-31T23:59:59.999Z");
const isoDate = (what: string) =>
  z
    .string()
    .refine((v) => /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(v) && !Number.isNaN(Date.parse(v)), {
      message: `expected an ISO date like 2025-01-31 or 2025-01-31T12:00:00Z (${what})`,
    })
    // An offset can carry 0001-01-01 into year 0 (or 9999-12-31 into 10000), which PostgreSQL refuses; no row is that old or new.
    .transform((v) => new Date(Math.min(Math.max(Date.parse(v), FIRST_DATE), LAST_DATE)))
    .openapi({ type: "string", format: "date-time", example: "2025-01-31T00:00:00Z" });

export const ListQuery = z.object({
  limit: z.coerce
    .number({ error: "expected an integer from 1 to 200" })
    .int("expected an integer from 1 to 200")
    .min(1, "expected an integer from 1 to 200")
    .max(200, "expected an integer from 1 to 200")
    .default(50)
    .openapi({ example: 50, description: "Page size, 1-200 (default 50)" }),
  cursor: z.string().regex(CURSOR_PATTERN, CURSOR_MESSAGE).optional().openapi({ description: "The `nextCursor` of the previous page" }),
  status: z.enum(recordingStatuses, { error: `expected one of ${recordingStatuses.join(", ")}` }).optional(),
  kind: z.enum(recordingKinds, { error: `expected one of ${recordingKinds.join(", ")}` }).optional().openapi({ description: "Only clips, or only recordings that are not clips" }),
  parent: z.uuid({ error: "expected a recording id (a UUID)" }).optional().openapi({ description: "Only the clips cut from this recording" }),
  stream: z.string().min(1, "expected a stream name").max(500, "expected at most 500 characters").regex(NO_NUL, NUL_MESSAGE).optional().openapi({ description: "Exact stream name (or dropped folder path)" }),
  from: isoDate("recordings created at or after it").optional().openapi({ description: "Created at or after (inclusive)" }),
  to: isoDate("recordings created before it").optional().openapi({ description: "Created before (exclusive); a `to` at or before `from` is an empty range and matches nothing" }),
  q: z.string().max(200, "expected at most 200 characters").trim().min(1, "expected at least one character to search for").regex(SOME_TEXT, NUL_MESSAGE).optional().openapi({ description: "Search: a substring of the title or stream name, any case" }),
});

export const IdParam = z.object({
  id: z.uuid({ error: "expected a recording id (a UUID like 6f1c…-…)" }).openapi({ param: { name: "id", in: "path" }, example: "0f8fad5b-d9cb-469f-a165-70867728950e" }),
});

export const StreamParam = z.object({
  stream: z.string().min(1).max(200).regex(NO_NUL, NUL_MESSAGE).openapi({ param: { name: "stream", in: "path" }, example: "studio-a" }),
});

export const HlsQuery = z.object({
  variant: z.string().min(1).max(1000).regex(NO_NUL, NUL_MESSAGE).optional().openapi({ description: "For a master playlist: the variant's key, as the master playlist served by this route links it" }),
});

const RecordingBase = {
  id: z.uuid(),
  stream: z.string().openapi({ description: "Stream name, or the folder path for a dropped folder" }),
  title: z.string(),
  status: z.enum(recordingStatuses),
  progress: z.number().openapi({ description: "0..1 while processing, 1 when ready" }),
  error: z.string().nullable().openapi({ description: "Why it failed, when it did" }),
  durationSeconds: z.number().nullable(),
  fileSizeBytes: z.number().nullable(),
  width: z.number().int().nullable(),
  height: z.number().int().nullable(),
  createdAt: z.string().openapi({ format: "date-time" }),
  updatedAt: z.string().openapi({ format: "date-time" }),
  thumbnailUrl: z.string().nullable().openapi({ description: "Presigned, expiring JPEG link" }),
  storyboardUrl: z.string().nullable().openapi({ description: "WebVTT of preview tiles (served by the API, tiles presigned)" }),
  kind: z.enum(recordingKinds).openapi({ description: "`clip` for a clip cut from another recording" }),
  parentId: z.uuid().nullable().openapi({ description: "A clip's parent recording (which may since have been deleted)" }),
  clipStart: z.number().nullable().openapi({ description: "A clip's start on its parent's timeline, seconds" }),
  clipEnd: z.number().nullable().openapi({ description: "A clip's end on its parent's timeline, seconds" }),
};

export const RecordingSummarySchema = z.object(RecordingBase).openapi("RecordingSummary");

export const RecordingSchema = z
  .object({
    ...RecordingBase,
    videoCodec: z.string().nullable(),
    audioCodec: z.string().nullable(),
    sourcePrefix: z.string().openapi({ description: "The recording's source prefix (its HLS folder in hls-streams, no trailing slash)" }),
    sourceFolder: z.string().openapi({ deprecated: true, description: "Deprecated: the same value as sourcePrefix, kept for clients written before it" }),
    sessionId: z.string().nullable(),
    videoUrl: z.string().nullable().openapi({ description: "Presigned, expiring MP4 link (byte ranges work); null until ready" }),
    hlsUrl: z.string().nullable().openapi({ description: "The source HLS as a VOD playlist (served by the API, segments presigned); null once retention deleted the source" }),
    pinned: z.boolean().openapi({ description: "Kept regardless of the recording retention" }),
    source: z
      .object({
        kept: z.boolean(),
        deletedAt: z.string().nullable().openapi({ format: "date-time" }),
        reason: z.string().nullable().openapi({ description: "Why the retention job deleted the source HLS" }),
      })
      .openapi({ description: "Whether the source HLS folder is still stored" }),
    liveUrl: z.string().nullable().openapi({ description: "While live: the broadcast's playlist" }),
    linksExpireAt: z.string().openapi({ format: "date-time", description: "When the presigned links stop working, at the earliest" }),
    warnings: z
      .array(
        z.object({
          kind: z.enum(["missing-media", "gap"]).openapi({ description: "missing-media: segments that could not be read (damage); gap: seconds the source playlist marks as missing (#EXT-X-GAP), such as segments the gateway could not store" }),
          message: z.string().openapi({ description: "What is missing and where, in words" }),
          missingSeconds: z.number(),
          at: z.array(z.object({ segment: z.string(), startSeconds: z.number(), missingSeconds: z.number() })).openapi({ description: "Where on the source's timeline" }),
        }),
      )
      .openapi({ description: "Ready, but the source was damaged: what the MP4 lacks" }),
    audioTracks: z.array(z.object({ language: z.string().nullable(), name: z.string().nullable(), default: z.boolean() })).openapi({ description: "The MP4's audio tracks in order" }),
    subtitles: z
      .array(z.object({ language: z.string().nullable(), name: z.string(), url: z.string().openapi({ description: "The WebVTT side-car, served by the API" }) }))
      .openapi({ description: "Subtitle side-cars (from the source's WebVTT renditions)" }),
    abrStatus: z.enum(abrStatuses).nullable().openapi({ description: "The ABR ladder's own status (the recording stays ready whatever it is); null when packaging is off" }),
    abrProgress: z.number().openapi({ description: "0..1 while the ladder is being packaged" }),
    abrError: z.string().nullable().openapi({ description: "Why the ladder could not be made, when it could not" }),
    abrUrl: z.string().nullable().openapi({ description: "The ladder's HLS master playlist (served by the API, segments presigned); null until abrStatus is ready" }),
    dashUrl: z.string().nullable().openapi({ description: "The ladder's DASH manifest over the same CMAF segments (served by the API); null until ready" }),
    renditions: z
      .array(z.object({ name: z.string(), width: z.number().int(), height: z.number().int(), bandwidth: z.number().int(), averageBandwidth: z.number().int(), codecs: z.string(), frameRate: z.number(), copied: z.boolean() }))
      .openapi({ description: "The ladder's renditions, highest first" }),
  })
  .openapi("Recording");

export const AbrFileParam = z.object({
  id: IdParam.shape.id,
  file: z
    .string()
    .regex(/^(master\.m3u8|manifest\.mpd|media_\d{1,3}\.m3u8|init_\d{1,3}\.m4s|seg_\d{1,3}_\d{1,9}\.m4s)$/, "expected a file of the ladder, as its master playlist or DASH manifest names it")
    .openapi({ param: { name: "file", in: "path" }, example: "master.m3u8" }),
});

export const SubtitleParam = z.object({
  id: IdParam.shape.id,
  index: z.coerce.number({ error: "expected the subtitle's index, as its url gives it" }).int().min(0).max(9999).openapi({ type: "integer", minimum: 0, maximum: 9999, param: { name: "index", in: "path" }, example: 0 }),
});

export const RecordingPageSchema = z
  .object({
    items: z.array(RecordingSummarySchema),
    nextCursor: z.string().nullable().openapi({ description: "Pass as `cursor` for the next page; null on the last page" }),
  })
  .openapi("RecordingPage");

export const RenameBody = z
  .object({
    title: z
      .string({ error: "expected a string" })
      .max(200, "expected a title of 1 to 200 characters")
      .trim()
      .min(1, "expected a title of 1 to 200 characters")
      .regex(SOME_TEXT, NUL_MESSAGE)
      .optional(),
    pinned: z.boolean({ error: "expected true or false" }).optional().openapi({ description: "A pinned recording is kept regardless of RECORDING_RETENTION_DAYS" }),
  })
  .strict()
  // Said twice on purpose: the refinement gives the message, minProperties tells /openapi.json (and fuzzers).
  .refine((b) => b.title !== undefined || b.pinned !== undefined, { message: "give title and/or pinned", path: ["title"] })
  .openapi("Rename", { minProperties: 1 });

export const LiveBroadcastSchema = z
  .object({
    stream: z.string(),
    title: z.string().nullable(),
    sessionId: z.string(),
    recordingId: z.string().nullable(),
    startedAt: z.string().nullable().openapi({ format: "date-time" }),
    lastSegmentAt: z.string().nullable().openapi({ format: "date-time" }),
    playlistUrl: z.string().openapi({ description: "HLS playlist served by the API (segments presigned); play it with hls.js or Safari" }),
    thumbnailUrl: z.string().nullable(),
  })
  .openapi("LiveBroadcast");

export const LiveListSchema = z.object({ items: z.array(LiveBroadcastSchema) }).openapi("LiveBroadcasts");

const seconds = () =>
  z.number({ error: "expected a number of seconds" }).finite("expected a finite number of seconds").min(0, "expected seconds from the recording's start, 0 or more");

export const ClipBody = z
  .object({
    start: seconds().openapi({ description: "Seconds from the recording's start", example: 10 }),
    end: seconds().openapi({ description: "Seconds from the recording's start, after start", example: 25 }),
    title: z.string({ error: "expected a string" }).max(200, "expected a title of 1 to 200 characters").trim().min(1, "expected a title of 1 to 200 characters").regex(SOME_TEXT, NUL_MESSAGE).optional(),
    precise: z.boolean({ error: "expected true or false" }).default(false).openapi({ description: "Frame-accurate start and end (re-encodes only up to the first keyframe inside the range); default: cut at keyframes, no re-encoding" }),
  })
  .strict()
  .openapi("ClipRequest");

/** The live clip request; its maximum is the API's CLIP_LIVE_MAX_SECONDS, so /openapi.json says it too. */
export const liveClipBody = (maxSeconds: number) =>
  z
    .object({
      seconds: z
        .number({ error: "expected a number of seconds" })
        .finite()
        .positive("expected more than 0 seconds")
        .max(maxSeconds, `at most ${maxSeconds} (CLIP_LIVE_MAX_SECONDS); clip the recording once the broadcast ends for a longer range`)
        .default(Math.min(30, maxSeconds))
        .openapi({ description: "The last N seconds already stored (default 30, at most CLIP_LIVE_MAX_SECONDS)", example: Math.min(30, maxSeconds) }),
      title: ClipBody.shape.title,
    })
    .strict()
    .openapi("LiveClipRequest");

export const ClipCreatedSchema = z
  .object({
    id: z.uuid().openapi({ description: "The clip's recording id: poll GET /recordings/{id} until its status is ready" }),
    status: z.enum(recordingStatuses),
    url: z.string().openapi({ description: "The clip's recording" }),
  })
  .openapi("ClipCreated");
