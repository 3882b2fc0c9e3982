// Reading the fragmented MP4 FFmpeg writes for one HLS segment (functions/convert/live-assembly.ts runs it with
// -c copy -copyts -movflags frag_custom+empty_moov+default_base_moof+delay_moov+frag_discont): its moov (the
// codec configuration of each track, as FFmpeg's MP4 muxer writes it for the whole-folder path too) and, for
// each track run, the samples' sizes, durations, composition offsets and keyframe flags, plus the media bytes.
//
// Boxes are read by hand: the few we need (moov/trak/mdhd/hdlr/stsd, moof/traf/tfhd/tfdt/trun, mdat) have fixed
// layouts, and the MP4 libraries for Node either parse whole files into objects (mp4box) or hide the sample
// tables behind their own muxer (mediabunny), which would not let replicas share the work through PostgreSQL.

/** A malformed or unexpected MP4 box: the segment cannot be assembled incrementally (the whole-folder path can). */
export class FragmentError extends Error {
  readonly kind = "fragment" as const;
  override name = "FragmentError";
}

export interface Box {
  type: string;
  /** Offset of the box's first byte, of its payload (after the header), and of its end, in the buffer. */
  start: number;
  payload: number;
  end: number;
}

const fragmentError = (message: string): Error => new FragmentError(message);

/**
 * The box whose header starts at `pos` of `buf`; `end` bounds it (a size of 0 runs to it). `malformed` makes the
 * caller's error; `origin` is the offset of buf[0] in the file, for the message (a header read on its own).
 */
export function boxAt(buf: Buffer, pos: number, end: number, malformed: (message: string) => Error = fragmentError, origin = 0): Box {
  let size = buf.readUInt32BE(pos);
  const type = buf.toString("latin1", pos + 4, pos + 8);
  let header = 8;
  if (size === 1) {
    size = Number(buf.readBigUInt64BE(pos + 8));
    header = 16;
  } else if (size === 0) size = end - pos;
  if (size < header || pos + size > end) throw malformed(`malformed MP4: box ${JSON.stringify(type)} at ${origin + pos} has size ${size}`);
  return { type, start: pos, payload: pos + header, end: pos + size };
}

/** The boxes between `start` and `end` of `buf` (one level). */
export function boxes(buf: Buffer, start = 0, end = buf.length, malformed: (message: string) => Error = fragmentError): Box[] {
  const out: Box[] = [];
  for (let pos = start; pos + 8 <= end; ) {
    const b = boxAt(buf, pos, end, malformed);
    out.push(b);
    pos = b.end;
  }
  return out;
}

export function child(buf: Buffer, parent: Box, type: string): Box | undefined {
  return boxes(buf, parent.payload, parent.end).find((b) => b.type === type);
}

export function need(buf: Buffer, parent: Box, type: string): Box {
  const b = child(buf, parent, type);
  if (!b) throw new FragmentError(`malformed MP4: ${parent.type} has no ${type}`);
  return b;
}

export interface TrackInit {
  id: number;
  kind: "video" | "audio" | "other";
  timescale: number;
  /** The sample entry's four-character code (avc1, hvc1, hev1, mp4a, ...). */
  format: string;
  /** For mp4a: the MPEG-4 object type (0x40 = AAC). */
  objectType?: number;
}

export interface Run {
  /** Index of the track in the moov's order. */
  track: number;
  /** Decode time of the first sample, in the track's timescale, as the source segment stamped it. */
  firstDts: number;
  /** Offset of the run's first byte within the segment's media bytes. */
  offset: number;
  sizes: Uint32Array;
  durations: Uint32Array;
  cts: Int32Array;
  sync: Uint8Array;
}

export interface SegmentMedia {
  /** FFmpeg's moov for this segment: the codec configuration, compared between segments and kept for the final moov. */
  init: Buffer;
  tracks: TrackInit[];
  runs: Run[];
  /** The samples, run after run (the mdat payloads, concatenated). */
  media: Buffer;
}

/** The moov box of a buffer that holds one (an init moov). */
export function moovRoot(moov: Buffer): Box {
  const [root] = boxes(moov);
  if (!root || root.type !== "moov") throw new FragmentError("malformed MP4: expected a moov box");
  return root;
}

/** The tracks of an init moov (a buffer holding exactly one moov box). */
export function readInit(moov: Buffer): TrackInit[] {
  const root = moovRoot(moov);
  return boxes(moov, root.payload, root.end)
    .filter((b) => b.type === "trak")
    .map((trak) => {
      const tkhd = need(moov, trak, "tkhd");
      const v = moov[tkhd.payload]!;
      const id = moov.readUInt32BE(tkhd.payload + (v === 1 ? 20 : 12));
      const mdia = need(moov, trak, "mdia");
      const mdhd = need(moov, mdia, "mdhd");
      const timescale = moov.readUInt32BE(mdhd.payload + (moov[mdhd.payload] === 1 ? 20 : 12));
      const hdlr = need(moov, mdia, "hdlr");
      const handler = moov.toString("latin1", hdlr.payload + 8, hdlr.payload + 12);
      const stsd = need(moov, need(moov, need(moov, mdia, "minf"), "stbl"), "stsd");
      const format = moov.toString("latin1", stsd.payload + 12, stsd.payload + 16);
      const kind = handler === "vide" ? "video" : handler === "soun" ? "audio" : "other";
      const track: TrackInit = { id, kind, timescale, format };
      if (format === "mp4a") track.objectType = esdsObjectType(moov, stsd);
      return track;
    });
}

/** Offset of the object type byte of the DecoderConfigDescriptor in the esds whose type starts at `esdsType`. */
function objectTypeAt(buf: Buffer, esdsType: number, end: number): number | undefined {
  let p = esdsType + 4 + 4;
  const descriptor = (tag: number): boolean => {
    if (buf[p] !== tag) return false;
    p++;
    for (let i = 0; i < 4 && buf[p++]! & 0x80; i++);
    return true;
  };
  if (!descriptor(0x03)) return undefined;
  const flags = buf[p + 2]!;
  p += 3;
  if (flags & 0x80) p += 2;
  if (flags & 0x40) p += 1 + buf[p]!;
  if (flags & 0x20) p += 2;
  if (!descriptor(0x04)) return undefined;
  return p < end ? p : undefined;
}

/** The MPEG-4 object type in an mp4a entry's esds (0x40 AAC, 0x6B MP3, ...). */
function esdsObjectType(buf: Buffer, stsd: Box): number | undefined {
  const at = buf.indexOf("esds", stsd.payload, "latin1");
  if (at < 0 || at >= stsd.end) return undefined;
  const p = objectTypeAt(buf, at, stsd.end);
  return p === undefined ? undefined : buf[p];
}

interface Defaults {
  duration: number;
  size: number;
  flags: number;
}

/** Every run of every fragment in FFmpeg's output for one segment, with its media bytes. */
export function readFragmented(file: Buffer): SegmentMedia {
  const top = boxes(file);
  const moovBox = top.find((b) => b.type === "moov");
  if (!moovBox) throw new FragmentError("FFmpeg wrote no moov for the segment");
  const init = file.subarray(moovBox.start, moovBox.end);
  const tracks = readInit(Buffer.from(init));
  const trex = new Map<number, Defaults>();
  const mvex = child(file, moovBox, "mvex");
  if (mvex) {
    for (const b of boxes(file, mvex.payload, mvex.end)) {
      if (b.type !== "trex") continue;
      const p = b.payload;
      trex.set(file.readUInt32BE(p + 4), { duration: file.readUInt32BE(p + 12), size: file.readUInt32BE(p + 16), flags: file.readUInt32BE(p + 20) });
    }
  }
  // Media offsets: the mdat payloads are concatenated in file order.
  const mdats = top.filter((b) => b.type === "mdat");
  let total = 0;
  const spans = mdats.map((m) => {
    const s = { from: m.payload, to: m.end, base: total };
    total += m.end - m.payload;
    return s;
  });
  const mediaOffset = (pos: number, length: number): number => {
    const s = spans.find((x) => pos >= x.from && pos + length <= x.to);
    if (!s) throw new FragmentError(`a run's samples at ${pos} (+${length}) lie outside every mdat`);
    return s.base + pos - s.from;
  };
  const runs: Run[] = [];
  for (const moof of top.filter((b) => b.type === "moof")) {
    for (const traf of boxes(file, moof.payload, moof.end).filter((b) => b.type === "traf")) {
      const tfhd = need(file, traf, "tfhd");
      const tf = file.readUInt32BE(tfhd.payload) & 0xffffff;
      const trackId = file.readUInt32BE(tfhd.payload + 4);
      const trackIndex = tracks.findIndex((t) => t.id === trackId);
      if (trackIndex < 0) throw new FragmentError(`a fragment names track ${trackId}, which the moov does not have`);
      let p = tfhd.payload + 8;
      let base = moof.start;
      if (tf & 0x1) {
        base = Number(file.readBigUInt64BE(p));
        p += 8;
      }
      if (tf & 0x2) p += 4;
      const d = { ...(trex.get(trackId) ?? { duration: 0, size: 0, flags: 0 }) };
      if (tf & 0x8) (d.duration = file.readUInt32BE(p)), (p += 4);
      if (tf & 0x10) (d.size = file.readUInt32BE(p)), (p += 4);
      if (tf & 0x20) (d.flags = file.readUInt32BE(p)), (p += 4);
      const tfdt = need(file, traf, "tfdt");
      let dts = file[tfdt.payload] === 1 ? Number(file.readBigUInt64BE(tfdt.payload + 4)) : file.readUInt32BE(tfdt.payload + 4);
      let dataPos = base;
      let first = true;
      for (const trun of boxes(file, traf.payload, traf.end).filter((b) => b.type === "trun")) {
        const version = file[trun.payload]!;
        const rf = file.readUInt32BE(trun.payload) & 0xffffff;
        const count = file.readUInt32BE(trun.payload + 4);
        let q = trun.payload + 8;
        if (rf & 0x1) (dataPos = base + file.readInt32BE(q)), (q += 4);
        let firstFlags: number | undefined;
        if (rf & 0x4) (firstFlags = file.readUInt32BE(q)), (q += 4);
        const run: Run = { track: trackIndex, firstDts: 0, offset: 0, sizes: new Uint32Array(count), durations: new Uint32Array(count), cts: new Int32Array(count), sync: new Uint8Array(count) };
        let bytes = 0;
        for (let i = 0; i < count; i++) {
          const duration = rf & 0x100 ? file.readUInt32BE((q += 4) - 4) : d.duration;
          const size = rf & 0x200 ? file.readUInt32BE((q += 4) - 4) : d.size;
          let flags = rf & 0x400 ? file.readUInt32BE((q += 4) - 4) : d.flags;
          if (i === 0 && firstFlags !== undefined) flags = firstFlags;
          const cts = rf & 0x800 ? (version === 1 ? file.readInt32BE((q += 4) - 4) : file.readUInt32BE((q += 4) - 4)) : 0;
          run.durations[i] = duration;
          run.sizes[i] = size;
          run.cts[i] = cts;
          // sample_is_non_sync_sample (bit 16) clear: a keyframe.
          run.sync[i] = flags & 0x10000 ? 0 : 1;
          bytes += size;
        }
        if (count === 0) continue;
        run.offset = mediaOffset(dataPos, bytes);
        // With frag_discont and edit lists FFmpeg stamps a fragment with its first sample's presentation time and
        // shifts every decode time by that sample's composition offset: undo it to get the source's decode times.
        run.firstDts = first ? dts - run.cts[0]! : dts;
        first = false;
        for (let i = 0; i < count; i++) dts += run.durations[i]!;
        dataPos += bytes;
        runs.push(run);
      }
    }
  }
  const media = Buffer.concat(spans.map((s) => file.subarray(s.from, s.to)));
  return { init: Buffer.from(init), tracks, runs, media };
}

/**
 * The codec configuration of every track of an init moov, equal for two segments when a player decodes both
 * with one: timescale, sample entry (format, frame size or channels and rate) and its configuration boxes. Left
 * out, as they differ between segments of one stream: the bitrates FFmpeg writes per file (btrt, the esds's
 * buffer size and bitrates), and the zero bytes that may trail a parameter set in the source (avcC).
 */
export function codecSignature(init: Buffer): Buffer {
  const [root] = boxes(init);
  if (!root) throw new FragmentError("malformed MP4: empty moov");
  const parts: Buffer[] = [];
  for (const trak of boxes(init, root.payload, root.end).filter((b) => b.type === "trak")) {
    const mdia = need(init, trak, "mdia");
    const stsd = need(init, need(init, need(init, mdia, "minf"), "stbl"), "stsd");
    const mdhd = need(init, mdia, "mdhd");
    parts.push(Buffer.from(`${init.readUInt32BE(mdhd.payload + (init[mdhd.payload] === 1 ? 20 : 12))}`));
    const [entry] = boxes(init, stsd.payload + 8, stsd.end);
    if (!entry) throw new FragmentError("malformed MP4: empty stsd");
    const handler = init.toString("latin1", need(init, mdia, "hdlr").payload + 8, need(init, mdia, "hdlr").payload + 12);
    // The fixed fields of a visual (78 bytes) or audio (28 bytes) sample entry, then its boxes.
    const fixed = handler === "vide" ? 78 : handler === "soun" ? 28 : entry.end - entry.payload;
    parts.push(Buffer.from(entry.type, "latin1"), init.subarray(entry.payload, entry.payload + fixed));
    for (const b of boxes(init, entry.payload + fixed, entry.end)) {
      const body = Buffer.from(init.subarray(b.payload, b.end));
      if (b.type === "btrt") continue;
      if (b.type === "avcC") parts.push(Buffer.from("avcC"), trimmedAvcC(body));
      else if (b.type === "esds") {
        const oti = objectTypeAt(init, b.start + 4, b.end);
        if (oti !== undefined) body.fill(0, oti - b.payload + 2, Math.min(body.length, oti - b.payload + 13));
        parts.push(Buffer.from("esds"), body);
      } else parts.push(Buffer.from(b.type, "latin1"), body);
    }
  }
  return Buffer.concat(parts);
}

/** An avcC's parameter sets without the zero bytes that may trail them in an Annex B stream. */
function trimmedAvcC(c: Buffer): Buffer {
  if (c.length < 7) return c;
  const out: Buffer[] = [c.subarray(0, 5)];
  let p = 5;
  for (const mask of [0x1f, 0xff]) {
    const n = c[p]! & mask;
    out.push(Buffer.from([n]));
    p++;
    for (let i = 0; i < n && p + 2 <= c.length; i++) {
      const len = c.readUInt16BE(p);
      let nal = c.subarray(p + 2, p + 2 + len);
      while (nal.length > 1 && nal[nal.length - 1] === 0) nal = nal.subarray(0, nal.length - 1);
      out.push(nal, Buffer.from([0xff]));
      p += 2 + len;
    }
  }
  out.push(c.subarray(p));
  return Buffer.concat(out);
}
