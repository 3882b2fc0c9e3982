// The NATS exporter stand-in's pure parts: the official exporter's flags and metric names, from
// /varz and /jsz bodies shaped as nats-server 2.12 answers them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { flattenVarz, parseFlags, render } from "./nats-exporter.js";

const varz = { server_id: "NABC", server_name: "n1", connections: 7, mem: 1024, cluster: { name: "vod", port: 6222 }, jetstream: { stats: { storage: 500, api: { total: 9, errors: 1 } } }, leaf: {}, now: "2026-11-29T00:00:00Z" };
const jsz = {
  server_id: "NABC",
  meta_cluster: { name: "vod", leader: "n1" },
  streams: 1,
  consumers: 1,
  messages: 12,
  bytes: 3400,
  account_details: [{
    name: "$G",
    stream_detail: [{
      name: "STORAGE_EVENTS",
      cluster: { leader: "n1" },
      state: { messages: 12, bytes: 3400, first_seq: 1, last_seq: 12, consumer_count: 1 },
      consumer_detail: [{ name: "convert", cluster: { leader: "n2" }, delivered: { consumer_seq: 11, stream_seq: 10 }, ack_floor: { consumer_seq: 9, stream_seq: 8 }, num_ack_pending: 2, num_redelivered: 1, num_waiting: 1, num_pending: 2 }],
    }],
  }],
};

test("the official exporter's flags are read, single dash and all; bad ones say what is accepted", () => {
  assert.deepEqual(parseFlags(["-varz", "-jsz=all", "-p", "7777", "-a", "127.0.0.1", "http://127.0.0.1:8222/", "http://127.0.0.1:8223"]), { urls: ["http://127.0.0.1:8222", "http://127.0.0.1:8223"], varz: true, jsz: "all", port: 7777, addr: "127.0.0.1" });
  assert.throws(() => parseFlags(["-varz"]), /monitoring URL/);
  assert.throws(() => parseFlags(["http://x:8222"]), /-varz and\/or -jsz=all/);
  assert.throws(() => parseFlags(["-jsz=everything", "http://x:8222"]), /-jsz=all, -jsz=streams or -jsz=consumers/);
  assert.throws(() => parseFlags(["-connz", "http://x:8222"]), /unknown flag -connz/);
});

test("every number of /varz becomes a series named by its path, strings and skipped keys do not", () => {
  const m = flattenVarz(varz);
  assert.equal(m.get("connections"), 7);
  assert.equal(m.get("jetstream_stats_api_errors"), 1);
  assert.equal(m.get("cluster_port"), 6222);
  assert.equal(m.has("server_id"), false);
  assert.equal(m.has("now"), false);
});

test("JetStream streams and consumers get the official exporter's names and labels; a server that did not answer adds nothing", async () => {
  const text = await render([{ url: "http://n1:8222", varz, jsz }, { url: "http://n3:8222" }]);
  assert.match(text, /^gnatsd_varz_connections\{server_id="NABC"\} 7$/m);
  assert.match(text, /^jetstream_server_total_streams\{server_id="NABC",server_name="n1",cluster="vod",is_meta_leader="true"\} 1$/m);
  assert.match(text, /^jetstream_stream_last_seq\{[^}]*stream_name="STORAGE_EVENTS",stream_leader="n1",is_stream_leader="true"\} 12$/m);
  const consumer = (name: string) => new RegExp(`^jetstream_consumer_${name}\\{[^}]*stream_name="STORAGE_EVENTS"[^}]*consumer_name="convert",consumer_leader="n2",is_consumer_leader="false"\\} (\\S+)$`, "m").exec(text)?.[1];
  assert.equal(consumer("num_pending"), "2");
  assert.equal(consumer("num_ack_pending"), "2");
  assert.equal(consumer("ack_floor_stream_seq"), "8");
  assert.equal(consumer("delivered_stream_seq"), "10");
  assert.doesNotMatch(text, /n3/);
});
