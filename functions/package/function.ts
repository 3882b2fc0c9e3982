import { z } from "zod";
import type { FunctionSpec } from "../runtime/replica.js";
import type { StorageEvent } from "../events/decode.js";
import { PermanentError } from "../runtime/handler.js";
import { giveUpPackage, packageRecording, preparePackage, type PackageState, type ReadyEvent } from "./package.js";
import { sweepAbrPeriodically } from "./sweep.js";

const readyBody = z.object({ id: z.string().min(1), type: z.literal("recording.ready"), data: z.object({ id: z.string().uuid() }).passthrough() });

/**
 * The package function: a durable consumer on the events stream that sees only recording.ready (its filter),
 * one job per replica by default (FUNCTION_CONCURRENCY), and a sweep for ready recordings whose event was lost.
 */
export const packageFunction: FunctionSpec<PackageState> = {
  name: "package",
  consumer: (c) => c.events.packageConsumer,
  source: {
    stream: (c) => c.events.stream,
    decode: (data) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(new TextDecoder().decode(data));
      } catch {
        throw new PermanentError("an event that is not JSON");
      }
      const r = readyBody.safeParse(parsed);
      if (!r.success) throw new PermanentError(`not a recording.ready event: ${r.error.issues[0]?.message ?? "bad shape"}`);
      const e: ReadyEvent = { key: `recording.ready ${r.data.data.id}`, recordingId: r.data.data.id };
      return [e as unknown as StorageEvent];
    },
  },
  accepts: () => true,
  handler: packageRecording,
  giveUp: giveUpPackage,
  prepare: preparePackage,
  background: (deps) => (deps.config.abr.ladder === "off" ? [] : [() => sweepAbrPeriodically(deps)]),
};
