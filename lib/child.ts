// Child processes (FFmpeg, FFprobe) that must not outlive the service that started them.
import { existsSync } from "node:fs";

const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => process.platform === "linux" && existsSync(p));

/**
 * The command wrapped in util-linux `setpriv --pdeathsig KILL`, which sets prctl(PR_SET_PDEATHSIG) and then
 * execs the command in place (same pid): when the service dies, even by kill -9, the kernel kills the child
 * instead of leaving it running under init. Without setpriv (not Linux) the command runs as given.
 */
export function dieWithParent(command: string, args: readonly string[]): [string, string[]] {
  return SETPRIV ? [SETPRIV, ["--pdeathsig", "KILL", "--", command, ...args]] : [command, [...args]];
}
