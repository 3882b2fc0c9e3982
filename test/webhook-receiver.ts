// A real HTTP receiver on loopback for webhook tests and the bench: it records every request and
// answers what the test tells it to (a status, or a slow answer).
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
  /** What the receiver answered. */
  status: number;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** Decides each answer (default 200); called in arrival order with the request number from 1. */
  answer: (n: number, r: Omit<Received, "status">) => number | Promise<number>;
  /** Requests answered 2xx, parsed and verified with the endpoint's secret by the Standard Webhooks library. */
  verified(secret: string): { id: string; type: string; createdAt: string; data: Record<string, unknown> }[];
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  let n = 0;
  const r: Receiver = {
    url: "",
    received,
    answer: () => 200,
    verified(secret) {
      const wh = new Webhook(secret);
      return received.filter((x) => x.status >= 200 && x.status < 300).map((x) => wh.verify(x.body, x.headers as Record<string, string>) as ReturnType<Receiver["verified"]>[number]);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const got = { headers: req.headers, body: Buffer.concat(chunks).toString(), at: Date.now() };
      const status = await r.answer(++n, got);
      received.push({ ...got, status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", () => res()));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return r;
}
