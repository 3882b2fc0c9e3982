import type { S3Client } from "@aws-sdk/client-s3";
import type { Config } from "../../lib/config.js";
import type { Logger } from "../../lib/log.js";
import type { Db } from "../../db/client.js";
import type { StorageEvent } from "../events/decode.js";
import type { EventPublisher } from "../../lib/events.js";

/** What a handler gets besides its event. Everything is passed in, so tests call handlers directly. */
export interface HandlerContext {
  s3: S3Client;
  db: Db;
  log: Logger;
  config: Config;
  /** Aborted when the worker shuts down or the job must stop; pass it to FFmpeg and S3 calls. */
  signal: AbortSignal;
  /**
   * Reports how far the job is (0..1): the runner shows it in the `function_job_progress` gauge and a
   * job log line every few seconds, and it heartbeats the message so a long job is not redelivered.
   */
  progress(fraction: number): Promise<void>;
  /** Delivery attempt of this event, from 1. */
  attempt: number;
  /** Publishes what the handler changed, after it committed; absent when a test calls a handler alone. */
  events?: EventPublisher;
  /** Name of this replica (logs, job claims). */
  worker: string;
  /** How long NATS waits for an ack or heartbeat before redelivering (the consumer's ack_wait); leases should be shorter. */
  redeliverAfterMs?: number;
}

/** One per event the runner hands to a handler: what the handler found, for giveUp to record. */
export interface Job<S = unknown> {
  state?: S;
}

/** A pure function of (event, context, job); the runtime binds it to a JetStream consumer. */
export type Handler<S = unknown, E = StorageEvent> = (event: E, ctx: HandlerContext, job: Job<S>) => Promise<HandlerResult | void>;
export type HandlerResult = "done" | "ignored";

/** Retrying cannot help (a bad playlist, a path escaping its folder): the message is terminated. */
export class PermanentError extends Error {
  readonly kind = "permanent" as const;
  override name = "PermanentError";
}

/** Worth retrying later (S3, DB or NATS hiccup): the message is nak'ed with a growing delay. */
export class TransientError extends Error {
  readonly kind = "transient" as const;
  override name = "TransientError";
  /** When set, the next delivery comes after this long instead of the runtime's growing delay. */
  readonly retryAfterMs?: number;
  constructor(message: string, opts?: { retryAfterMs?: number; cause?: unknown }) {
    super(message, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.retryAfterMs = opts?.retryAfterMs;
  }
}

/** Called once when an event is given up (permanent error, or the last delivery failed), to record why. */
export type GiveUp<S = unknown, E = StorageEvent> = (event: E, reason: string, ctx: HandlerContext, job: Job<S>) => Promise<void>;
