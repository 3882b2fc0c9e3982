// A clip job on the jobs stream: the API publishes it once the clip's row exists; the clip function's
// replicas share one durable consumer on it. The message id is the clip's id, so a retried publish is dropped.
import { jetstream } from "@nats-io/jetstream";
import type { Config } from "../../lib/config.js";
import type { NatsConnection } from "../../lib/nats.js";
import type { ClipJob } from "./clip.js";

export function clipJobSubject(config: Config): string {
  return `${config.jobs.subjectPrefix}.clip`;
}

/** Resolves once JetStream stored the job; throws when it cannot (no NATS, no stream). */
export async function publishClipJob(nc: NatsConnection, config: Config, job: ClipJob): Promise<void> {
  await jetstream(nc).publish(clipJobSubject(config), JSON.stringify(job), { msgID: `clip-${job.clipId}`, timeout: 5000 });
}
