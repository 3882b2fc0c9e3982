import { test } from "node:test";
import assert from "node:assert/strict";
import { payloadNeedsSigning } from "./s3.js";

// One rule for the gateway's putter and convert's part uploads: the body's SHA-256 goes into the signature
// only where a CRC32 would not protect it (plain http to another machine).
test("an upload's body is hashed into its signature only over plain http to another machine", () => {
  assert.equal(payloadNeedsSigning("http://minio.storage.svc:9000"), true);
  assert.equal(payloadNeedsSigning("http://10.0.0.7:9000"), true);
  assert.equal(payloadNeedsSigning("https://s3.example.com"), false);
  assert.equal(payloadNeedsSigning("http://127.0.0.1:9000"), false);
  assert.equal(payloadNeedsSigning("http://localhost:9000"), false);
  assert.equal(payloadNeedsSigning("http://[::1]:9000"), false);
});
