import {
  S3Client,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  AbortMultipartUploadCommand,
  NoSuchKey,
  NotFound,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { SignatureV4 } from "@smithy/signature-v4";
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { crc32 } from "node:zlib";
import type { Config } from "./config.js";

export type S3Settings = Config["s3"];

/** The data plane: plain S3, so MinIO, the Versity gateway or any S3 serve it. */
export function createS3(s3: Pick<S3Settings, "endpoint" | "region" | "accessKey" | "secretKey">): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
    // MinIO and the gateway answer checksums, but they are not needed and cost CPU on every PUT.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 4,
  });
}

export function isNotFound(err: unknown): boolean {
  if (err instanceof NoSuchKey || err instanceof NotFound) return true;
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NoSuchKey" || e?.name === "NotFound" || e?.$metadata?.httpStatusCode === 404;
}

export async function getText(client: S3Client, bucket: string, key: string): Promise<string> {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return res.Body!.transformToString("utf-8");
}

export async function headObject(client: S3Client, bucket: string, key: string) {
  try {
    return await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export async function putText(client: S3Client, bucket: string, key: string, body: string | Uint8Array, contentType: string) {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }));
}

export interface ListedObject {
  key: string;
  size: number;
  etag: string;
  lastModified: Date;
}

export async function* listObjects(client: S3Client, bucket: string, prefix = ""): AsyncGenerator<ListedObject> {
  let token: string | undefined;
  do {
    const res = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of res.Contents ?? []) {
      yield { key: o.Key!, size: o.Size ?? 0, etag: (o.ETag ?? "").replaceAll('"', ""), lastModified: o.LastModified ?? new Date(0) };
    }
    token = res.IsTruncated ? res.NextContinuationToken : undefined;
  } while (token);
}

/** The one way objects are deleted: in batches of 1000, as S3 allows. Returns how many keys were asked. */
export async function deleteKeys(client: S3Client, bucket: string, keys: readonly string[]): Promise<number> {
  const unique = [...new Set(keys.filter(Boolean))];
  for (let i = 0; i < unique.length; i += 1000) {
    const batch = unique.slice(i, i + 1000);
    await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
  }
  return unique.length;
}

export interface OpenUpload {
  key: string;
  uploadId: string;
  initiated: Date;
}

/** Every multipart upload open in a bucket (under `prefix`): started and neither completed nor aborted. */
export async function* listMultipartUploads(client: S3Client, bucket: string, prefix = "", signal?: AbortSignal): AsyncGenerator<OpenUpload> {
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix || undefined, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }), { abortSignal: signal });
    for (const u of page.Uploads ?? []) {
      if (u.Key && u.UploadId) yield { key: u.Key, uploadId: u.UploadId, initiated: u.Initiated ?? new Date(0) };
    }
    if (!page.IsTruncated) return;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
  }
}

/** Aborts a multipart upload, dropping its stored parts; one already gone (aborted or completed) is not an error. */
export async function abortMultipartUpload(client: S3Client, bucket: string, key: string, uploadId: string, signal?: AbortSignal): Promise<void> {
  try {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }), { abortSignal: signal });
  } catch (err) {
    if (isNoSuchUpload(err)) return;
    throw err;
  }
}

/** The store no longer knows the upload: it was aborted (by the sweep, or a fallback) or completed. */
export function isNoSuchUpload(err: unknown): boolean {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NoSuchUpload" || e?.Code === "NoSuchUpload" || e?.$metadata?.httpStatusCode === 404;
}

/**
 * A replica killed with -9 mid-upload leaves its multipart upload open, its parts stored and billed but
 * in no object. The job that claims the recording next owns its key: it aborts every upload open on it.
 */
export async function abortOpenUploads(client: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<number> {
  let aborted = 0;
  for await (const u of listMultipartUploads(client, bucket, key, signal)) {
    if (u.key !== key) continue;
    await abortMultipartUpload(client, bucket, key, u.uploadId, signal);
    aborted++;
  }
  return aborted;
}

export async function deletePrefix(client: S3Client, bucket: string, prefix: string): Promise<number> {
  let deleted = 0;
  let batch: string[] = [];
  const flush = async () => {
    deleted += await deleteKeys(client, bucket, batch);
    batch = [];
  };
  for await (const o of listObjects(client, bucket, prefix)) {
    batch.push(o.key);
    if (batch.length === 1000) await flush();
  }
  await flush();
  return deleted;
}

/** A GET link that expires; signed for the endpoint clients reach (MINIO_PUBLIC_ENDPOINT). */
export async function presignGet(
  s3: S3Settings,
  bucket: string,
  key: string,
  opts: { expiresIn?: number; contentType?: string; filename?: string } = {},
): Promise<string> {
  const signer = presigners.get(s3.publicEndpoint) ?? createS3({ ...s3, endpoint: s3.publicEndpoint });
  presigners.set(s3.publicEndpoint, signer);
  return getSignedUrl(
    signer,
    new GetObjectCommand({
      Bucket: bucket,
      Key: key,
      ResponseContentType: opts.contentType,
      ResponseContentDisposition: opts.filename ? `inline; filename="${opts.filename.replace(/["\\\r\n]/g, "_")}"` : undefined,
    }),
    { expiresIn: opts.expiresIn ?? s3.presignExpirySeconds },
  );
}
const presigners = new Map<string, S3Client>();

/** SHA-256, or HMAC-SHA-256 when keyed, from node:crypto: the hash the SigV4 signer asks for. */
class NodeSha256 {
  private h!: Hash | Hmac;
  constructor(private readonly secret?: string | ArrayBuffer | ArrayBufferView) {
    this.reset();
  }
  update(data: Uint8Array): void {
    this.h.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {
    const key = this.secret === undefined ? undefined : typeof this.secret === "string" ? this.secret : ArrayBuffer.isView(this.secret) ? Buffer.from(this.secret.buffer, this.secret.byteOffset, this.secret.byteLength) : Buffer.from(this.secret);
    this.h = key === undefined ? createHash("sha256") : createHmac("sha256", key);
  }
}

export class ObjectPutError extends Error {
  readonly kind = "object-put" as const;
  override name = "ObjectPutError";
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}

export interface ObjectPut {
  bucket: string;
  key: string;
  body: Uint8Array | string;
  contentType: string;
  /** Sends the body's CRC32 (x-amz-checksum-crc32): the store refuses a body that arrived damaged. */
  crc32?: boolean;
}

export interface ObjectPutter {
  put(p: ObjectPut): Promise<void>;
  destroy(): void;
}

/** S3's URI encoding of a key: every byte but unreserved ones and the slashes between segments. */
function encodeKey(key: string): string {
  return key.split("/").map((part) => encodeURIComponent(part).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)).join("/");
}

/**
 * Whether an upload's body must be hashed into its SigV4 signature: only over plain http to another machine.
 * Over https TLS protects the body, and to a loopback store it never leaves the machine; there a CRC32 the store
 * checks (x-amz-checksum-crc32, itself signed) catches damage for a fraction of SHA-256's cost. Against someone
 * rewriting traffic on the network, a CRC32 proves nothing: that is what the signed hash is kept for.
 */
export function payloadNeedsSigning(endpoint: string): boolean {
  const url = new URL(endpoint);
  return url.protocol !== "https:" && !/^(127\.|localhost$|\[?::1\]?$)/.test(url.hostname);
}

/**
 * PUTs for the gateway's hot path (two per segment per stream): the same SigV4 signer the SDK uses, but without
 * its per-request middleware stack (sorting, endpoint rules, retry tokens, flexible checksums), which cost the
 * gateway's JavaScript thread more than the bytes did. Retries are the caller's (lib/retry.ts). The payload is
 * hashed into the signature only where it buys something: not over https (TLS protects the body) nor to a
 * loopback store (the body never leaves the machine).
 */
export function createObjectPutter(s3: Pick<S3Settings, "endpoint" | "region" | "accessKey" | "secretKey">, timeoutMs = 60_000): ObjectPutter {
  const url = new URL(s3.endpoint);
  const https = url.protocol === "https:";
  const agent = https ? new HttpsAgent({ keepAlive: true, maxSockets: 64 }) : new HttpAgent({ keepAlive: true, maxSockets: 64 });
  const send = https ? httpsRequest : httpRequest;
  const signPayload = payloadNeedsSigning(s3.endpoint);
  const signer = new SignatureV4({
    service: "s3",
    region: s3.region,
    credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
    sha256: NodeSha256,
    // S3 signs the path as sent (already encoded once), unlike other services.
    uriEscapePath: false,
  });
  const base = url.pathname.replace(/\/$/, "");
  return {
    async put(p) {
      const body = typeof p.body === "string" ? Buffer.from(p.body) : p.body;
      const headers: Record<string, string> = {
        host: url.host,
        "content-type": p.contentType,
        "content-length": String(body.byteLength),
        "x-amz-content-sha256": signPayload ? createHash("sha256").update(body).digest("hex") : "UNSIGNED-PAYLOAD",
      };
      if (p.crc32) {
        const sum = Buffer.alloc(4);
        sum.writeUInt32BE(crc32(body) >>> 0);
        headers["x-amz-checksum-crc32"] = sum.toString("base64");
      }
      const path = `${base}/${p.bucket}/${encodeKey(p.key)}`;
      const signed = await signer.sign({ method: "PUT", protocol: url.protocol, hostname: url.hostname, port: url.port ? Number(url.port) : undefined, path, query: {}, headers });
      await new Promise<void>((resolve, reject) => {
        const req = send({ agent, method: "PUT", hostname: url.hostname, port: url.port || undefined, path, headers: signed.headers, timeout: timeoutMs }, (res: IncomingMessage) => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            res.resume();
            res.on("end", resolve);
            res.on("error", reject);
            return;
          }
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => (text = (text + d).slice(0, 1000)));
          res.on("end", () => reject(new ObjectPutError(`PUT ${p.bucket}/${p.key} answered ${status}: ${text.replace(/\s+/g, " ").trim().slice(0, 300)}`, status)));
          res.on("error", reject);
        });
        req.on("timeout", () => req.destroy(new ObjectPutError(`PUT ${p.bucket}/${p.key}: no answer within ${timeoutMs / 1000} s`)));
        req.on("error", reject);
        req.end(body);
      });
    },
    destroy() {
      agent.destroy();
    },
  };
}
