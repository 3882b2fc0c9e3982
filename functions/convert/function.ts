import type { FunctionSpec } from "../runtime/replica.js";
import { isPlaylistCreated } from "../events/decode.js";
import { sweepPeriodically } from "../sweep/periodic.js";
import { retainPeriodically } from "../retention/periodic.js";
import { registerLiveAssemblyMetrics } from "./live-assembly.js";
import { convert, giveUpConvert, prepareConvert, type ConvertState } from "./convert.js";

/** The convert function as the runtime runs it: its events, handler, giveUp, start-up clean-up and the sweep it owns. */
export const convertFunction: FunctionSpec<ConvertState> = {
  name: "convert",
  consumer: (c) => c.nats.consumers.convert,
  accepts: (event, config) => isPlaylistCreated(event, config.s3.hlsBucket),
  handler: convert,
  giveUp: giveUpConvert,
  prepare: prepareConvert,
  // Events can be lost: convert's replicas sweep for finished playlists with no recording (one at a time).
  // Retention (one leader at a time too) deletes what has outlived SOURCE_RETENTION / RECORDING_RETENTION_DAYS.
  background: (deps) => [
    () => sweepPeriodically({ ...deps, intervalMs: deps.config.functions.sweepIntervalMs }),
    () => retainPeriodically({ ...deps, intervalMs: deps.config.functions.retentionIntervalMs }),
    // Not a loop: registers the live assembly's metrics (assemblies in progress, fallbacks by reason) on /metrics.
    async () => registerLiveAssemblyMetrics(deps.registry, deps.db),
  ],
};
