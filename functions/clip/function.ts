import { z } from "zod";
import type { FunctionSpec } from "../runtime/replica.js";
import type { StorageEvent } from "../events/decode.js";
import { PermanentError } from "../runtime/handler.js";
import { getRecording } from "../../db/catalog.js";
import { failClip, makeClip, type ClipJob } from "./clip.js";

const segment = z.object({ key: z.string().min(1), start: z.number(), duration: z.number() }).passthrough();
const jobBody = z.object({
  clipId: z.string().uuid(),
  source: z.discriminatedUnion("kind", [
    z.object({ kind: z.literal("mp4"), bucket: z.string().min(1), key: z.string().min(1), videoCodec: z.string().nullable() }),
    z.object({ kind: z.literal("hls"), bucket: z.string().min(1), segments: z.array(segment).min(1) }),
  ]),
  start: z.number().nonnegative(),
  end: z.number().positive(),
  precise: z.boolean(),
  storyboard: z.object({ bucket: z.string().min(1), segments: z.array(segment) }).optional(),
});

/** A clip job as the runner carries it: `key` names it in logs. */
interface QueuedClip {
  key: string;
  job: ClipJob;
}

/**
 * The clip function: cuts the clips the API queued on the jobs stream, one job per clip, in a pool scaled by
 * replica count like convert and thumbnail. A replica that dies mid-cut stops heartbeating; after
 * CLIP_ACK_WAIT_SECONDS JetStream hands the job to another, which cuts again over the same keys. The row
 * decides: a clip no longer processing (ready, failed, deleted) is acked without work.
 */
export const clipFunction: FunctionSpec = {
  name: "clip",
  consumer: (c) => c.jobs.clipConsumer,
  source: {
    stream: (c) => c.jobs.stream,
    decode: (data) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(new TextDecoder().decode(data));
      } catch {
        throw new PermanentError("a clip job that is not JSON");
      }
      const job = jobBody.parse(parsed) as ClipJob;
      const queued: QueuedClip = { key: `clip ${job.clipId}`, job };
      return [queued as unknown as StorageEvent];
    },
  },
  accepts: () => true,
  handler: async (raw, ctx) => {
    const { job } = raw as unknown as QueuedClip;
    const row = await getRecording(ctx.db, job.clipId);
    if (row?.status !== "processing") {
      ctx.log.info({ recording: job.clipId, status: row?.status ?? "deleted" }, "clip job for a clip no longer processing; nothing to do");
      return "ignored";
    }
    await makeClip({ s3: ctx.s3, db: ctx.db, config: ctx.config, log: ctx.log, signal: ctx.signal, events: ctx.events }, job);
    return "done";
  },
  giveUp: async (raw, reason, ctx) => {
    const { job } = raw as unknown as QueuedClip;
    await failClip({ db: ctx.db, events: ctx.events }, job.clipId, reason);
  },
};
