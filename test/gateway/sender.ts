// The native SRT load generator (bench/srt-sender.c): built on first use into bench/.cache, rebuilt
// when its source changes (the file name carries the source's hash), like install.sh does for the addon.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, rename } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const source = join(root, "bench", "srt-sender.c");

export async function senderBinary(): Promise<string> {
  const hash = createHash("sha256").update(readFileSync(source)).digest("hex").slice(0, 12);
  const bin = join(root, "bench", ".cache", `srt-sender-${hash}`);
  if (existsSync(bin)) return bin;
  await mkdir(dirname(bin), { recursive: true });
  const flags = (await execa("pkg-config", ["--cflags", "--libs", "srt"])).stdout.split(/\s+/).filter(Boolean);
  await execa("cc", ["-O2", "-Wall", "-o", `${bin}.part`, source, ...flags]);
  await rename(`${bin}.part`, bin);
  return bin;
}

export interface SenderOptions {
  port: number;
  file: string;
  /** Seconds of media in the file (paces the bytes). */
  mediaSeconds: number;
  streams?: number;
  /** printf format with one %d, e.g. "#!::r=bench-%d,m=publish". */
  streamidFormat?: string;
  /** One raw streamid as hex: any bytes, for hostile-input tests. */
  streamidHex?: string;
  passphrase?: string;
  /** A passphrase as hex: any bytes. */
  passphraseHex?: string;
  /** 1 real time, 2 twice as fast, 0 unpaced. */
  rate?: number;
  /** Starts spread over this many ms. */
  spreadMs?: number;
  /** Wall seconds to run (the file loops); default: the file once. */
  seconds?: number;
  /** Local UDP ports the connections are spread over (callers from many addresses); default 1. */
  localPorts?: number;
}

export interface SenderResult {
  connected: number;
  refused: number;
  rejectReasons: number[];
  bytesSent: number;
  seconds: number;
  exitCode: number;
}

export function sendArgs(o: SenderOptions): string[] {
  const a = ["-p", String(o.port), "-f", o.file, "-d", String(o.mediaSeconds), "-n", String(o.streams ?? 1)];
  if (o.streamidHex !== undefined) a.push("-x", o.streamidHex);
  else if (o.streamidFormat) a.push("-s", o.streamidFormat);
  if (o.passphrase !== undefined) a.push("-k", o.passphrase);
  if (o.passphraseHex !== undefined) a.push("-K", o.passphraseHex);
  if (o.rate !== undefined) a.push("-r", String(o.rate));
  if (o.spreadMs) a.push("-w", String(o.spreadMs));
  if (o.seconds) a.push("-t", String(o.seconds));
  if (o.localPorts) a.push("-m", String(o.localPorts));
  return a;
}

export async function send(o: SenderOptions): Promise<SenderResult> {
  const r = await execa(await senderBinary(), sendArgs(o), { reject: false });
  const line = r.stdout.trim().split("\n").at(-1) ?? "";
  if (!line.startsWith("{")) throw new Error(`srt-sender failed (${r.exitCode}): ${r.stderr}`);
  return { ...(JSON.parse(line) as Omit<SenderResult, "exitCode">), exitCode: r.exitCode ?? -1 };
}
