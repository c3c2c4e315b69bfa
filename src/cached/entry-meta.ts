/**
 * How a cached result records its tags and the stamps it was produced at, and how a read checks them.
 *
 * Stored form of a tagged result (the `'typed'` codec only):
 * ```
 * peak-cache:v1:~<JSON [[stampKey, stamp], ...]>\n<devalue text>
 * ```
 * Untagged results keep the `peak-cache:v1:` form of `result-codec.ts` byte for byte. The `~` after the
 * v1 marker (devalue text starts with `[` or `-`) makes a reader of an earlier version (no tags) fail to
 * decode a tagged entry, which it treats as a miss (it refills the key without tags), instead of
 * returning the stored text as a value, which a new marker would have made it do (an entry without the
 * marker is decoded by the client's codec). Stamp keys are
 * stored below the namespace (see `tags.ts`), so the entry reads the same under any tenant name.
 *
 * Tags need the `'typed'` codec: an entry stored with the client's codec must stay what Python and a
 * plain `get` read, so it carries no metadata. Such entries are invalidated by deleting them
 * (`invalidate()`'s physical SCAN, `delete`, `flush*`), never by tags.
 *
 * @module
 */
import type { Engine } from '../engines/engine.js';
import type { KeySpace } from '../keys.js';
import { RESULT_MARKER } from './result-codec.js';
import { compareStamps, parseStamp, type StampVerdict, storedStampKey } from './tags.js';

/** First characters of a tagged result (see the module doc). */
export const TAGGED_MARKER = `${RESULT_MARKER}~`;

/** An entry as read, its tags checked. */
export interface EntryRead {
  /** The stored value without its tag metadata (`peak-cache:v1:` form for tagged results); `null`: missing. */
  readonly raw: string | null;
  /** Remaining lifetime in ms (`-1` when not read or no expiry). */
  readonly pttl: number;
  /** The entry's stamps against the current ones (`'fresh'` for an untagged entry). */
  readonly verdict: StampVerdict;
}

/**
 * `encoded` (a `peak-cache:v1:` result) with the stamps its fill recorded for `stampKeys`.
 * Without stamp keys, `encoded` itself.
 */
export function withStamps(encoded: string, stampKeys: readonly string[], stamps: readonly number[]): string {
  if (stampKeys.length === 0) return encoded;
  const pairs = stampKeys.map((key, i) => [key, stamps[i]]);
  return `${TAGGED_MARKER}${JSON.stringify(pairs)}\n${encoded.slice(RESULT_MARKER.length)}`;
}

interface Meta {
  readonly keys: string[];
  readonly stamps: number[];
  readonly body: string;
}

/** Most parsed metadata kept (see {@link parseMeta}); the memo is emptied when it is full. */
const MEMO_ENTRIES = 1024;
const memo = new Map<string, Meta | null>();

/**
 * The metadata of a tagged result; `null` when it is corrupt. Memoized by the stored text: a hot entry
 * (above all one served by the near cache, which hands out the same string each time) is parsed once.
 */
function parseMeta(raw: string): Meta | null {
  let meta = memo.get(raw);
  if (meta === undefined) {
    if (memo.size >= MEMO_ENTRIES) memo.clear();
    meta = parseMetaText(raw);
    memo.set(raw, meta);
  }
  return meta;
}

function parseMetaText(raw: string): Meta | null {
  const end = raw.indexOf('\n', TAGGED_MARKER.length);
  if (end < 0) return null;
  let pairs: unknown;
  try {
    pairs = JSON.parse(raw.slice(TAGGED_MARKER.length, end));
  } catch {
    return null;
  }
  if (!Array.isArray(pairs)) return null;
  const keys: string[] = [];
  const stamps: number[] = [];
  for (const pair of pairs) {
    if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'number') return null;
    keys.push(pair[0]);
    stamps.push(pair[1]);
  }
  return { keys, stamps, body: RESULT_MARKER + raw.slice(end + 1) };
}

/**
 * `raw` without its tag metadata (the `peak-cache:v1:` form `decodeResult` reads); `raw` itself when it
 * carries none; a tagged entry whose metadata is corrupt gives an empty body (corrupt for the decoder).
 */
export function withoutStamps(raw: string): string {
  if (!raw.startsWith(TAGGED_MARKER)) return raw;
  return parseMeta(raw)?.body ?? RESULT_MARKER;
}

/** The current stamps of `stampKeys` (below the namespace), in order. */
export function readStamps(engine: Engine, ks: KeySpace, stampKeys: readonly string[]): Promise<number[]> {
  return engine.mget(stampKeys.map((key) => ks.key(key))).then((raws) => raws.map(parseStamp));
}

/**
 * Read the entry at `stored` and check its tags. The stamps of `knownStampKeys` (the call's tags) are read
 * in the same `MGET` as the value (one round trip on one server; one per slot, sent together, on a
 * cluster; from memory with the near cache); stamps of tags the entry names but the call did not are read
 * in a second round trip. With `withPttl` the remaining lifetime is read alongside (grace).
 * `typed: false` (the client's codec): the value is returned as it is, with no tags. One `.then` after
 * the read, as the hit path before tags.
 */
export function readEntry(
  engine: Engine,
  ks: KeySpace,
  stored: string,
  knownStampKeys: readonly string[],
  withPttl: boolean,
  typed: boolean,
): Promise<EntryRead> {
  let values: Promise<string | null | (string | null)[]>;
  if (knownStampKeys.length === 0) values = engine.get(stored);
  else {
    const keys = new Array<string>(knownStampKeys.length + 1);
    keys[0] = stored;
    for (let i = 0; i < knownStampKeys.length; i++)
      keys[i + 1] = storedStampKey(ks, knownStampKeys[i] as string);
    values = engine.mget(keys);
  }
  if (!withPttl) return values.then((read) => checkEntry(engine, ks, read, knownStampKeys, -1, typed));
  return Promise.all([values, engine.pttl(stored)]).then(([read, pttl]) =>
    checkEntry(engine, ks, read, knownStampKeys, pttl, typed),
  );
}

/** {@link readEntry} once the value (alone, or with the stamps of `known` after it) is read. */
function checkEntry(
  engine: Engine,
  ks: KeySpace,
  read: string | null | (string | null)[],
  known: readonly string[],
  pttl: number,
  typed: boolean,
): EntryRead | Promise<EntryRead> {
  const raws = Array.isArray(read) ? read : null;
  const raw = raws === null ? (read as string | null) : (raws[0] ?? null);
  if (raw === null || !typed || !raw.startsWith(TAGGED_MARKER)) return { raw, pttl, verdict: 'fresh' };
  const meta = parseMeta(raw);
  if (meta === null) return { raw: null, pttl, verdict: 'removed' }; // corrupt: a miss, the fill overwrites it
  const current = new Array<number>(meta.keys.length);
  let missing: string[] | undefined;
  for (let i = 0; i < meta.keys.length; i++) {
    const key = meta.keys[i] as string;
    // Usually the call names the entry's tags in the same order.
    const at = known[i] === key ? i : known.indexOf(key);
    if (at < 0) {
      missing ??= [];
      missing.push(key);
    }
    current[i] = at < 0 || raws === null ? Number.NaN : parseStamp(raws[at + 1] ?? null);
  }
  if (missing === undefined) return { raw: meta.body, pttl, verdict: compareStamps(meta.stamps, current) };
  return readStamps(engine, ks, missing).then((extra) => {
    let next = 0;
    const all = current.map((stamp) => (Number.isNaN(stamp) ? (extra[next++] as number) : stamp));
    return { raw: meta.body, pttl, verdict: compareStamps(meta.stamps, all) };
  });
}
