// Typed access to the native SRT listener (src/*.cc, built by node-gyp from infra/install.sh).
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
export const addonPath = join(here, "build", "Release", "srt_ingest.node");

export type RefusalReason =
  | "bad-streamid"
  | "unknown-stream"
  | "disabled"
  | "bad-secret-config"
  | "wrong-passphrase"
  | "no-passphrase"
  | "unexpected-passphrase"
  | "held"
  /** Not from the addon: a "held" refusal after the stream reached its maximum broadcast length (told by the stream table). */
  | "max-duration";

export type SrtEvent =
  | { type: "connect"; id: number; stream: string; peer: string }
  | { type: "data"; id: number; chunk: Buffer }
  /** reason: "closed" the caller hung up, "timeout" the link went silent, "stopped" we closed it. */
  | { type: "close"; id: number; stream: string; reason: "closed" | "timeout" | "stopped"; idleMs: number; bytes: number }
  | { type: "refused"; stream: string; peer: string; reason: RefusalReason; message: string; code: number }
  | { type: "log"; level: "error" | "warn"; area: string; message: string };

export interface SrtStats {
  bytesReceived: number;
  mbpsReceiveRate: number;
  packetsLost: number;
  packetsDropped: number;
  rttMs: number;
  msLatency: number;
}

export interface StreamAccess {
  name: string;
  passphrase: string;
  disabled?: boolean;
  /** Refuse callers with this message for now (the stream was just stopped through the API). */
  hold?: string;
}

export interface IngestServerOptions {
  /** false: any stream name is accepted without a passphrase (development). */
  auth: boolean;
  /** Silence after which libsrt declares the caller gone. */
  peerIdleMs?: number;
  latencyMs?: number;
  /** Received bytes held for JavaScript per connection before the receive thread waits. */
  maxPendingBytes?: number;
}

export interface NativeIngestServer {
  listen(host: string, port: number): void;
  /** Replaces the table the listen callback answers from (it must never wait for the DB). */
  setStreams(streams: StreamAccess[]): void;
  close(id: number): boolean;
  /** Stops reading a connection (libsrt buffers, then drops late packets) until resumed. */
  pause(id: number, paused: boolean): boolean;
  stats(id: number): SrtStats | undefined;
  stop(): void;
}

interface Addon {
  IngestServer: new (opts: IngestServerOptions, onEvent: (ev: SrtEvent) => void) => NativeIngestServer;
  parseStreamId(raw: string): { name?: string; error?: string };
  srtVersion: string;
}

export class AddonMissingError extends Error {
  readonly kind = "addon-missing" as const;
  override name = "AddonMissingError";
}

let loaded: Addon | undefined;

export function loadAddon(): Addon {
  if (loaded) return loaded;
  if (!existsSync(addonPath))
    throw new AddonMissingError(`the SRT addon is not built (${addonPath} is missing); run 'bash infra/install.sh' or 'npx node-gyp rebuild' in ingest-gateway/srt`);
  loaded = createRequire(import.meta.url)(addonPath) as Addon;
  return loaded;
}
