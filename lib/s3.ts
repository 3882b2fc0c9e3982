import {
  S3Client,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  DeleteObjectsCommand,
  NoSuchKey,
  NotFound,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
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
