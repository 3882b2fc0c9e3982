import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { createLogger } from "../../lib/log.js";
import { createJobDir, removeDeadJobDirs } from "./workdir.js";

// A replica killed with -9 leaves its job folder; the next job of any replica on the host removes it.
// The soak found thumbnail folders left this way: every function that makes job folders goes through here.
test("job folders of a process that is gone are removed, a live process's folder is kept, for each function's part of WORK_DIR", async () => {
  const work = await mkdtemp(join(tmpdir(), "workdir-"));
  try {
    const log = createLogger("test", "silent");
    const mine = await createJobDir(work, "thumbnail");
    // A folder named like one a process that has since exited made (its pid, reused or not, no longer runs this job).
    const child = await execa("node", ["--import", "tsx", "-e", `import("${new URL("./workdir.ts", import.meta.url).pathname}").then(m => m.createJobDir(${JSON.stringify(work)}, "thumbnail")).then(d => console.log(d))`]);
    const dead = child.stdout.trim();
    assert.match(dead, /thumbnail/);
    assert.deepEqual((await readdir(join(work, "thumbnail"))).length, 2);

    assert.equal(await removeDeadJobDirs(work, log, "thumbnail"), 1);
    const left = await readdir(join(work, "thumbnail"));
    assert.deepEqual(left, [mine.split("/").at(-1)]);
    // Another function's part is not touched.
    assert.equal(await removeDeadJobDirs(work, log, "convert"), 0);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});
