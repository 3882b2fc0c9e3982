import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { parsePlaylist, type MasterPlaylist, type MediaPlaylist } from "../../lib/hls/index.js";
import type { PlannedRendition } from "./ladder.js";
import type { AbrRendition } from "../../db/schema.js";

// The master playlist is written here rather than taken from FFmpeg's DASH muxer: its master has no
// AVERAGE-BANDWIDTH or FRAME-RATE, and its BANDWIDTH is the target, not what the segments hold.

/** A rung as the master playlist names it: like the stored AbrRendition, but `playlist` is the file name in the package folder. */
export type PackagedRendition = AbrRendition;

interface Rate {
  peak: number;
  average: number;
}

/** Peak (over segments) and average bit rates of one representation, measured from its files. */
async function measure(dir: string, playlistName: string): Promise<Rate> {
  const media = parsePlaylist(await readFile(join(dir, playlistName), "utf8"), playlistName) as MediaPlaylist;
  let bits = 0;
  let seconds = 0;
  let peak = 0;
  for (const seg of media.segments) {
    const b = (await stat(join(dir, seg.uri))).size * 8;
    bits += b;
    seconds += seg.duration;
    if (seg.duration > 0) peak = Math.max(peak, b / seg.duration);
  }
  const init = media.segments[0]?.map?.uri;
  if (init) bits += (await stat(join(dir, init))).size * 8;
  return { peak: Math.ceil(peak), average: Math.ceil(seconds > 0 ? bits / seconds : 0) };
}

/** Video representations are 0..n-1 and audio is n, in the order the FFmpeg command maps them. */
export async function writeMaster(dir: string, planned: PlannedRendition[], hasAudio: boolean, frameRate: number): Promise<{ text: string; renditions: PackagedRendition[] }> {
  const ffMaster = parsePlaylist(await readFile(join(dir, "master.m3u8"), "utf8"), "master.m3u8") as MasterPlaylist;
  const audioName = `media_${planned.length}.m3u8`;
  const audio = hasAudio ? await measure(dir, audioName) : { peak: 0, average: 0 };
  const audioCodec = hasAudio ? ffMaster.variants[0]?.codecs?.split(",").find((c) => c.startsWith("mp4a")) ?? "mp4a.40.2" : undefined;
  const fps = Math.round(frameRate * 1000) / 1000;
  const renditions: PackagedRendition[] = [];
  for (const [i, r] of planned.entries()) {
    const playlist = `media_${i}.m3u8`;
    const v = ffMaster.variants.find((x) => x.uri === playlist);
    const videoCodec = v?.codecs?.split(",").find((c) => c.startsWith("avc1")) ?? "avc1.64001f";
    const rate = await measure(dir, playlist);
    renditions.push({
      name: r.name,
      width: r.width,
      height: r.height,
      bandwidth: rate.peak + audio.peak,
      averageBandwidth: rate.average + audio.average,
      codecs: audioCodec ? `${videoCodec},${audioCodec}` : videoCodec,
      frameRate: fps,
      playlist,
      copied: r.copy,
    });
  }
  const lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"];
  if (hasAudio) lines.push(`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,URI="${audioName}"`);
  for (const r of renditions) {
    lines.push(
      `#EXT-X-STREAM-INF:BANDWIDTH=${r.bandwidth},AVERAGE-BANDWIDTH=${r.averageBandwidth},RESOLUTION=${r.width}x${r.height},CODECS="${r.codecs}",FRAME-RATE=${r.frameRate.toFixed(3)}${hasAudio ? ',AUDIO="audio"' : ""}`,
      r.playlist,
    );
  }
  return { text: `${lines.join("\n")}\n`, renditions };
}
