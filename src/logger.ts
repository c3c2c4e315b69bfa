/**
 * Logging. Debug lines (one per operation when `debugLogs` is on) name the operation and keys, never
 * values or secrets. By default they go to `util.debuglog('peak-cache')`, so they stay invisible until
 * `NODE_DEBUG=peak-cache` turns them on, as Python's logging keeps DEBUG lines hidden by default.
 *
 * @module
 */
import { debuglog } from 'node:util';

/** A logger the application can pass in (pino, winston and console all fit). */
export interface CacheLogger {
  /** One line per operation, when `debugLogs` is on. */
  debug(message: string): void;
  /** Configuration the client ignored or could not honour. */
  warn(message: string): void;
}

const nodeDebug = debuglog('peak-cache');

/**
 * The default logger: debug lines through `util.debuglog('peak-cache')`, warnings through
 * `process.emitWarning` (shown on stderr once per message, as Python shows warnings by default).
 */
export const defaultLogger: CacheLogger = {
  debug: (message) => nodeDebug('%s', message),
  warn: (message) => process.emitWarning(message, { type: 'PeakCacheWarning' }),
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
