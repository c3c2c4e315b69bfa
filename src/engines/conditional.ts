/**
 * Conditional writes shared by the Redis and Redis Cluster engines: SET NX PX (take a lock),
 * compare-and-delete (release it only by its owner) and compare-and-extend (renew its lease only by its
 * owner).
 *
 * Compare-and-delete is one Lua script where the server allows scripting. Under an ACL that refuses
 * `@scripting` (the README's per-tenant recipe), it falls back to `GET` then `DEL`. That path has a
 * documented race: if the lock expires between the two commands and another owner takes it in that
 * window, the other owner's lock is deleted (a later caller may then run the factory a second time).
 * The window is one round trip, and a lock only expires on its own when its owner overran `lockTtlMs`.
 * Compare-and-extend falls back the same way (`GET` then `PEXPIRE`): in the same window it may extend
 * another owner's lock by one `lockTtlMs` (that owner's waiters then wait a little longer, never past
 * their `lockTimeoutMs`).
 *
 * @module
 */
import { isReplyCode } from './redis-errors.js';

/** Delete KEYS[1] if its value is ARGV[1]; returns 1 when deleted. */
export const DELETE_IF_EQUALS_SCRIPT =
  "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/** Set KEYS[1]'s expiry to ARGV[2] ms if its value is ARGV[1]; returns 1 when extended. */
export const PEXPIRE_IF_EQUALS_SCRIPT =
  "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";

/** Sends one command for one key and resolves with its reply. */
export type SendOne = (key: string, args: string[]) => Promise<unknown>;

/** Whether the server allows scripting, learnt from the first refusal (shared by an engine's calls). */
export interface ScriptingState {
  scripting: boolean;
}

/** `SET key value NX PX ttlMs`: `true` when stored. */
export async function setIfAbsent(
  send: SendOne,
  key: string,
  value: string,
  ttlMs: number,
): Promise<boolean> {
  return (await send(key, ['SET', key, value, 'NX', 'PX', String(ttlMs)])) !== null;
}

/**
 * Run `script` on `key` with `args` (its ARGV[1] is `value`), or where an ACL refuses scripting `GET`
 * then `fallback` when the key still holds `value` (see module doc); `true` when the script or the
 * fallback command replied 1.
 */
async function ifEquals(
  send: SendOne,
  state: ScriptingState,
  key: string,
  script: string,
  args: readonly string[],
  fallback: string[],
): Promise<boolean> {
  if (state.scripting) {
    try {
      return (await send(key, ['EVAL', script, '1', key, ...args])) === 1;
    } catch (err) {
      if (!isReplyCode(err, 'NOPERM')) throw err;
      state.scripting = false;
    }
  }
  if ((await send(key, ['GET', key])) !== args[0]) return false;
  return (await send(key, fallback)) === 1;
}

/** Compare-and-delete: the script, or `GET` + `DEL` where an ACL refuses scripting (see module doc). */
export function deleteIfEquals(
  send: SendOne,
  state: ScriptingState,
  key: string,
  value: string,
): Promise<boolean> {
  return ifEquals(send, state, key, DELETE_IF_EQUALS_SCRIPT, [value], ['DEL', key]);
}

/** Compare-and-extend: the script, or `GET` + `PEXPIRE` where an ACL refuses scripting (see module doc). */
export function pexpireIfEquals(
  send: SendOne,
  state: ScriptingState,
  key: string,
  value: string,
  ttlMs: number,
): Promise<boolean> {
  const ms = String(ttlMs);
  return ifEquals(send, state, key, PEXPIRE_IF_EQUALS_SCRIPT, [value, ms], ['PEXPIRE', key, ms]);
}
