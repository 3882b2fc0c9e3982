import { runFunction } from "../runtime/replica.js";
import { isPlaylistCreated } from "../events/decode.js";
import { sweepPeriodically } from "../sweep/periodic.js";
import { convert, giveUpConvert, prepareConvert } from "./convert.js";

// One convert replica: `make up` starts CONVERT_REPLICAS of these (REPLICA_ID convert-1, convert-2, ...).
await runFunction({
  name: "convert",
  consumer: (c) => c.nats.consumers.convert,
  accepts: (event, config) => isPlaylistCreated(event, config.s3.hlsBucket),
  handler: convert,
  giveUp: giveUpConvert,
  prepare: prepareConvert,
  // Events can be lost: convert's replicas sweep for finished playlists with no recording (one at a time).
  background: (deps) => [() => sweepPeriodically({ ...deps, intervalMs: deps.config.functions.sweepIntervalMs })],
});
