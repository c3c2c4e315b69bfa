/**
 * The near cache's race rules, with a scripted engine whose replies the test releases one by one: a read
 * whose key is invalidated (by the server or an own write), or whose cache is reset, while it is in flight
 * never fills the cache; entries expire with the key's PTTL and the `ttlMs` bound.
 */
import { describe, expect, it } from 'vitest';
import type { Engine } from '../src/engines/engine.js';
import { NearCache } from '../src/near-cache/near-cache.js';

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

function setup(ttlMs?: number) {
  const near = new NearCache({ maxEntries: 100, maxBytes: undefined, ttlMs });
  const engine = new ScriptedEngine();
  return { near, engine, asEngine: engine as unknown as Engine };
}

describe('near cache races', () => {
  it('fills on a plain miss; the next read is a hit without I/O', async () => {
    const { near, engine, asEngine } = setup();
    const read = near.get(asEngine, 'k');
    engine.reply('v', -1);
    expect(await read).toBe('v');
    expect(await near.get(asEngine, 'k')).toBe('v');
    expect(engine.calls).toBe(2);
    expect(near.stats()).toMatchObject({ hits: 1, misses: 1, size: 1 });
  });

  it('a server invalidation while the read is in flight: the reply is returned but not kept', async () => {
    const { near, engine, asEngine } = setup();
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
    const { near, engine, asEngine } = setup();
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
    const { near, engine, asEngine } = setup();
    const read = near.get(asEngine, 'k');
    let settle: () => void = () => {};
    const write = near.written(['k'], new Promise<void>((r) => (settle = r)));
    engine.reply('old', -1);
    await read;
    expect(near.stats().size).toBe(0);
    settle();
    await write;
  });

  it('a reset (lost connection) while the read is in flight: not kept', async () => {
    const { near, engine, asEngine } = setup();
    const read = near.get(asEngine, 'k');
    near.reset();
    engine.reply('old', -1);
    await read;
    expect(near.stats().size).toBe(0);
  });

  it('a key written or deleted between GET and PTTL is not kept', async () => {
    const { near, engine, asEngine } = setup();
    const read = near.get(asEngine, 'k');
    engine.reply('v', -2);
    await read;
    const missing = near.get(asEngine, 'm');
    engine.reply(null, 5000);
    await missing;
    expect(near.stats().size).toBe(0);
  });

  it('entries expire with the PTTL read with them, and with ttlMs', async () => {
    const { near, engine, asEngine } = setup(120);
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
    const { near, engine, asEngine } = setup();
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
