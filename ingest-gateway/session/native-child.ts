// A child process started by the addon's posix_spawn: the same start cost at any gateway size. Node's spawn
// forks and copies the page tables of the whole process on the event loop (34 ms per FFmpeg at 800 MB
// measured here; a burst of callers queued a hundred of those in one turn and stalled every upload for 30 s).
import { Socket } from "node:net";
import { constants } from "node:os";
import type { Readable } from "node:stream";
import { loadAddon } from "../srt/addon.js";

export interface NativeChild {
  pid: number;
  stdout: Readable;
  stderr: Readable;
  /** Resolves once the process exited. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

const signalNames = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

/** Throws (with the OS's reason) when the program cannot be started. */
export function spawnNative(command: string, args: readonly string[], stdinFd: number): NativeChild {
  const addon = loadAddon();
  const { pid, stdoutFd, stderrFd } = addon.spawn(command, args, stdinFd);
  // Sockets over the pipes' read ends: epoll-driven reads on the event loop, as Node's own stdio pipes.
  const stdout = new Socket({ fd: stdoutFd, readable: true, writable: false });
  const stderr = new Socket({ fd: stderrFd, readable: true, writable: false });
  let exited = false;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    addon.waitExit(pid, (code, signal) => {
      exited = true;
      resolve({ code, signal: signal ? (signalNames.get(signal) ?? null) : null });
    }),
  );
  return {
    pid,
    stdout,
    stderr,
    exit,
    kill(signal = "SIGTERM") {
      // After the exit was seen the pid may belong to another process.
      if (exited) return;
      try {
        process.kill(pid, signal);
      } catch {
        // Already gone.
      }
    },
  };
}
