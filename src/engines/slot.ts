/**
 * Redis Cluster hash slots: CRC16 (XMODEM) of the key's UTF-8 bytes, modulo 16384, honouring hash tags
 * exactly as Redis does (`keyHashSlot` in `cluster.c`): when the key has a `{` followed later by a `}`
 * with at least one byte between them, only the bytes between the first `{` and the first `}` after it
 * are hashed; otherwise (no `{`, no `}` after it, or an empty tag `{}`) the whole key is hashed.
 *
 * Tested against the server's `CLUSTER KEYSLOT`.
 *
 * @module
 */

/** Number of hash slots in a Redis Cluster. */
export const SLOT_COUNT = 16384;

const OPEN = 0x7b; // '{'
const CLOSE = 0x7d; // '}'

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** CRC16-XMODEM (polynomial 0x1021, initial value 0) of `bytes[start..end)`. */
export function crc16(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) {
    crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ (bytes[i] as number)) & 0xff] as number);
  }
  return crc;
}

/** CRC16-XMODEM of the characters `key[start..end)`, all ASCII (one byte each in UTF-8). */
function crc16Ascii(key: string, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) {
    crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ key.charCodeAt(i)) & 0xff] as number);
  }
  return crc;
}

/** Whether every character of `key` is ASCII (so its UTF-8 bytes are its character codes). */
function isAscii(key: string): boolean {
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** The hash slot (0..16383) of `key`, as the server computes it. */
export function keySlot(key: string): number {
  if (isAscii(key)) {
    // The common case, without encoding the key: same bytes, same rule.
    const open = key.indexOf('{');
    if (open !== -1) {
      const close = key.indexOf('}', open + 1);
      if (close > open + 1) return crc16Ascii(key, open + 1, close) & (SLOT_COUNT - 1);
    }
    return crc16Ascii(key, 0, key.length) & (SLOT_COUNT - 1);
  }
  const bytes = Buffer.from(key, 'utf8');
  // '{' and '}' never occur inside a multi-byte UTF-8 sequence, so searching the bytes is exact.
  const open = bytes.indexOf(OPEN);
  if (open !== -1) {
    const close = bytes.indexOf(CLOSE, open + 1);
    if (close > open + 1) return crc16(bytes, open + 1, close) & (SLOT_COUNT - 1);
  }
  return crc16(bytes) & (SLOT_COUNT - 1);
}

/**
 * Group `keys` by hash slot, keeping each key's position: `slot -> indices into keys` (in order).
 * Repeated keys land in the same group.
 */
export function groupBySlot(keys: readonly string[]): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  for (let i = 0; i < keys.length; i++) {
    const slot = keySlot(keys[i] as string);
    const group = groups.get(slot);
    if (group === undefined) groups.set(slot, [i]);
    else group.push(i);
  }
  return groups;
}
