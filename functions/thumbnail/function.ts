import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { FunctionSpec } from "../runtime/replica.js";
import { isPlaylistCreated } from "../events/decode.js";
import { handleThumbnail } from "./handler.js";

// A job's temporary folder lives for seconds; one this old was left by a replica that crashed.
const STALE_TEMP_MS = 60 * 60_000;

/** The thumbnail function as the runtime runs it: which events are its work, its handler, what it clears at start. */
export const thumbnailFunction: FunctionSpec = {
  name: "thumbnail",
  consumer: (config) => config.nats.consumers.thumbnail,
  accepts: (event, config) => isPlaylistCreated(event, config.s3.hlsBucket),
  handler: handleThumbnail,
  // A thumbnail that cannot be made never fails the recording: the reason is logged, the row left alone.
  giveUp: async (event, reason, ctx) => {
    ctx.log.error({ key: event.key, stage: "thumbnail", reason }, "no thumbnail for this playlist");
  },
  prepare: async ({ config, log }) => {
    const root = join(config.functions.workDir, "thumbnail");
    const entries = await readdir(root).catch(() => [] as string[]);
    for (const name of entries) {
      const path = join(root, name);
      const s = await stat(path).catch(() => undefined);
      if (s && Date.now() - s.mtimeMs > STALE_TEMP_MS) {
        await rm(path, { recursive: true, force: true });
        log.info({ path }, "removed a temporary folder left by a crashed replica");
      }
    }
  },
};
