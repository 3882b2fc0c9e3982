import { presignGet, type S3Settings } from "../../lib/s3.js";

export interface PresignOptions {
  contentType?: string;
  filename?: string;
}

export type Presign = (bucket: string, key: string, opts?: PresignOptions) => Promise<string>;

/**
 * Presigned GET links, reused while more than half their lifetime is left. Signing costs about half a
 * millisecond, and a page of 50 thumbnails or a live playlist of hundreds of segments asks for many;
 * reusing the same link also lets browsers and players cache what it points to.
 */
export function createPresigner(s3: S3Settings, opts: { maxEntries?: number; now?: () => number } = {}): Presign {
  const maxEntries = opts.maxEntries ?? 50_000;
  const now = opts.now ?? Date.now;
  const lifetimeMs = s3.presignExpirySeconds * 1000;
  const cache = new Map<string, { url: string; reuseUntil: number }>();
  return async (bucket, key, o = {}) => {
    const id = `${bucket}\n${key}\n${o.contentType ?? ""}\n${o.filename ?? ""}`;
    const hit = cache.get(id);
    const t = now();
    if (hit && hit.reuseUntil > t) return hit.url;
    const url = await presignGet(s3, bucket, key, { expiresIn: s3.presignExpirySeconds, ...o });
    cache.delete(id);
    if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
    cache.set(id, { url, reuseUntil: t + lifetimeMs / 2 });
    return url;
  };
}
