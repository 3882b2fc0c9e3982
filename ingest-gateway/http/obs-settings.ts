/** What a streamer types into OBS (Settings → Stream, Service: Custom) for one stream. */
export function obsSettings(o: { host: string; port: number; name: string; secret?: string }) {
  // ffmpeg and OBS pass streamid through undecoded: the access-control form is written raw.
  const streamid = `#!::r=${o.name},m=publish`;
  const server = `srt://${o.host}:${o.port}?streamid=${streamid}${o.secret ? `&passphrase=${o.secret}` : ""}`;
  return {
    service: "Custom",
    server,
    streamKey: "",
    streamid,
    shortStreamid: `publish:${o.name}`,
    passphrase: o.secret,
    ffmpeg: `ffmpeg -re -i input.mp4 -c copy -f mpegts '${server}'`,
  };
}
