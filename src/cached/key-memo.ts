/**
 * The keys a `cacheResult` wrapper built for its recent calls of one argument (or none), so that a hot
 * call (`findUser(42)`) does not build the canonical text of its arguments, hash it, and concatenate and
 * hash its stored key again (issue 20: that was most of a near-cache hit). The key is the same string
 * object each time, so the near cache's lookup of it hashes nothing.
 *
 * Only calls whose key is a function of the argument's value alone are kept: one primitive argument (a
 * string of at most {@link MAX_TEXT} characters, a number other than `-0` (its canonical text differs from
 * `0`'s, which `Map` keys do not tell apart), a bigint, a boolean, `null`, `undefined`) or none, under the
 * default key layout. What else the key depends on (the deployment id, the entity from `entityId`) is
 * checked on each use, so an impure `entityId` or a changed deployment id builds the key again.
 *
 * @module
 */
import type { Resolved } from './call-options.js';

/** Most calls one wrapper keeps (emptied when full). */
const MAX_CALLS = 1024;
/** Longest string argument kept, in characters. */
const MAX_TEXT = 256;
/** The memo's key of a call without arguments. */
const NO_ARGS = Symbol('no arguments');
/** The memo's key of a call whose one argument is `undefined`. */
const UNDEFINED_ARG = Symbol('undefined');
/** {@link memoKey} of a call that is not kept. */
const NOT_KEPT = Symbol('not kept');

/** A call's key, as built: its entity, stored key and stamp keys, and its options once made. */
export interface KeptKey {
  readonly entity: string | null;
  /** The key below the namespace. */
  readonly stored: string;
  /** The call's stamp keys (the implicit ones, then the wrapper's tags). */
  readonly tagKeys: readonly string[];
  /** The wrapper's options with {@link KeptKey.tagKeys} (made at the first use). */
  options: Resolved | undefined;
}

/** The memo key of `args` when a call on them may be kept, else {@link NOT_KEPT}. */
function memoKey(args: readonly unknown[]): unknown {
  if (args.length === 0) return NO_ARGS;
  if (args.length !== 1) return NOT_KEPT;
  const arg = args[0];
  switch (typeof arg) {
    case 'string':
      return arg.length <= MAX_TEXT ? arg : NOT_KEPT;
    case 'number':
      return Object.is(arg, -0) ? NOT_KEPT : arg;
    case 'bigint':
    case 'boolean':
      return arg;
    case 'undefined':
      return UNDEFINED_ARG;
    case 'object':
      return arg === null ? null : NOT_KEPT;
    default:
      return NOT_KEPT;
  }
}

/** The keys of one wrapper's recent calls (see the module doc). */
export class KeyMemo {
  readonly #calls = new Map<unknown, KeptKey>();
  #deployment: string | null = null;

  /** The kept key of a call on `args` under `deployment` with `entity`, if any. */
  get(deployment: string | null, entity: string | null, args: readonly unknown[]): KeptKey | undefined {
    if (deployment !== this.#deployment) return undefined;
    const key = memoKey(args);
    if (key === NOT_KEPT) return undefined;
    const kept = this.#calls.get(key);
    return kept !== undefined && kept.entity === entity ? kept : undefined;
  }

  /** Keep the key of a call on `args` (when such a call may be kept; see the module doc). */
  set(deployment: string | null, args: readonly unknown[], kept: KeptKey): void {
    const key = memoKey(args);
    if (key === NOT_KEPT) return;
    if (deployment !== this.#deployment) {
      this.#calls.clear();
      this.#deployment = deployment;
    }
    if (this.#calls.size >= MAX_CALLS) this.#calls.clear();
    this.#calls.set(key, kept);
  }
}
