// Typed access to the native SRT listener (src/*.cc, built by node-gyp from infra/install.sh).
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
export const addonPath = join(here, "build", "Release", "srt_ingest.node");
/** The SRT listener process (src/daemon.cc): libsrt and every media byte live there, not in the Node process. */
export const daemonPath = join(here, "build", "Release", "srt-ingestd");

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
  /** The receive thread's probe decided (media bytes themselves never reach JavaScript). */
  | ({ type: "probe"; id: number } & ProbeDecision)
  /**
   * reason: "closed" the caller hung up, "timeout" the link went silent, "stopped" we closed it,
   * "stalled" no byte moved for stallMs while connected (caller silent, or segmenter not reading).
   * bytesDropped: received but never written to a segmenter (it had exited, or none was attached).
   */
  | { type: "close"; id: number; stream: string; reason: CloseReason; detail?: string; idleMs: number; bytes: number; bytesDropped: number }
  | { type: "refused"; stream: string; peer: string; reason: RefusalReason; message: string; code: number }
  | { type: "log"; level: "error" | "warn"; area: string; message: string }
  /** The listener process died (it is not restarted: the gateway must end so its supervisor starts a whole new one). */
  | { type: "fatal"; message: string };

export type CloseReason = "closed" | "timeout" | "stopped" | "stalled";

export type Profile = "copy" | "transcode";

export interface ProbeDecision {
  profile: Profile;
  /** Why, for the logs and GET /streams. */
  reason: string;
  video?: string;
  audio?: string;
  keyframeIntervalSeconds?: number;
}

export interface SrtStats {
  bytesReceived: number;
  /** Written into the segmenter's stdin by the receive thread. */
  bytesToSegmenter: number;
  bytesDropped: number;
  /** Time the receive thread waited for the segmenter to take bytes. */
  backpressureMs: number;
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
  /** Path of srt-ingestd (daemonPath), started as a child process by the constructor. */
  daemon: string;
  /** false: any stream name is accepted without a passphrase (development). */
  auth: boolean;
  /** Silence after which libsrt declares the caller gone. */
  peerIdleMs?: number;
  latencyMs?: number;
  /** Received bytes held per connection until its segmenter is attached; reading waits beyond. */
  maxPendingBytes?: number;
  /** Segment length: the probe passes H.264 through when keyframes are at most this far apart. */
  segmentSeconds?: number;
  /** A connection that moves no byte this long is ended ("stalled"). */
  stallMs?: number;
  /** After a hang-up, bytes not yet given to a segmenter wait this long for one. */
  lingerMs?: number;
  /** Kernel receive buffer asked for each listener's UDP socket. */
  udpReceiveBuffer?: number;
  /**
   * Listeners on the one port, each on its own UDP socket (SO_REUSEPORT when more than one) and so its own
   * libsrt multiplexer and receive thread; the kernel hashes each caller's address to one of them.
   */
  listeners?: number;
}

export interface ListenResult {
  udpReceiveBufferRequested: number;
  /** What the kernel granted (it caps the request at net.core.rmem_max). */
  udpReceiveBufferGranted: number;
  listeners: number;
  /** libsrt receive threads raised to nice -10 (0: the process may not raise priorities; they run at its own). */
  receiveThreadsRaised: number;
}

export interface NativeIngestServer {
  /** The srt-ingestd process's pid. */
  readonly pid: number;
  listen(host: string, port: number): ListenResult;
  /** Replaces the table the listen callback answers from (it must never wait for the DB). */
  setStreams(streams: StreamAccess[]): void;
  close(id: number): boolean;
  /**
   * Hands the connection's receive thread a pipe's write end (the segmenter's stdin): it writes what it
   * holds, then every byte as it arrives, and closes the fd when the connection ends. Sent without waiting:
   * the fd is closed here once sent (a connection already gone closes the listener's copy, and the segmenter
   * reads end of input). false: the listener could not be reached (the fd stays the caller's to close).
   */
  attach(id: number, fd: number): boolean;
  /** Every live connection's figures, by connection id, in one round trip to the listener. */
  statsAll(): Record<string, SrtStats>;
  stop(): void;
}

interface Addon {
  IngestServer: new (opts: IngestServerOptions, onEvent: (ev: SrtEvent) => void) => NativeIngestServer;
  parseStreamId(raw: string): { name?: string; error?: string };
  /** A close-on-exec pipe [readFd, writeFd] of 1 MB. */
  makePipe(): [number, number];
  /**
   * posix_spawn (vfork-style: costs the same whatever the gateway's memory, unlike Node's fork-based spawn) with
   * stdinFd as the child's stdin and pipes for stdout and stderr. Throws when the program cannot be started.
   */
  spawn(file: string, args: readonly string[], stdinFd: number): { pid: number; stdoutFd: number; stderrFd: number };
  /** Calls back once the child exits: its exit code (null when killed) and the signal number (0 when none). */
  waitExit(pid: number, onExit: (code: number | null, signal: number) => void): void;
  /** The receive thread's probe over these chunks (tests). */
  probeTs(chunks: Buffer[], segmentSeconds: number): ProbeDecision | undefined;
  hasIdrSlice(b: Buffer): boolean;
  srtVersion: string;
}

export class AddonMissingError extends Error {
  readonly kind = "addon-missing" as const;
  override name = "AddonMissingError";
}

let loaded: Addon | undefined;

export function loadAddon(): Addon {
  if (loaded) return loaded;
  for (const path of [addonPath, daemonPath])
    if (!existsSync(path))
      throw new AddonMissingError(`the SRT addon is not built (${path} is missing); run 'bash infra/install.sh' or 'npx node-gyp rebuild' in ingest-gateway/srt`);
  loaded = createRequire(import.meta.url)(addonPath) as Addon;
  return loaded;
}
