import { randomUUID } from "node:crypto";
import { createRoute, z } from "@hono/zod-openapi";
import { clipPrefix } from "../../lib/layout.js";
import { getRecording } from "../../db/catalog.js";
import { failAbandonedClips, insertClip, markClipFailed } from "../../db/recordings.js";
import { HttpError } from "../../lib/http/errors.js";
import { bearerAuth } from "../../lib/http/auth.js";
import { createRouter } from "../../lib/http/app.js";
import { apiOrigin } from "./origin.js";
import type { ClipJob } from "../clip/clip.js";
import { covering, sourceSegments, timedSegments } from "../clip/segments.js";
import { publishClipJob } from "../clip/jobs.js";
import type { ApiDeps } from "./deps.js";
import { readLivePlaylist } from "./live.js";
import { ClipBody, ClipCreatedSchema, errors, IdParam, liveClipBody, StreamParam } from "./schemas.js";

const json = <T extends z.ZodType>(schema: T, description: string) => ({ content: { "application/json": { schema } }, description });
const bearer = [{ bearerAuth: [] }];
/** A range may end this far past the recording's stored duration (rounding of durations between tools). */
const END_SLACK_SECONDS = 0.05;

/**
 * A clip still processing after this long was lost by the job queue (its job was given up without the row
 * saying so, or the jobs stream was lost): cuts take seconds and a dead replica's job is redelivered in
 * CLIP_ACK_WAIT_SECONDS, so this is a safety net that should not fire.
 */
const ABANDONED_AFTER_MS = 10 * 60_000;

const fmt = (s: number) => `${Math.round(s * 1000) / 1000} s`;

/**
 * Clips: POST inserts the clip's row (`processing`), publishes a clip job on the jobs stream and answers 201.
 * The clip function's replicas cut it (functions/clip/function.ts): the API stays a thin, stateless front and
 * cutting scales with the clip pool, not with API processes; a replica dying mid-cut hands the job on.
 */
export function clipRoutes(deps: ApiDeps) {
  const { config, db, s3, log } = deps;
  const write = bearerAuth(config.api.token, "create clips");
  const app = createRouter();
  void failAbandonedClips(db, ABANDONED_AFTER_MS, "no clip replica finished cutting this clip; create the clip again")
    .then((n) => n && log.warn({ clips: n }, "abandoned clips marked failed"))
    .catch((err: unknown) => log.warn({ err }, "could not look for abandoned clips"));
  // The row exists before its job: a replica reading the job always finds it. No job, no clip: the row fails.
  const start = async (job: ClipJob) => {
    const nc = deps.nats?.();
    try {
      if (!nc) throw new Error("not connected to NATS");
      await publishClipJob(nc, config, job);
    } catch (err) {
      log.error({ recording: job.clipId, err: (err as Error).message }, "could not queue the clip job");
      await markClipFailed(db, job.clipId, "the clip could not be queued for cutting (the job queue is unavailable); try again shortly");
      throw new HttpError("unavailable", `the clip could not be queued for cutting: ${(err as Error).message}; try again shortly`);
    }
  };

  app.openapi(
    createRoute({
      method: "post",
      path: "/recordings/{id}/clips",
      tags: ["clips"],
      summary: "Cut a clip out of a recording: a recording of its own",
      description:
        "Default: cut at keyframes without re-encoding (the clip starts at the keyframe at or before `start`). `precise: true`: frame-accurate, re-encoding only up to the first keyframe inside the range. Answers at once; poll the clip until its status is ready.",
      middleware: write,
      security: bearer,
      request: { params: IdParam, body: { content: { "application/json": { schema: ClipBody } }, required: true } },
      responses: { 201: json(ClipCreatedSchema, "The clip, being cut"), 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404], 409: errors[409], 503: errors[503] },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const body = c.req.valid("json");
      const parent = await getRecording(db, id);
      if (!parent) throw new HttpError("not_found", `no recording with id ${id} (it may have been deleted); list them with GET /recordings`);
      if (parent.status !== "ready" || !parent.filePath || parent.durationSeconds === null) {
        throw new HttpError("conflict", `recording ${id} is ${parent.status}, not ready: clips are cut from its MP4; try again when its status is ready${parent.status === "live" ? ", or clip the live broadcast with POST /live/{stream}/clips" : ""}`);
      }
      const duration = parent.durationSeconds;
      if (body.end <= body.start) throw new HttpError("invalid_request", `end: must be after start (${fmt(body.start)}); give the clip's end in seconds from the recording's start`, "end");
      if (body.start >= duration) throw new HttpError("invalid_request", `start: ${fmt(body.start)} is outside the recording, which lasts ${fmt(duration)}`, "start");
      if (body.end > duration + END_SLACK_SECONDS) throw new HttpError("invalid_request", `end: ${fmt(body.end)} is outside the recording, which lasts ${fmt(duration)}; use at most ${fmt(duration)}`, "end");
      if (body.end - body.start > config.clips.maxSeconds) {
        throw new HttpError("invalid_request", `end: the clip would last ${fmt(body.end - body.start)}, longer than the ${config.clips.maxSeconds} s a clip may (CLIP_MAX_SECONDS); pick a shorter range`, "end");
      }
      const end = Math.min(body.end, duration);
      const clipId = randomUUID();
      const row = await insertClip(db, {
        id: clipId,
        parentId: parent.id,
        streamId: parent.streamId,
        title: body.title ?? `${parent.title} (clip ${fmt(body.start)}–${fmt(end)})`,
        sourcePrefix: clipPrefix(clipId),
        clipStart: body.start,
        clipEnd: end,
      });
      const storyboard = { bucket: config.s3.hlsBucket, segments: await sourceSegments(s3, config.s3.hlsBucket, parent, body.start, end) };
      await start({ clipId, source: { kind: "mp4", bucket: config.s3.recordingsBucket, key: parent.filePath, videoCodec: parent.videoCodec }, start: body.start, end, precise: body.precise, storyboard });
      log.info({ recording: clipId, parent: parent.id, start: body.start, end, precise: body.precise }, "clip requested");
      const origin = apiOrigin(c.req.url, c.req.header("x-forwarded-proto"));
      return c.json({ id: row.id, status: row.status, url: `${origin}/recordings/${row.id}` }, 201, { location: `/recordings/${row.id}` });
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/live/{stream}/clips",
      tags: ["clips"],
      summary: "Clip the last N seconds of a live broadcast (instant replay)",
      description: "Cuts the last `seconds` already stored, at segment boundaries, while the broadcast goes on. The clip does not change when the broadcast ends.",
      middleware: write,
      security: bearer,
      request: { params: StreamParam, body: { content: { "application/json": { schema: liveClipBody(config.clips.liveMaxSeconds) } }, required: true } },
      responses: { 201: json(ClipCreatedSchema, "The clip, being cut"), 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404], 409: errors[409], 503: errors[503] },
    }),
    async (c) => {
      const { stream } = c.req.valid("param");
      const body = c.req.valid("json");
      const { live, key, text, sourcePrefix } = await readLivePlaylist(deps, stream, "conflict");
      const timed = timedSegments(text, key, sourcePrefix);
      if (timed.length === 0) throw new HttpError("conflict", `stream ${stream} has no stored segments yet; retry in a few seconds`);
      const last = timed[timed.length - 1]!;
      const at = last.start + last.duration;
      // Whole segments (each starts at a keyframe) covering at least the last N seconds.
      const segments = covering(timed, Math.max(0, at - body.seconds), at);
      const clipStart = segments[0]!.start;
      const clipId = randomUUID();
      const row = await insertClip(db, {
        id: clipId,
        parentId: live.recordingId,
        streamId: stream,
        title: body.title ?? `${live.title ?? stream} (last ${Math.round(at - clipStart)} s)`,
        sourcePrefix: clipPrefix(clipId),
        clipStart,
        clipEnd: at,
      });
      const source = { kind: "hls" as const, bucket: config.s3.hlsBucket, segments };
      await start({ clipId, source, start: clipStart, end: at, precise: false, storyboard: source });
      log.info({ recording: clipId, parent: live.recordingId, stream, start: clipStart, end: at }, "live clip requested");
      const origin = apiOrigin(c.req.url, c.req.header("x-forwarded-proto"));
      return c.json({ id: row.id, status: row.status, url: `${origin}/recordings/${row.id}` }, 201, { location: `/recordings/${row.id}` });
    },
  );

  return app;
}
