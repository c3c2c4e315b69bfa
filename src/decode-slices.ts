/**
 * Fairness of large reads (issue 18): decoding 10,000 values takes about 10 ms of the event loop, during
 * which no other call of the process (another tenant's `get` on the same connection or any other) can
 * finish. A large `mget` reply is therefore decoded in slices of {@link DECODE_SLICE} values, yielding to
 * the event loop (`setImmediate`) between slices, so other calls' replies are delivered in between.
 *
 * @module
 */

/** Values decoded per event-loop turn; replies up to this size are decoded at once, with no yield. */
export const DECODE_SLICE = 1000;

/**
 * `raws.map(decode)`, at once for up to {@link DECODE_SLICE} values, else slice by slice with a
 * `setImmediate` between slices.
 * @returns the decoded array, or a promise of it for a larger reply (rejecting with `decode`'s error).
 */
export function decodeAll<T>(
  raws: readonly (string | null)[],
  decode: (raw: string | null, index: number) => T,
): T[] | Promise<T[]> {
  if (raws.length <= DECODE_SLICE) return raws.map(decode);
  return decodeInSlices(raws, decode);
}

async function decodeInSlices<T>(
  raws: readonly (string | null)[],
  decode: (raw: string | null, index: number) => T,
): Promise<T[]> {
  const out = new Array<T>(raws.length);
  for (let start = 0; start < raws.length; start += DECODE_SLICE) {
    if (start > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const end = Math.min(raws.length, start + DECODE_SLICE);
    for (let i = start; i < end; i++) out[i] = decode(raws[i] as string | null, i);
  }
  return out;
}
