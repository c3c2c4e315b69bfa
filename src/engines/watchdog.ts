/**
 * The hang bounds shared by the Redis engines: one watchdog timer per engine (not one per command) for
 * replies, and a deadline for connecting.
 *
 * @module
 */

/**
 * Call `check(now)` about every `intervalMs`. When the event loop itself was blocked (a long GC pause,
 * CPU-bound work) the tick comes late, and commands may not even have been written yet, or their replies
 * not read: silence during such a pause says nothing about the server. Such a tick calls `restart(now)`
 * instead, so the engine restarts its clocks rather than failing healthy calls. The timer never keeps
 * Node alive. A callback that throws is contained (a throw from a timer would crash the host): the next
 * tick runs as usual.
 */
export function startWatchdog(
  intervalMs: number,
  check: (now: number) => void,
  restart: (now: number) => void,
): NodeJS.Timeout {
  let lastTick = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    const late = now - lastTick > 2 * intervalMs + 50;
    lastTick = now;
    try {
      if (late) restart(now);
      else check(now);
    } catch {
      // Nothing to report it to; the next tick checks again.
    }
  }, intervalMs);
  timer.unref();
  return timer;
}

/**
 * `pending`, bounded by `ms`: past it the promise rejects with `onTimeout()`'s error (which should also
 * abandon the attempt, e.g. destroy the half-open connection; should `onTimeout` throw, that is the
 * error). The timer is cleared either way, and `pending` stays owned: a late rejection is not unhandled.
 */
export async function withDeadline<T>(pending: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      try {
        reject(onTimeout());
      } catch (err) {
        reject(err);
      }
    }, ms);
  });
  try {
    return await Promise.race([pending, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
