// Child processes by pid/ppid from /proc: other tests run FFmpeg at the same time, so a name alone says nothing.
import { readdir, readFile } from "node:fs/promises";

export interface Proc {
  pid: number;
  ppid: number;
  comm: string;
  state: string;
  /** Clock ticks since boot: with the pid, names one process even after the pid is reused. */
  start: string;
}

async function stat(pid: number): Promise<Proc | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  if (!text) return undefined;
  // comm is in parentheses and may hold spaces: the fields after the last ')' are fixed.
  const close = text.lastIndexOf(")");
  const rest = text.slice(close + 2).split(" ");
  return { pid, comm: text.slice(text.indexOf("(") + 1, close), state: rest[0]!, ppid: Number(rest[1]), start: rest[19]! };
}

/** The processes whose parent is `ppid` and whose name is `comm`. */
export async function childrenOf(ppid: number, comm: string): Promise<Proc[]> {
  const out: Proc[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const p = await stat(Number(name));
    if (p && p.ppid === ppid && p.comm === comm) out.push(p);
  }
  return out;
}

/** Those of `procs` still running (a zombie waiting to be reaped has ended). */
export async function stillRunning(procs: Proc[]): Promise<Proc[]> {
  const out: Proc[] = [];
  for (const p of procs) {
    const now = await stat(p.pid);
    if (now && now.start === p.start && now.state !== "Z" && now.state !== "X") out.push(now);
  }
  return out;
}

/**
 * Kills `parent` with -9 while its `children` are stopped (SIGSTOP), so none can exit by itself on end of
 * input: only the kernel's parent-death signal ends them. Returns those still running after `waitMs`, and
 * kills them (the test's own processes) so a failure leaves nothing behind.
 */
export async function survivorsOfKill9(parent: { kill(signal: NodeJS.Signals): unknown }, children: Proc[], waitMs: number): Promise<Proc[]> {
  for (const c of children) process.kill(c.pid, "SIGSTOP");
  parent.kill("SIGKILL");
  const deadline = Date.now() + waitMs;
  let left = await stillRunning(children);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    left = await stillRunning(children);
  }
  for (const c of left) process.kill(c.pid, "SIGKILL");
  return left;
}
