/** The scheme and host the client used, for links back into the API. */
export function apiOrigin(url: string, forwardedProto?: string): string {
  const u = new URL(url);
  // Behind a TLS-terminating proxy the API sees http; the client's scheme is what links must use.
  if (forwardedProto === "https" || forwardedProto === "http") u.protocol = `${forwardedProto}:`;
  return u.origin;
}
