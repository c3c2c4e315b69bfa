/**
 * `mset` with a TTL, shared by the Redis and Redis Cluster engines (on a cluster: once per hash slot).
 *
 * One `EVAL` of a SET EX script: one command and one reply instead of a `MULTI`, 2 x N queued replies and
 * an `EXEC`, and the whole batch appears at once, each key with its TTL. `EVAL`, not `EVALSHA`: a
 * `NOSCRIPT` answer (a cold script cache: first use, a restart, `SCRIPT FLUSH`) would need a retry sent
 * after the commands issued later in the same tick, and the retried write would overwrite a later `set`
 * of the same key (the server caches the compiled script by its SHA1 either way). Where an ACL refuses
 * scripting (`NOPERM`, as under the README's per-tenant recipe), the engine learns it once and uses
 * `MULTI`/`EXEC` of `SET ... EX` from then on: the same atomicity. Nothing ran when a script was refused, so nothing is repeated.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import type { CacheError } from '../errors.js';
import type { ScriptingState } from './conditional.js';
import { isReplyCode } from './redis-errors.js';

/** SET EX of every key (KEYS) to its value (ARGV, in order), with the TTL as the last ARGV. */
export const MSET_EX_SCRIPT =
  "local ttl = ARGV[#ARGV] for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[i], 'EX', ttl) end return #KEYS";
/** SHA1 of {@link MSET_EX_SCRIPT}: the server caches the script under it (`SCRIPT EXISTS`). */
export const MSET_EX_SHA = createHash('sha1').update(MSET_EX_SCRIPT).digest('hex');

/** Sends one command whose keys all share one hash slot; rejects with a {@link CacheError}. */
export type SendArgs = (args: string[]) => Promise<unknown>;

/**
 * Store `entries` (all in one hash slot on a cluster), each with an expiry of `ttlSeconds`, atomically.
 * @param send - runs one command on the right node.
 * @param multi - runs the MULTI/EXEC of `SET ... EX` (the fallback where scripting is refused).
 * @param state - the engine's scripting state (turned off at the first `NOPERM`).
 * @throws {CacheError} from `send` / `multi`.
 */
export async function msetWithTtl(
  send: SendArgs,
  multi: () => Promise<unknown>,
  state: ScriptingState,
  entries: readonly (readonly [string, string])[],
  ttlSeconds: number,
): Promise<void> {
  if (state.scripting) {
    const args = ['EVAL', MSET_EX_SCRIPT, String(entries.length)];
    for (const [key] of entries) args.push(key);
    for (const [, value] of entries) args.push(value);
    args.push(String(ttlSeconds));
    try {
      await send(args);
      return;
    } catch (err) {
      if (!isReplyCode(err, 'NOPERM')) throw err;
      state.scripting = false;
    }
  }
  await multi();
}
