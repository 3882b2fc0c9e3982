// Deleting a recording's objects, for the API's DELETE and the retention job alike: one order, one set of keys.
import type { S3Client } from "@aws-sdk/client-s3";
import type { Recording } from "../db/schema.js";
import { abrPrefix, folderOf, holdsClips, keysOfRecording, listPrefix, recordingName } from "./layout.js";
import { deleteKeys, deletePrefix } from "./s3.js";

export interface Buckets {
  hlsBucket: string;
  recordingsBucket: string;
}

/**
 * The source HLS folder (hls bucket). A top-level playlist has no prefix of its own (that would be the
 * whole bucket): then nothing is deleted here. Returns the number of objects removed.
 */
export async function deleteSourceObjects(s3: S3Client, b: Buckets, row: Pick<Recording, "sourcePrefix">): Promise<number> {
  return row.sourcePrefix ? deletePrefix(s3, b.hlsBucket, listPrefix(row.sourcePrefix)) : 0;
}

/** What convert and thumbnail made in the recordings bucket: the MP4, images, side files. */
export async function deleteMadeObjects(s3: S3Client, b: Buckets, row: Pick<Recording, "sourcePrefix"> & Partial<Pick<Recording, "abrMasterPath">> & Parameters<typeof keysOfRecording>[0]): Promise<number> {
  // A folder that also holds the clips' folders (named like their root) loses only its own named objects there.
  const own = row.sourcePrefix && !holdsClips(row.sourcePrefix) ? listPrefix(row.sourcePrefix) : undefined;
  let objects = own ? await deletePrefix(s3, b.recordingsBucket, own) : 0;
  objects += await deleteKeys(s3, b.recordingsBucket, keysOfRecording(row).filter((k) => !(own && k.startsWith(own))));
  // A ladder outside the folder deleted above (a top-level recording's `<name>.abr/`) goes too.
  if (row.abrMasterPath && !(own && row.abrMasterPath.startsWith(own))) objects += await deletePrefix(s3, b.recordingsBucket, `${folderOf(row.abrMasterPath)}/`);
  return objects;
}

/**
 * The recording's ABR ladder folder, again, once its row is gone: a package job that wrote its ladder between
 * deleteMadeObjects and the row's deletion left objects no row names. (A job still running then finds the row
 * gone and removes its own uploads.)
 */
export async function deleteLadderAfterRow(s3: S3Client, b: Buckets, row: Pick<Recording, "sourcePrefix" | "playlistKey" | "filePath">): Promise<number> {
  return deletePrefix(s3, b.recordingsBucket, abrPrefix(row.sourcePrefix, recordingName(row.sourcePrefix, row.playlistKey ?? row.filePath ?? "recording")));
}
