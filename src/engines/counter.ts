/**
 * Server-side counters shared by the Redis and Redis Cluster engines (tag stamps of cached functions,
 * see `src/cached/tags.ts`). `INCRBY` is atomic on the server and needs no scripting, so it works under
 * the README's per-tenant ACL recipe (which refuses `@scripting`) and on every Redis version.
 *
 * @module
 */
import type { SendOne } from './conditional.js';

/**
 * `INCRBY key by`, then (when `ttlSeconds` is given) `EXPIRE key ttlSeconds`, sent back to back on the
 * key's connection (one round trip when pipelined). The expiry is refreshed on every increment.
 * @returns the value after the increment.
 */
export async function incrementBy(
  send: SendOne,
  key: string,
  by: number,
  ttlSeconds?: number,
): Promise<number> {
  const incremented = send(key, ['INCRBY', key, String(by)]);
  if (ttlSeconds === undefined) return Number(await incremented);
  const [value] = await Promise.all([incremented, send(key, ['EXPIRE', key, String(ttlSeconds)])]);
  return Number(value);
}
