import type { FunctionSpec } from "../runtime/replica.js";
import { isPlaylistCreated } from "../events/decode.js";
import { handleThumbnail } from "./handler.js";
import { removeDeadJobDirs } from "../convert/workdir.js";

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
  // Folders of replicas that died (kill -9) are removed at start and before every job (see workdir.ts).
  prepare: async ({ config, log }) => {
    await removeDeadJobDirs(config.functions.workDir, log, "thumbnail");
  },
};
