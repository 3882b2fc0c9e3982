import { randomUUID } from "node:crypto";
import { createRoute, z } from "@hono/zod-openapi";
import { getText, isNotFound } from "../../lib/s3.js";
import { clipPrefix, livePlaylistKey, sessionPrefix } from "../../lib/layout.js";
import { getLiveBroadcast, getRecording } from "../../db/catalog.js";
import { failAbandonedClips, insertClip } from "../../db/recordings.js";
import { HttpError } from "../../lib/http/errors.js";
import { bearerAuth } from "../../lib/http/auth.js";
import { createRouter } from "../../lib/http/app.js";
import { apiOrigin } from "./origin.js";
import { makeClip, type ClipJob } from "../clip/clip.js";
import { covering, sourceSegments, timedSegments } from "../clip/segments.js";
import { createClipJobs } from "../clip/jobs.js";
import type { ApiDeps } from "./deps.js";
import { ClipBody, ClipCreatedSchema, errors, IdParam, liveClipBody, StreamParam } from "./schemas.js";

const json = <T extends z.ZodType>(schema: T, description: string) => ({ content: { "application/json": { schema } }, description });
const bearer = [{ bearerAuth: [] }];
/** A range may end this far past the recording's stored duration (rounding of durations between tools). */
const END_SLACK_SECONDS = 0.05;

/** A clip still processing after this long was being cut by a process that stopped (cuts take seconds). */
const ABANDONED_AFTER_MS = 10 * 60_000;

const fmt = (s: number) => `${Math.round(s * 1000) / 1000} s`;

/**
 * Clips: POST answers at once with the clip's row (`processing`) and the cut runs in this process right after.
 * It runs here rather than as a JetStream job because a clip reads only the range's bytes (seconds of work,
 * independent of the parent's length) and the caller waits for it; a queue hop would add latency and a
 * second place to fail for no gain at this cost. A job that dies with the process is marked failed by
 * the next API process that starts (after ABANDONED_AFTER_MS); asking again makes a new clip.
 */
export function clipRoutes(deps: ApiDeps) {
  const { config, db, s3, log } = deps;
  const write = bearerAuth(config.api.token, "create clips");
  const app = createRouter();
  const jobs = deps.clipJobs ?? createClipJobs();
  void failAbandonedClips(db, ABANDONED_AFTER_MS, "the API process cutting this clip stopped before it was done; create the clip again")
    .then((n) => n && log.warn({ clips: n }, "abandoned clips marked failed"))
    .catch((err: unknown) => log.warn({ err }, "could not look for abandoned clips"));
  const start = (job: ClipJob) => jobs.add(makeClip({ s3, db, config, log, events: deps.events }, job));

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
      responses: { 201: json(ClipCreatedSchema, "The clip, being cut"), 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404], 409: errors[409] },
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
      start({ clipId, source: { kind: "mp4", bucket: config.s3.recordingsBucket, key: parent.filePath, videoCodec: parent.videoCodec }, start: body.start, end, precise: body.precise, storyboard });
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
      responses: { 201: json(ClipCreatedSchema, "The clip, being cut"), 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404], 409: errors[409] },
    }),
    async (c) => {
      const { stream } = c.req.valid("param");
      const body = c.req.valid("json");
      const live = await getLiveBroadcast(db, stream);
      if (!live?.sessionId) throw new HttpError("not_found", `stream ${stream} is not live now; GET /live lists the broadcasts that are`);
      const key = livePlaylistKey(stream, live.sessionId);
      let text: string;
      try {
        text = await getText(s3, config.s3.hlsBucket, key);
      } catch (err) {
        if (isNotFound(err)) throw new HttpError("conflict", `stream ${stream} is live but has not stored its first segments yet; retry in a few seconds`);
        throw err;
      }
      const timed = timedSegments(text, key, sessionPrefix(stream, live.sessionId));
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
      start({ clipId, source, start: clipStart, end: at, precise: false, storyboard: source });
      log.info({ recording: clipId, parent: live.recordingId, stream, start: clipStart, end: at }, "live clip requested");
      const origin = apiOrigin(c.req.url, c.req.header("x-forwarded-proto"));
      return c.json({ id: row.id, status: row.status, url: `${origin}/recordings/${row.id}` }, 201, { location: `/recordings/${row.id}` });
    },
  );

  return app;
}
