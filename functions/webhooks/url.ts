// Which webhook URLs are accepted: http(s) only, and in production no private, loopback or link-local
// address (checked on the resolved address, at registration and again before each delivery).
import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

export class WebhookUrlError extends Error {
  readonly kind = "invalid_url" as const;
  override name = "WebhookUrlError";
}

const blocked = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const)
  blocked.addSubnet(net, bits, "ipv4");
for (const [net, bits] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const)
  blocked.addSubnet(net, bits, "ipv6");

export function isPrivateAddress(address: string): boolean {
  const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (v4mapped) return blocked.check(v4mapped[1]!, "ipv4");
  const family = isIP(address);
  if (family === 0) return true;
  return blocked.check(address, family === 4 ? "ipv4" : "ipv6");
}

/** The URL parsed, or a WebhookUrlError saying what is wrong and what to do. */
export function parseWebhookUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookUrlError(`not a URL: send an absolute http(s) URL like https://example.com/hooks`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new WebhookUrlError(`${url.protocol} URLs are refused: use http:// or https://`);
  if (url.username || url.password) throw new WebhookUrlError("credentials in the URL are refused: webhooks are signed instead");
  return url;
}

/** Resolves the host and refuses private addresses unless allowed. */
export async function checkWebhookUrl(raw: string, allowPrivate: boolean): Promise<URL> {
  const url = parseWebhookUrl(raw);
  if (allowPrivate) return url;
  const host = url.hostname.replace(/^\[|\]$/g, "");
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
    } catch {
      throw new WebhookUrlError(`the host ${host} does not resolve: check the name`);
    }
  }
  const bad = addresses.find(isPrivateAddress);
  if (bad) throw new WebhookUrlError(`${host} resolves to ${bad}, a private, loopback or link-local address; these are refused in production (set WEBHOOK_ALLOW_PRIVATE=true to allow them)`);
  return url;
}
