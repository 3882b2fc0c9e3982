import { presignGet, type S3Settings } from "../../lib/s3.js";

export interface PresignOptions {
  contentType?: string;
  filename?: string;
}

export interface Presign {
  (bucket: string, key: string, opts?: PresignOptions): Promise<string>;
  /** The link when one is cached and still fresh: lets a page of 50 items skip 50 awaits. */
  cached(bucket: string, key: string, opts?: PresignOptions): string | undefined;
}

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
  const idOf = (bucket: string, key: string, o: PresignOptions) => `${bucket}\n${key}\n${o.contentType ?? ""}\n${o.filename ?? ""}`;
  const cached = (bucket: string, key: string, o: PresignOptions = {}) => {
    const hit = cache.get(idOf(bucket, key, o));
    return hit && hit.reuseUntil > now() ? hit.url : undefined;
  };
  const presign = async (bucket: string, key: string, o: PresignOptions = {}) => {
    const hit = cached(bucket, key, o);
    if (hit) return hit;
    const t = now();
    const url = await presignGet(s3, bucket, key, { expiresIn: s3.presignExpirySeconds, ...o });
    const id = idOf(bucket, key, o);
    cache.delete(id);
    if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
    cache.set(id, { url, reuseUntil: t + lifetimeMs / 2 });
    return url;
  };
  return Object.assign(presign, { cached });
}
