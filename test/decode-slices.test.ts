/**
 * Issue 18 fairness: a large `mget` reply is decoded in slices, yielding to the event loop between them,
 * so a call that started after it is not held up by its decoding.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DECODE_SLICE, decodeAll } from '../src/decode-slices.js';
import { CacheClient } from '../src/index.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(() => server.stop());

describe('decodeAll', () => {
  it('decodes small replies at once and large ones in order, yielding between slices', async () => {
    const small = decodeAll(['1', null], (raw) => raw);
    expect(small).toEqual(['1', null]);
    const raws = Array.from({ length: DECODE_SLICE * 2 + 5 }, (_, i) => (i % 7 === 0 ? null : String(i)));
    let yielded = false;
    setImmediate(() => {
      yielded = true;
    });
    const large = decodeAll(raws, (raw, i) => (raw === null ? null : `${raw}:${i}`));
    expect(large).toBeInstanceOf(Promise);
    expect(await large).toEqual(raws.map((raw, i) => (raw === null ? null : `${raw}:${i}`)));
    expect(yielded).toBe(true);
  });

  it('rejects with the decoder error of any slice', async () => {
    const raws = Array.from({ length: DECODE_SLICE + 1 }, () => 'x');
    await expect(
      decodeAll(raws, (_raw, i) => {
        if (i === DECODE_SLICE) throw new Error('bad value');
        return i;
      }),
    ).rejects.toThrow('bad value');
  });

  it("a get started after a large mget is not held up by the mget's decoding", async () => {
    let decoded = 0;
    // Set during the first decoded value: how many values were decoded when the event loop next ran
    // a callback queued then. With slices, that is after the first slice; without, after the whole
    // reply. (Whether the get's own reply arrives in the mget's socket read or a later one depends on
    // the machine's load, so the get itself is only checked for its value.)
    let decodedAtNextTurn = -1;
    const codec = {
      encode: (value: unknown) => JSON.stringify(value),
      decode: (raw: string) => {
        if (decoded++ === 0) {
          setImmediate(() => {
            decodedAtNextTurn = decoded;
          });
        }
        return JSON.parse(raw) as unknown;
      },
    };
    // One connection: the get is answered right behind the mget.
    const client = new CacheClient({ connectionConfig: { url: server.url, tenant: 'fair' }, codec });
    try {
      const keys = Array.from({ length: 5000 }, (_, i) => `k${i}`);
      await client.mset(Object.fromEntries(keys.map((k, i) => [k, { i }])));
      decoded = 0;
      const big = client.mget(...keys);
      const small = client.get('k1');
      const [values, value] = await Promise.all([big, small]);
      expect(values).toEqual(keys.map((_, i) => ({ i })));
      expect(value).toEqual({ i: 1 });
      expect(decodedAtNextTurn).toBeGreaterThan(0);
      expect(decodedAtNextTurn).toBeLessThan(keys.length);
    } finally {
      await client.close();
    }
  });
});
