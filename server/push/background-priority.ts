/**
 * Puts the calling thread (the push delivery worker) below every thread that answers
 * clients. On Linux it asks for SCHED_IDLE: such a thread gets a CPU only when no normal
 * thread wants it (and a normal thread that wakes takes the CPU back at once), so push
 * delivery cannot delay a send, whereas a nice value only weights its share. Linux has
 * no API for this that Node reaches, so util-linux's `chrt` sets it on this thread's ID.
 * Lowering one's own policy needs no privilege. Where chrt is missing or refused, the
 * thread keeps a nice value (per thread on Linux); elsewhere the priority is left alone
 * (a nice value there may apply to the whole process).
 *
 * A SCHED_IDLE thread still gets a minimal share of a busy CPU (its weight is 3 against a
 * normal thread's 1,024), so it is slowed, not stopped, while the machine is saturated;
 * the main thread bounds what may wait for it (push-delivery.ts) and, while pushes wait
 * too long, returns it to its nice value (backlog-priority.ts, with setThreadPolicy).
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/** What the thread runs at: SCHED_IDLE (on this thread ID), a nice value, or as it was. */
export type BackgroundPriority =
  | { readonly kind: 'idle'; readonly threadId: string }
  | { readonly kind: 'nice'; readonly niceness: number; readonly why: string }
  | { readonly kind: 'unchanged'; readonly why: string };

/** How long chrt may take before the thread settles for its nice value. */
const CHRT_TIMEOUT_MS = 5_000;

/**
 * Lowers this thread: the nice value at once, then SCHED_IDLE once chrt has run.
 * Resolves with what it got (never rejects).
 */
export async function lowerThisThread(niceness: number): Promise<BackgroundPriority> {
  if (process.platform !== 'linux') return { kind: 'unchanged', why: `not Linux (${process.platform})` };
  try {
    // Linux: 0 names the calling thread, not the whole process.
    setPriority(0, niceness);
  } catch (error) {
    return { kind: 'unchanged', why: `setpriority refused: ${String(error)}` };
  }
  const nice = (why: string): BackgroundPriority => ({ kind: 'nice', niceness, why });
  let threadId: string;
  try {
    // "PID/task/TID"
    threadId = readlinkSync('/proc/thread-self').split('/').at(-1)!;
  } catch (error) {
    return nice(`no /proc/thread-self: ${String(error)}`);
  }
  if (!/^\d+$/u.test(threadId)) return nice(`unexpected /proc/thread-self: ${threadId}`);
  const refused = await setThreadPolicy(threadId, 'idle');
  return refused === null ? { kind: 'idle', threadId } : nice(refused);
}

/**
 * Puts a thread of this process at SCHED_IDLE, or back at SCHED_OTHER with the nice value
 * it had (chrt keeps it). Resolves with null once done, else why not (never rejects).
 * Leaving SCHED_IDLE takes CAP_SYS_NICE, or an RLIMIT_NICE that allows the thread's nice
 * value (at least 20 - nice: 10 for nice 10; the usual limit is 0, so an unprivileged
 * server needs e.g. systemd's LimitNICE=10).
 */
export function setThreadPolicy(threadId: string, policy: 'idle' | 'other'): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(
      chrtPath(),
      [`--${policy}`, '--pid', '0', threadId],
      { timeout: CHRT_TIMEOUT_MS, windowsHide: true },
      (error, _stdout, stderr) => {
        resolve(error === null ? null : `chrt --${policy} failed: ${stderr.trim() || error.message}`);
      },
    );
  });
}

/** Where util-linux installs chrt, looked at first: PATH (the environment's) only when it is in neither. */
const CHRT_PLACES = ['/usr/bin/chrt', '/bin/chrt'];
let chrtFound: string | undefined;

function chrtPath(): string {
  chrtFound ??=
    CHRT_PLACES.find((path) => {
      try {
        accessSync(path, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    }) ?? 'chrt';
  return chrtFound;
}
