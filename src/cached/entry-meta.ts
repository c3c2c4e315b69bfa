/**
 * How a read checks the tags of a cached result: the stamps its fill recorded (stored in the typed
 * envelope, `peak-cache:v2:`, see `result-codec.ts`) against the current ones (see `tags.ts`).
 *
 * The stamps of the tags a call names (its `tags` option and, for `cacheResult`, the implicit entity /
 * key-prefix tags) are read in the same `MGET` as the value: one round trip on one server (one per slot,
 * sent together, on a cluster; from memory with the near cache, where stamp keys are invalidated by
 * tracking like any key). Stamps of tags the entry names but the call did not (a factory's `ctx.tags`)
 * are read in a second round trip.
 *
 * Tags need the `'typed'` codec: an entry stored with the client's codec must stay what Python and a
 * plain `get` read, so it carries no metadata. Such entries are invalidated by deleting them
 * (`invalidate()`'s physical SCAN, `delete`, `flush*`), never by tags.
 *
 * @module
 */
import type { Engine } from '../engines/engine.js';
import type { KeySpace } from '../keys.js';
import type { EntryStamps } from './result-codec.js';
import { compareStamps, parseStamp, type StampVerdict, storedStampKey } from './tags.js';

/** The current stamps of `stampKeys` (below the namespace), in order. */
export function readStamps(engine: Engine, ks: KeySpace, stampKeys: readonly string[]): Promise<number[]> {
  return engine.mget(stampKeys.map((key) => storedStampKey(ks, key))).then((raws) => raws.map(parseStamp));
}

/**
 * One `MGET` of `stored` (full keys) followed by the stamp keys `stampKeys` (below the namespace): the
 * raw values of `stored`, then the raw stamps from index `stored.length`.
 */
export function readWithStamps(
  engine: Engine,
  ks: KeySpace,
  stored: readonly string[],
  stampKeys: readonly string[],
): Promise<(string | null)[]> {
  const keys = new Array<string>(stored.length + stampKeys.length);
  for (let i = 0; i < stored.length; i++) keys[i] = stored[i] as string;
  for (let i = 0; i < stampKeys.length; i++)
    keys[stored.length + i] = storedStampKey(ks, stampKeys[i] as string);
  return engine.mget(keys);
}

/**
 * The verdict on an entry's `recorded` stamps: the current stamps of `known` (the call's stamp keys) are
 * `read[at + i]`; those of keys the entry names but `known` does not are read with `readMissing`.
 */
export function stampVerdict(
  recorded: EntryStamps,
  known: readonly string[],
  read: readonly (string | null)[],
  at: number,
  readMissing: (stampKeys: string[]) => Promise<number[]>,
): StampVerdict | Promise<StampVerdict> {
  const then = new Array<number>(recorded.length);
  const current = new Array<number>(recorded.length);
  let missing: string[] | undefined;
  for (let i = 0; i < recorded.length; i++) {
    const [key, stamp] = recorded[i] as readonly [string, number];
    then[i] = stamp;
    // Usually the call names the entry's tags in the same order.
    const index = known[i] === key ? i : known.indexOf(key);
    if (index < 0) {
      missing ??= [];
      missing.push(key);
      current[i] = Number.NaN;
    } else current[i] = parseStamp(read[at + index] ?? null);
  }
  if (missing === undefined) return compareStamps(then, current);
  return readMissing(missing).then((extra) => {
    let next = 0;
    for (let i = 0; i < current.length; i++) {
      if (Number.isNaN(current[i])) current[i] = extra[next++] as number;
    }
    return compareStamps(then, current);
  });
}
