/**
 * Python values in the interop fixtures' tagged form: standard JSON that spells out Python's types
 * (`{ int }`, `{ float }` as the double's hex bits, `{ dict }` as ordered pairs), so neither side's JSON
 * dialect is under test when values cross between the tests and python3.
 */

/** A Python value in tagged form. */
export type Tagged =
  | null
  | boolean
  | string
  | Tagged[]
  | { int: string }
  | { float: string }
  | { dict: [string, Tagged][] };

/** The hex of the IEEE-754 bits of `n` (big-endian), as the fixtures read a float. */
export function floatBits(n: number): string {
  const buffer = Buffer.alloc(8);
  buffer.writeDoubleBE(n);
  return buffer.toString('hex');
}

/** The Python value to write: `bigint` -> int, `number` -> float, objects -> dicts. */
export function tag(value: unknown): Tagged {
  return tagged(value, false);
}

/** As {@link tag}, but a safe integer `number` (not `-0`) is a Python int, as a Python caller passes it. */
export function tagWithInts(value: unknown): Tagged {
  return tagged(value, true);
}

function tagged(value: unknown, ints: boolean): Tagged {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'bigint') return { int: value.toString() };
  if (typeof value === 'number') {
    if (ints && Number.isSafeInteger(value) && !Object.is(value, -0)) return { int: String(value) };
    return { float: floatBits(value) };
  }
  if (Array.isArray(value)) return value.map((item) => tagged(item, ints));
  return { dict: Object.entries(value as object).map(([k, v]) => [k, tagged(v, ints)]) };
}

/**
 * What a Python value is in JavaScript by the spec's mapping (independent of the codec under test):
 * an int is a `number` when safe, else a `bigint`; a float is the same double.
 */
export function untag(value: Tagged): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(untag);
  if ('int' in value) {
    const big = BigInt(value.int);
    return big >= -BigInt(Number.MAX_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(big)
      : big;
  }
  if ('float' in value) return Buffer.from(value.float, 'hex').readDoubleBE();
  return Object.fromEntries(value.dict.map(([k, v]) => [k, untag(v)]));
}
