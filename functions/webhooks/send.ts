import { Webhook } from "standardwebhooks";
import { checkWebhookUrl } from "./url.js";

export interface SendResult {
  ok: boolean;
  statusCode: number | null;
  durationMs: number;
  error: string | null;
}

/** A `whsec_` secret as the Standard Webhooks libraries expect it: 24 random bytes, base64. */
export function newSecret(): string {
  const bytes = new Uint8Array(24);
  crypto.getRandomValues(bytes);
  return `whsec_${Buffer.from(bytes).toString("base64")}`;
}

/**
 * One signed POST: `webhook-id` is the event's id (the same on every retry, so a receiver drops duplicates),
 * a 2xx within `timeoutMs` is success, a redirect is a failure (never followed).
 */
export async function sendWebhook(o: { url: string; secret: string; eventId: string; body: string; timeoutMs: number; allowPrivate: boolean; signal?: AbortSignal }): Promise<SendResult> {
  const t0 = performance.now();
  const ms = () => Math.round(performance.now() - t0);
  try {
    await checkWebhookUrl(o.url, o.allowPrivate);
    const timestamp = new Date();
    const signature = new Webhook(o.secret).sign(o.eventId, timestamp, o.body);
    const signal = o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs)]) : AbortSignal.timeout(o.timeoutMs);
    const res = await fetch(o.url, {
      method: "POST",
      redirect: "manual",
      signal,
      headers: {
        "content-type": "application/json",
        "user-agent": "vod-webhooks/1",
        "webhook-id": o.eventId,
        "webhook-timestamp": String(Math.floor(timestamp.getTime() / 1000)),
        "webhook-signature": signature,
      },
      body: o.body,
    });
    await res.body?.cancel().catch(() => {});
    if (res.status >= 200 && res.status < 300) return { ok: true, statusCode: res.status, durationMs: ms(), error: null };
    const error = res.status >= 300 && res.status < 400 ? `answered a redirect (${res.status}); redirects are not followed: register the final URL` : `answered ${res.status}`;
    return { ok: false, statusCode: res.status, durationMs: ms(), error };
  } catch (err) {
    const e = err as Error;
    const error = e.name === "TimeoutError" ? `no answer within ${o.timeoutMs / 1000} s` : (e.cause as Error)?.message || e.message;
    return { ok: false, statusCode: null, durationMs: ms(), error };
  }
}
