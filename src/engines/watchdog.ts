/**
 * The hang bound shared by the Redis engines: one timer per engine, not one per command.
 *
 * @module
 */

/**
 * Call `check(now)` about every `intervalMs`. When the event loop itself was blocked (a long GC pause,
 * CPU-bound work) the tick comes late, and commands may not even have been written yet, or their replies
 * not read: silence during such a pause says nothing about the server. Such a tick calls `restart(now)`
 * instead, so the engine restarts its clocks rather than failing healthy calls. The timer never keeps
 * Node alive.
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
    if (late) restart(now);
    else check(now);
  }, intervalMs);
  timer.unref();
  return timer;
}
