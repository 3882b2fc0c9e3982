import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../../lib/log.js";

// Each job writes into its own folder under WORK_DIR/convert named `<host>~<pid>~<random>`. A replica killed
// with -9 leaves its folder behind: any replica on the same host removes folders whose process is
// gone; folders of other hosts sharing the volume are removed only when old.

const SEP = "~";
const FOREIGN_MAX_AGE_MS = 24 * 3600 * 1000;

/** A function's own part of WORK_DIR (convert, package): others (thumbnail) keep theirs beside it. */
export function convertWorkDir(workDir: string, fn = "convert"): string {
  return join(workDir, fn);
}

export async function createJobDir(workDir: string, fn = "convert"): Promise<string> {
  const dir = join(convertWorkDir(workDir, fn), [hostname(), process.pid, randomBytes(4).toString("hex")].join(SEP));
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Removes the job folders of processes that no longer run; returns how many. */
export async function removeDeadJobDirs(workDir: string, log: Logger, fn = "convert"): Promise<number> {
  const root = convertWorkDir(workDir, fn);
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of entries) {
    const fields = name.split(SEP);
    if (fields.length !== 3) continue;
    const [host, pidText] = fields;
    const pid = Number(pidText);
    const path = join(root, name);
    let dead: boolean;
    if (host === hostname() && Number.isInteger(pid)) dead = !isAlive(pid);
    else dead = Date.now() - (await stat(path).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs > FOREIGN_MAX_AGE_MS;
    if (!dead) continue;
    await killOrphan(path);
    await rm(path, { recursive: true, force: true });
    removed++;
  }
  if (removed) log.info({ removed, workDir: root }, "removed temp folders left by replicas that stopped");
  return removed;
}

/** Notes which child (FFmpeg) works in a job folder, so a replica cleaning up after a crash can stop it. */
export async function recordChild(dir: string, pid: number | undefined): Promise<void> {
  if (pid) await writeFile(join(dir, CHILD_PID_FILE), String(pid)).catch(() => {});
}
const CHILD_PID_FILE = "child.pid";

/** A replica killed with -9 leaves its FFmpeg running: stop it, if that pid still names a process working in `dir`. */
async function killOrphan(dir: string): Promise<void> {
  const pid = Number(await readFile(join(dir, CHILD_PID_FILE), "utf8").catch(() => ""));
  if (!Number.isInteger(pid) || pid <= 0) return;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  if (cmdline.includes(dir)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
