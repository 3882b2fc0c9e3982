// Contract fuzzing: Schemathesis drives the VOD API and the gateway's control API from their own
// OpenAPI documents, with valid and hostile requests, and must find nothing (no 5xx, every status
// documented, every schema-valid request accepted). FUZZ_MAX_EXAMPLES bounds the run (`make test-fuzz` raises it).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { createTestEnv, type TestEnv } from "../harness.js";
import { startApi, storeReadyRecording, withToken, type RunningApi } from "../api.js";
import { API_TOKEN, startGatewayProcess, type GatewayProcess } from "../gateway/process.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const schemathesis = join(root, ".cache", "schemathesis", "bin", "schemathesis");
const maxExamples = process.env.FUZZ_MAX_EXAMPLES ?? "100";
const seed = process.env.FUZZ_SEED;

let env: TestEnv;
let api: RunningApi;
let gateway: GatewayProcess;

before(async () => {
  assert.ok(existsSync(schemathesis), `Schemathesis is not installed at ${schemathesis}; run infra/install.sh`);
  env = await createTestEnv("fuzz");
  api = await startApi(env, withToken(API_TOKEN));
  // A real recording, so the id routes answer 200 for the ids the document's examples and links produce too.
  await storeReadyRecording(env, "fuzz-stream/session-1");
  gateway = await startGatewayProcess({ ...env.env, LOG_LEVEL: "warn" });
});
after(async () => {
  await gateway?.stop();
  await api?.close();
  await env?.close();
});

/** Runs Schemathesis against one OpenAPI document; returns its exit code and the lines of its summary. */
async function fuzz(name: string, base: string): Promise<{ exitCode: number; output: string }> {
  const reports = join(root, "test-artifacts", "schemathesis", name);
  await mkdir(reports, { recursive: true });
  const r = await execa(
    schemathesis,
    [
      "run",
      `${base}/openapi.json`,
      "--url", base,
      "--checks", "all",
      "--max-examples", maxExamples,
      // One worker: Python 3.11's ast.parse is not thread-safe and Hypothesis calls it while generating.
      "--workers", "1",
      "--generation-database", "none",
      "--header", `Authorization: Bearer ${API_TOKEN}`,
      "--request-timeout", "20",
      "--no-color",
      "--report", "junit",
      "--report-dir", reports,
      ...(seed ? ["--seed", seed] : []),
    ],
    { reject: false, all: true, cwd: reports, timeout: 15 * 60_000 },
  );
  return { exitCode: r.exitCode ?? -1, output: r.all ?? "" };
}

function summary(output: string): string {
  const at = output.search(/=+ (SUMMARY|FAILURES) =+/);
  return at >= 0 ? output.slice(at) : output.slice(-4000);
}

test("Schemathesis finds nothing wrong in the VOD API's OpenAPI contract", async () => {
  const r = await fuzz("api", api.url);
  process.stdout.write(`# VOD API\n${summary(r.output)}\n`);
  assert.equal(r.exitCode, 0, `Schemathesis found problems in the VOD API:\n${r.output.slice(-20000)}`);
});

test("Schemathesis finds nothing wrong in the gateway's OpenAPI contract", async () => {
  const r = await fuzz("gateway", gateway.http);
  process.stdout.write(`# ingest gateway\n${summary(r.output)}\n`);
  assert.equal(r.exitCode, 0, `Schemathesis found problems in the gateway:\n${r.output.slice(-20000)}`);
});

// What earlier fuzzing found, pinned as plain requests so they stay fixed whatever a bounded run happens to draw.
test("a NUL in text the database would store is a 400 naming the field, never a 500", async () => {
  const auth = { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" };
  // Its own recording: the fuzzing's stateful phase may have deleted the first one through DELETE /recordings/{id}.
  const { id } = await storeReadyRecording(env, "fuzz-stream/nul-check");
  const patch = await fetch(`${api.url}/recordings/${id}`, { method: "PATCH", headers: auth, body: JSON.stringify({ title: "a\u0000b" }) });
  assert.equal(patch.status, 400);
  const body = (await patch.json()) as { error: { field: string; message: string } };
  assert.equal(body.error.field, "title");
  assert.match(body.error.message, /NUL/);
  for (const q of ["q=a%00b", "stream=a%00b", "cursor=%00"]) assert.equal((await fetch(`${api.url}/recordings?${q}`)).status, 400, q);

  const nulBody = await fetch(`${gateway.http}/streams`, { method: "POST", headers: auth, body: "\u0000" });
  assert.equal(nulBody.status, 400);
  assert.match(((await nulBody.json()) as { error: { message: string } }).error.message, /not valid JSON/);
  const nulTitle = await fetch(`${gateway.http}/streams`, { method: "POST", headers: auth, body: JSON.stringify({ name: "nul-title", title: "a\u0000b" }) });
  assert.equal(nulTitle.status, 400);
  const titleError = ((await nulTitle.json()) as { error: { field: string; message: string } }).error;
  assert.equal(titleError.field, "title");
  assert.match(titleError.message, /^title: .*NUL/);
});

test("an empty date range, and dates an offset carries past year 1 or 9999, are valid questions answered with an empty page", async () => {
  for (const q of ["from=2025-01-31T00:00:00Z&to=2025-01-31T00:00:00Z", `to=${encodeURIComponent("0001-01-01T00:44:03+22:03")}`, `from=${encodeURIComponent("9999-12-31T23:59:59-23:59")}`]) {
    const r = await fetch(`${api.url}/recordings?${q}`);
    assert.equal(r.status, 200, q);
    assert.deepEqual(await r.json(), { items: [], nextCursor: null }, q);
  }
});
