// The addon's posix_spawn: stdin from a pipe the receive thread would write, output and exit status as Node's spawn gives them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, writeSync } from "node:fs";
import { spawn } from "node:child_process";
import { text } from "node:stream/consumers";
import { loadAddon } from "../srt/addon.js";
import { spawnNative } from "./native-child.js";

test("a child reads its stdin pipe, writes stdout and stderr, and reports its exit code", async () => {
  const addon = loadAddon();
  const [r, w] = addon.makePipe();
  const child = spawnNative("sh", ["-c", "tr a-z A-Z; echo oops >&2; exit 3"], r);
  closeSync(r);
  writeSync(w, "segment line\n");
  closeSync(w);
  const [out, err, exit] = await Promise.all([text(child.stdout), text(child.stderr), child.exit]);
  assert.equal(out, "SEGMENT LINE\n");
  assert.equal(err, "oops\n");
  assert.deepEqual(exit, { code: 3, signal: null });
});

test("kill ends the child with that signal; killing after the exit is harmless", async () => {
  const addon = loadAddon();
  const [r, w] = addon.makePipe();
  const child = spawnNative("sleep", ["30"], r);
  closeSync(r);
  child.kill("SIGKILL");
  assert.deepEqual(await child.exit, { code: null, signal: "SIGKILL" });
  child.kill("SIGKILL");
  closeSync(w);
});

test("a program that does not exist throws with the reason; signals Node ignores are reset for the child", async () => {
  const addon = loadAddon();
  const [r, w] = addon.makePipe();
  assert.throws(() => spawnNative("/nonexistent/ffmpeg", [], r), /cannot run \/nonexistent\/ffmpeg: No such file/);
  // Node ignores SIGPIPE; a child that inherited that would not die writing into a closed pipe.
  const child = spawnNative("sh", ["-c", "grep SigIgn /proc/self/status"], r);
  closeSync(r);
  closeSync(w);
  const out = await text(child.stdout);
  await child.exit;
  const ignored = BigInt(`0x${out.trim().split(/\s+/)[1]}`);
  assert.equal(ignored & (1n << 12n), 0n, `SIGPIPE (13) must not be ignored in the child: SigIgn ${out.trim()}`);
});

test("Node's own children are still reaped by Node while native ones run", async () => {
  const addon = loadAddon();
  const [r, w] = addon.makePipe();
  const native = spawnNative("sleep", ["2"], r);
  closeSync(r);
  const code = await new Promise<number | null>((resolve) => spawn("true").on("exit", resolve));
  assert.equal(code, 0);
  assert.deepEqual(await native.exit, { code: 0, signal: null });
  closeSync(w);
});
