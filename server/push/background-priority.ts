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
 * the main thread bounds what may wait for it (push-delivery.ts).
 */
import { execFile } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/** What the thread runs at: SCHED_IDLE, a nice value, or as it was. */
export type BackgroundPriority =
  | { readonly kind: 'idle' }
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
  return new Promise((resolve) => {
    execFile(
      'chrt',
      ['--idle', '--pid', '0', threadId],
      { timeout: CHRT_TIMEOUT_MS, windowsHide: true },
      (error, _stdout, stderr) => {
        if (error === null) resolve({ kind: 'idle' });
        else resolve(nice(`chrt --idle failed: ${stderr.trim() || error.message}`));
      },
    );
  });
}
