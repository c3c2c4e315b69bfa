/**
 * The near cache's race rules, with a scripted engine whose replies the test releases one by one: a read
 * whose key is invalidated (by the server or an own write), or whose cache is reset, while it is in flight
 * never fills the cache; entries expire with the key's PTTL and the `ttlMs` bound.
 */
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import type { Engine } from '../src/engines/engine.js';
import { HEARTBEAT_MS, MAX_SILENCE_MS, NearCache } from '../src/near-cache/near-cache.js';

interface Pending {
  readonly command: string;
  readonly key: string;
  resolve(value: unknown): void;
}

/** An engine whose `get`/`pttl` replies wait until the test releases them. */
class ScriptedEngine {
  readonly pending: Pending[] = [];
  calls = 0;

  #defer(command: string, key: string): Promise<never> {
    this.calls++;
    return new Promise((resolve) => this.pending.push({ command, key, resolve: resolve as never }));
  }

  get(key: string) {
    return this.#defer('GET', key);
  }

  /** The heartbeat's PING: answered at once unless the test replaces it. */
  ping: () => Promise<void> = () => Promise.resolve();

  pttl(key: string) {
    return this.#defer('PTTL', key);
  }

  /** Release the oldest GET and PTTL replies. */
  reply(value: string | null, pttl: number): void {
    const get = this.pending.findIndex((p) => p.command === 'GET');
    this.pending.splice(get, 1)[0]?.resolve(value);
    const ttl = this.pending.findIndex((p) => p.command === 'PTTL');
    this.pending.splice(ttl, 1)[0]?.resolve(pttl);
  }
}

const settle = () => new Promise((r) => setImmediate(r));

/** A near cache attached to a scripted engine (its first heartbeat PING answered). */
async function setup(ttlMs?: number) {
  const near = new NearCache({ maxEntries: 100, maxBytes: undefined, ttlMs, copyValues: false }, JSON.parse);
  const engine = new ScriptedEngine();
  const asEngine = engine as unknown as Engine;
  near.attach(asEngine);
  await settle();
  onTestFinished(() => near.detach(asEngine));
  return { near, engine, asEngine };
}

describe('near cache races', () => {
  it('fills on a plain miss; the next read is a hit without I/O', async () => {
    const { near, engine, asEngine } = await setup();
    const read = near.get(asEngine, 'k');
    engine.reply('v', -1);
    expect(await read).toBe('v');
    expect(await near.get(asEngine, 'k')).toBe('v');
    expect(engine.calls).toBe(2);
    expect(near.stats()).toMatchObject({ hits: 1, misses: 1, size: 1 });
  });

  it('a server invalidation while the read is in flight: the reply is returned but not kept', async () => {
    const { near, engine, asEngine } = await setup();
    const read = near.get(asEngine, 'k');
    near.invalidate('k');
    engine.reply('old', -1);
    expect(await read).toBe('old');
    expect(near.stats().size).toBe(0);
    const again = near.get(asEngine, 'k');
    engine.reply('new', -1);
    expect(await again).toBe('new');
    expect(await near.get(asEngine, 'k')).toBe('new');
  });

  it('an invalidation marks every reader in flight, and only those', async () => {
    const { near, engine, asEngine } = await setup();
    const first = near.get(asEngine, 'k');
    const second = near.get(asEngine, 'k');
    near.invalidate('k');
    const third = near.get(asEngine, 'k');
    engine.reply('old', -1);
    engine.reply('old', -1);
    await Promise.all([first, second]);
    expect(near.stats().size).toBe(0);
    engine.reply('new', -1);
    expect(await third).toBe('new');
    expect(near.stats().size).toBe(1);
  });

  it('an own write while the read is in flight: not kept', async () => {
    const { near, engine, asEngine } = await setup();
    const read = near.get(asEngine, 'k');
    let settle: () => void = () => {};
    const write = near.written(['k'], new Promise<void>((r) => (settle = r)));
    engine.reply('old', -1);
    await read;
    expect(near.stats().size).toBe(0);
    settle();
    await write;
  });

  it("PTTL of a held key is answered from memory, never above the server's (issue 20)", async () => {
    const { near, engine, asEngine } = await setup();
    expect(near.pttl('k')).toBeUndefined(); // not held: ask the server
    const read = near.get(asEngine, 'k');
    engine.reply('v', 5000);
    await read;
    const left = near.pttl('k') as number;
    expect(left).toBeGreaterThan(4000);
    expect(left).toBeLessThanOrEqual(5000);
    const persistent = near.get(asEngine, 'p');
    engine.reply('w', -1);
    await persistent;
    expect(near.pttl('p')).toBe(-1);
    const missing = near.get(asEngine, 'm');
    engine.reply(null, -2);
    await missing;
    expect(near.pttl('m')).toBe(-2);
    near.invalidate('k');
    expect(near.pttl('k')).toBeUndefined();
    expect(engine.calls).toBe(6); // three GET + PTTL pairs, nothing more
  });

  it('a reset (lost connection) while the read is in flight: not kept', async () => {
    const { near, engine, asEngine } = await setup();
    const read = near.get(asEngine, 'k');
    near.reset();
    engine.reply('old', -1);
    await read;
    expect(near.stats().size).toBe(0);
  });

  it('a key written or deleted between GET and PTTL is not kept', async () => {
    const { near, engine, asEngine } = await setup();
    const read = near.get(asEngine, 'k');
    engine.reply('v', -2);
    await read;
    const missing = near.get(asEngine, 'm');
    engine.reply(null, 5000);
    await missing;
    expect(near.stats().size).toBe(0);
  });

  it('entries expire with the PTTL read with them, and with ttlMs', async () => {
    const { near, engine, asEngine } = await setup(120);
    const short = near.get(asEngine, 'short');
    engine.reply('s', 40);
    const long = near.get(asEngine, 'long');
    engine.reply('l', -1);
    await Promise.all([short, long]);
    expect(await near.get(asEngine, 'short')).toBe('s');
    await new Promise((r) => setTimeout(r, 60));
    const calls = engine.calls;
    void near.get(asEngine, 'short');
    expect(engine.calls).toBe(calls + 2); // a miss: GET and PTTL sent
    expect(await near.get(asEngine, 'long')).toBe('l');
    await new Promise((r) => setTimeout(r, 80));
    void near.get(asEngine, 'long');
    expect(engine.calls).toBe(calls + 4);
  });

  it('a missing key is remembered as missing until invalidated', async () => {
    const { near, engine, asEngine } = await setup();
    const read = near.get(asEngine, 'none');
    engine.reply(null, -2);
    expect(await read).toBeNull();
    expect(await near.get(asEngine, 'none')).toBeNull();
    expect(engine.calls).toBe(2);
    near.invalidate('none');
    void near.get(asEngine, 'none');
    expect(engine.calls).toBe(4);
  });
});

describe('near cache values', () => {
  it('hits share one deeply frozen value; a custom codec value that cannot be frozen is decoded each time', async () => {
    const near = new NearCache(
      { maxEntries: 10, maxBytes: undefined, ttlMs: undefined, copyValues: false },
      (raw) => (raw.startsWith('date:') ? { at: new Date(Number(raw.slice(5))) } : JSON.parse(raw)),
    );
    const engine = new ScriptedEngine();
    const asEngine = engine as unknown as Engine;
    near.attach(asEngine);
    await settle();
    onTestFinished(() => near.detach(asEngine));
    const read = near.get(asEngine, 'obj');
    engine.reply('{"a":[1,{"b":2}]}', -1);
    const raw = (await read) as string;
    const first = near.value('obj', raw) as { a: [number, { b: number }] };
    expect(Object.isFrozen(first) && Object.isFrozen(first.a) && Object.isFrozen(first.a[1])).toBe(true);
    expect(near.value('obj', raw)).toBe(first);
    // A string that is not the entry's (the key changed meanwhile) is decoded on its own.
    expect(near.value('obj', '{"a":[]}')).toEqual({ a: [] });

    const dated = near.get(asEngine, 'date');
    engine.reply('date:0', -1);
    const dateRaw = (await dated) as string;
    const one = near.value('date', dateRaw) as { at: Date };
    const two = near.value('date', dateRaw) as { at: Date };
    expect(one).not.toBe(two);
    expect(Object.isFrozen(one)).toBe(false);
    one.at.setTime(5);
    expect((near.value('date', dateRaw) as { at: Date }).at.getTime()).toBe(0);
  });
});

describe('near cache heartbeat', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('serves nothing once the last confirmed PING is older than MAX_SILENCE_MS, and resets on a failed PING', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'performance'] });
    const { near, engine, asEngine } = await setup();
    const read = near.get(asEngine, 'k');
    engine.reply('v', -1);
    await read;
    expect(await near.get(asEngine, 'k')).toBe('v');
    // The server stops answering PINGs (a silent partition): hits stop after MAX_SILENCE_MS.
    engine.ping = () => new Promise(() => {});
    vi.advanceTimersByTime(MAX_SILENCE_MS - HEARTBEAT_MS);
    expect(await near.get(asEngine, 'k')).toBe('v');
    vi.advanceTimersByTime(2 * HEARTBEAT_MS);
    const calls = engine.calls;
    void near.get(asEngine, 'k');
    expect(engine.calls).toBe(calls + 2);
    expect(near.stats().hits).toBe(2);
  });

  it('a failed PING resets the cache', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const { near, engine, asEngine } = await setup();
    const read = near.get(asEngine, 'k');
    engine.reply('v', -1);
    await read;
    expect(near.stats().size).toBe(1);
    engine.ping = () => Promise.reject(new Error('connection lost'));
    vi.advanceTimersByTime(HEARTBEAT_MS);
    await settle();
    expect(near.stats().size).toBe(0);
  });
});

describe('near cache values of custom codecs', () => {
  it('a cyclic decoded value is frozen once and shared', async () => {
    const near = new NearCache(
      { maxEntries: 10, maxBytes: undefined, ttlMs: undefined, copyValues: false },
      () => {
        const node: { self?: unknown; list: unknown[] } = { list: [] };
        node.self = node;
        node.list.push(node);
        return node;
      },
    );
    const engine = new ScriptedEngine();
    const asEngine = engine as unknown as Engine;
    near.attach(asEngine);
    await settle();
    onTestFinished(() => near.detach(asEngine));
    const read = near.get(asEngine, 'cycle');
    engine.reply('x', -1);
    const raw = (await read) as string;
    const value = near.value('cycle', raw) as { self: unknown };
    expect(value.self).toBe(value);
    expect(Object.isFrozen(value)).toBe(true);
    expect(near.value('cycle', raw)).toBe(value);
  });
});
