import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import { Histogram, type Registry } from "prom-client";

/** Request latency by route pattern (never the raw path: ids would make a series per recording). */
export function httpMetrics(registry: Registry): MiddlewareHandler {
  const duration = new Histogram({
    name: "http_request_duration_seconds",
    help: "HTTP request latency by method, route and status",
    labelNames: ["method", "route", "status"] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  return async (c, next) => {
    const end = duration.startTimer();
    await next();
    const route = c.res.status === 404 && routePath(c) === "/*" ? "unmatched" : routePath(c);
    end({ method: c.req.method, route, status: String(c.res.status) });
  };
}
