import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { createMetrics } from "../lib/service.js";

/** `spool` is read at scrape time: the budget is the one count of spooled bytes. */
export function createGatewayMetrics(spool?: { readonly usedBytes: number; readonly limitBytes: number }) {
  const registry: Registry = createMetrics("ingest-gateway");
  return {
    registry,
    spoolBytes: new Gauge({ name: "gateway_spool_bytes", help: "Bytes of segments in the local spool, not yet in the object store", registers: [registry], collect() { if (spool) this.set(spool.usedBytes); } }),
    spoolLimitBytes: new Gauge({ name: "gateway_spool_limit_bytes", help: "SPOOL_MAX_MB in bytes: beyond it the oldest unsent segments are dropped", registers: [registry], collect() { if (spool) this.set(spool.limitBytes); } }),
    liveStreams: new Gauge({ name: "gateway_live_streams", help: "Broadcasts in progress (connected or within the reconnect grace)", registers: [registry] }),
    bytesReceived: new Counter({ name: "gateway_srt_bytes_received_total", help: "MPEG-TS bytes received over SRT", registers: [registry] }),
    mediaBytesInJs: new Counter({ name: "gateway_media_bytes_in_js_total", help: "Media bytes handed to JavaScript (the addon writes them to FFmpeg itself: stays 0)", registers: [registry] }),
    connections: new Counter({ name: "gateway_srt_connections_total", help: "Accepted SRT connections", registers: [registry] }),
    refusals: new Counter({ name: "gateway_srt_refusals_total", help: "Refused SRT callers, by reason", labelNames: ["reason"], registers: [registry] }),
    segmentsStored: new Counter({ name: "gateway_segments_stored_total", help: "Segments stored with their playlist", registers: [registry] }),
    segmentsDropped: new Counter({ name: "gateway_segments_dropped_total", help: "Segments dropped because the spool was full", registers: [registry] }),
    uploadRetries: new Counter({ name: "gateway_upload_retries_total", help: "Retried PUTs to the object store", registers: [registry] }),
    segmentStoreSeconds: new Histogram({
      name: "gateway_segment_store_seconds",
      help: "From FFmpeg closing a segment to the playlist naming it being stored",
      buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 4, 8],
      registers: [registry],
    }),
  };
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
