/**
 * Logging. Debug lines (one per operation when `debugLogs` is on) name the operation and keys, never
 * values or secrets. By default they go to `util.debuglog('peak-cache')`, so they stay invisible until
 * `NODE_DEBUG=peak-cache` turns them on, as Python's logging keeps DEBUG lines hidden by default.
 *
 * @module
 */
import { debuglog } from 'node:util';
import { LRUCache } from 'lru-cache';

/** A logger the application can pass in (pino, winston and console all fit). */
export interface CacheLogger {
  /** One line per operation, when `debugLogs` is on. */
  debug(message: string): void;
  /** Configuration the client ignored or could not honour. */
  warn(message: string): void;
}

const nodeDebug = debuglog('peak-cache');

/**
 * Warnings the default logger has shown, so that each is shown once (a warning about one key, e.g. a
 * result that cannot be cached, would otherwise repeat on every call). Bounded: the least recently
 * repeated of {@link SHOWN_WARNINGS_MAX} distinct messages is forgotten first (then shown again).
 */
const SHOWN_WARNINGS_MAX = 1_000;
const shownWarnings = new LRUCache<string, true>({ max: SHOWN_WARNINGS_MAX });

/**
 * The default logger: debug lines through `util.debuglog('peak-cache')`, warnings through
 * `process.emitWarning`, each distinct message once per process (as Python's `warnings` shows a warning
 * once per place by default; Node itself would print every one). A logger passed in gets every warning.
 */
export const defaultLogger: CacheLogger = {
  debug: (message) => nodeDebug('%s', message),
  warn: (message) => {
    if (shownWarnings.get(message) !== undefined) return;
    shownWarnings.set(message, true);
    process.emitWarning(message, { type: 'PeakCacheWarning' });
  },
};

/** Whether a debug line would be shown: lets the client skip formatting it. */
export function isDebugEnabled(logger: CacheLogger): boolean {
  return logger !== defaultLogger || nodeDebug.enabled;
}

/** Quote a key for a log line, shortened so a huge key cannot flood the log. */
export function formatKeys(keys: readonly string[]): string {
  const shown = keys
    .slice(0, 10)
    .map((k) => (k.length > 100 ? `${JSON.stringify(k.slice(0, 100))}...` : JSON.stringify(k)));
  return keys.length > 10 ? `${shown.join(', ')} (+${keys.length - 10} more)` : shown.join(', ');
}
