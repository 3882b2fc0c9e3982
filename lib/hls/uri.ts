import { folderOf } from "../layout.js";
import { HlsError } from "./error.js";

/** What a URI names, for the message when it is refused. */
export type UriRole = "segment" | "key" | "playlist";

const FIX: Record<UriRole, string> = {
  segment: "segments must be relative paths to files inside the playlist's folder",
  key: "key files must be relative paths to files inside the playlist's folder",
  playlist: "variant and rendition playlists must be relative paths to files inside the master's folder",
};

/**
 * Resolves a URI written in the playlist `fromKey` to an object key in the same bucket, refusing
 * anything that would read outside `sourcePrefix`: absolute URLs (other hosts), absolute paths (other
 * buckets in path-style S3), `..` escapes and query strings. Nothing refused is ever fetched.
 */
export function resolveUri(fromKey: string, uri: string, sourcePrefix: string, role: UriRole = "segment"): string {
  const shown = JSON.stringify(uri);
  const fix = FIX[role];
  const refuse = (why: string) => new HlsError("outside-folder", `${fromKey} references ${shown}, ${why}: ${fix}`);
  if (/^[a-z][a-z0-9+.-]*:/i.test(uri)) throw refuse("an absolute URL");
  if (uri.startsWith("/") || uri.startsWith("\\")) throw refuse("an absolute path (another bucket or folder)");
  if (uri.includes("?")) throw refuse("which has a query string");
  const path = uri.split("#")[0]!;
  const parts = folderOf(fromKey).split("/").filter(Boolean);
  for (const raw of path.split("/")) {
    const part = decodeComponent(raw);
    // An encoded separator (`..%2Fx.ts`) would smuggle a ".." past the walk below into the key.
    if (part.includes("/") || part.includes("\\")) throw refuse("which hides a path separator in an encoded name");
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (parts.length === 0) throw refuse('which escapes the bucket with ".."');
      parts.pop();
      continue;
    }
    parts.push(part);
  }
  const key = parts.join("/");
  const root = sourcePrefix ? `${sourcePrefix}/` : "";
  if (!key.startsWith(root) || key.length === root.length) {
    throw refuse(`which resolves to ${JSON.stringify(key)} outside the folder ${JSON.stringify(sourcePrefix)}`);
  }
  return key;
}

/** URIs may be percent-encoded; a raw name with a stray % is taken as it is. */
function decodeComponent(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
