/**
 * Tracing through `node:diagnostics_channel`: every operation that goes to the server publishes
 * start/end/asyncStart/asyncEnd (and error) on `peak-cache:operation` with its name, tenant, key count and
 * hits/misses, never a value, a key name or a password; one answered from memory (a near-cache hit)
 * publishes asyncEnd only, complete, with `memory: true`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { tracingChannel } from 'node:diagnostics_channel';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { answeredSlot, isTraced, traceAnswered } from '../src/diagnostics.js';
import {
  CacheAuthError,
  CacheConnectionError,
  OPERATION_CHANNEL,
  type OperationContext,
} from '../src/index.js';
import { ClientPool } from './helpers/clients.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

const PASSWORD = 'diag-secret-pw';
const VALUE = 'diag-secret-value';
const KEY = 'diag-key-name';

type EventName = 'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error';
interface Seen {
  readonly event: EventName;
  readonly ctx: OperationContext;
  /** A copy of the context as it was when the event was published. */
  readonly snapshot: Record<string, unknown>;
}

const channel = tracingChannel<unknown, OperationContext>(OPERATION_CHANNEL);

/** Subscribe to every event of the channel; returns the recorded events and an unsubscribe. */
function record(): { events: Seen[]; stop: () => void } {
  const events: Seen[] = [];
  const make = (event: EventName) => (message: unknown) => {
    const ctx = message as OperationContext;
    events.push({ event, ctx, snapshot: { ...ctx } });
  };
  const handlers = {
    start: make('start'),
    end: make('end'),
    asyncStart: make('asyncStart'),
    asyncEnd: make('asyncEnd'),
    error: make('error'),
  };
  channel.subscribe(handlers);
  return { events, stop: () => channel.unsubscribe(handlers) };
}

let server: RedisServer;
const pool = new ClientPool();
let stopRecording: (() => void) | undefined;

beforeAll(async () => {
  server = await startRedis({ password: PASSWORD });
});

afterEach(() => {
  stopRecording?.();
  stopRecording = undefined;
});

afterAll(async () => {
  await pool.closeAll();
  await server?.stop();
});

function start(): Seen[] {
  const { events, stop } = record();
  stopRecording = stop;
  return events;
}

function redisClient(tenant = 'diag', password = PASSWORD) {
  return pool.open({
    connectionConfig: { url: `redis://:${password}@127.0.0.1:${server.port}/2`, tenant },
    debugLogs: false,
    env: {},
  });
}

describe('diagnostics channel peak-cache:operation', () => {
  it('has no subscriber by default, so operations build no context', () => {
    expect(isTraced()).toBe(false);
    const { stop } = record();
    expect(isTraced()).toBe(true);
    stop();
    expect(isTraced()).toBe(false);
  });

  it('counts a subscriber to any one of the five channels', () => {
    const noop = () => {};
    channel.error.subscribe(noop);
    expect(isTraced()).toBe(true);
    channel.error.unsubscribe(noop);
    expect(isTraced()).toBe(false);
  });

  it('publishes start, end, asyncStart, asyncEnd once per operation, on one context', async () => {
    const cache = redisClient();
    await cache.ping();
    const events = start();
    await cache.set(KEY, VALUE, 60);
    expect(events.map((e) => e.event)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
    const ctx = events[0]?.ctx;
    expect(events.every((e) => e.ctx === ctx)).toBe(true);
    expect(events[3]?.snapshot).toEqual({
      operation: 'set',
      tenant: 'diag',
      keys: 1,
      server: { system: 'redis', cluster: false, address: '127.0.0.1', port: server.port, database: 2 },
    });
  });

  it('names the operation, tenant and key count of every operation, and hits and misses of reads', async () => {
    const cache = redisClient();
    await cache.set('a', 1);
    await cache.set('b', 2);
    const events = start();
    await cache.get('a');
    await cache.get('missing');
    await cache.mget('a', 'missing', 'b');
    await cache.mset({ x: 1, y: 2 });
    await cache.exists('a', 'b', 'c', 'd');
    await cache.delete('x', 'y');
    await cache.expire('a', 10);
    await cache.ttl('a');
    await cache.flushByPattern('zz*');
    const ends = events.filter((e) => e.event === 'asyncEnd').map((e) => e.snapshot);
    const pick = ({ operation, tenant, keys, hits, misses }: Record<string, unknown>) => ({
      operation,
      tenant,
      keys,
      hits,
      misses,
    });
    expect(ends.map(pick)).toEqual([
      { operation: 'get', tenant: 'diag', keys: 1, hits: 1, misses: 0 },
      { operation: 'get', tenant: 'diag', keys: 1, hits: 0, misses: 1 },
      { operation: 'mget', tenant: 'diag', keys: 3, hits: 2, misses: 1 },
      { operation: 'mset', tenant: 'diag', keys: 2, hits: undefined, misses: undefined },
      { operation: 'exists', tenant: 'diag', keys: 4, hits: undefined, misses: undefined },
      { operation: 'delete', tenant: 'diag', keys: 2, hits: undefined, misses: undefined },
      { operation: 'expire', tenant: 'diag', keys: 1, hits: undefined, misses: undefined },
      { operation: 'ttl', tenant: 'diag', keys: 1, hits: undefined, misses: undefined },
      { operation: 'flushByPattern', tenant: 'diag', keys: 0, hits: undefined, misses: undefined },
    ]);
  });

  it('never carries a value, a key name or the password', async () => {
    const cache = redisClient('diag-secrets');
    const events = start();
    await cache.set(KEY, VALUE);
    await cache.get(KEY);
    await cache.mget(KEY, `${KEY}-2`);
    await cache.mset({ [KEY]: VALUE });
    await cache.delete(KEY);
    expect(events.length).toBeGreaterThan(0);
    for (const { ctx } of events) {
      const text = JSON.stringify(ctx);
      expect(text).not.toContain(VALUE);
      expect(text).not.toContain(KEY);
      expect(text).not.toContain(PASSWORD);
    }
  });

  it('publishes error with the CacheError (no password in it) when an operation fails', async () => {
    const cache = redisClient('diag', 'wrong-pw-for-diag');
    const events = start();
    const failure = await cache.get(KEY).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(CacheAuthError);
    expect(events.map((e) => e.event)).toEqual(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
    const ctx = events[0]?.ctx;
    expect(ctx?.error).toBe(failure);
    expect(ctx?.operation).toBe('get');
    expect(ctx?.hits).toBeUndefined();
    expect(JSON.stringify(ctx)).not.toContain('wrong-pw-for-diag');
    expect((failure as Error).message).not.toContain('wrong-pw-for-diag');
  });

  it('publishes the failures of a closed client too', async () => {
    const cache = redisClient();
    await cache.close();
    const events = start();
    await expect(cache.get('a')).rejects.toBeInstanceOf(CacheConnectionError);
    expect(events.map((e) => e.event)).toEqual(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
  });

  it('knows the tenant and server at start once connected, the tenant only on memory://', async () => {
    const cache = pool.open({ connectionConfig: { url: 'memory://', tenant: 'mem' }, env: {} });
    const events = start();
    await cache.get('a');
    await cache.get('a');
    const starts = events.filter((e) => e.event === 'start').map((e) => e.snapshot);
    expect(starts[0]).toMatchObject({ operation: 'get', tenant: undefined, server: undefined });
    expect(starts[1]).toMatchObject({
      operation: 'get',
      tenant: 'mem',
      server: { system: 'memory', cluster: false },
    });
  });

  it('publishes a near-cache hit (answered from memory) as one asyncEnd: complete, memory: true, no store', async () => {
    const cache = pool.open({
      connectionConfig: { url: `redis://:${PASSWORD}@127.0.0.1:${server.port}/2`, tenant: 'diag-near' },
      debugLogs: false,
      env: {},
      nearCache: { maxEntries: 10 },
    });
    await cache.set('n', 'v');
    await cache.get('n');
    await cache.get('n');
    await cache.get('none');
    await cache.get('none'); // held as missing: a near hit of a miss
    const held = cache.stats().nearCache?.hits ?? 0;
    const events = start();
    const als = new AsyncLocalStorage<string>();
    let inside: string | undefined;
    const onEnd = () => {
      inside = als.getStore();
    };
    channel.start.bindStore(als, (message) => (message as OperationContext).operation);
    channel.asyncEnd.subscribe(onEnd);
    try {
      // No store is entered: the asyncEnd runs in the caller's context, before get returns.
      const answer = als.run('caller', () => cache.get('n'));
      expect(inside).toBe('caller');
      expect(await answer).toBe('v');
    } finally {
      channel.asyncEnd.unsubscribe(onEnd);
      channel.start.unbindStore(als);
    }
    expect(await cache.get('none', 'fallback')).toBe('fallback');
    expect(cache.stats().nearCache?.hits).toBe(held + 2);
    expect(events.map((e) => e.event)).toEqual(['asyncEnd', 'asyncEnd']);
    expect(events[1]?.ctx).not.toBe(events[0]?.ctx);
    const near = { system: 'redis', cluster: false, address: '127.0.0.1', port: server.port, database: 2 };
    expect(events[0]?.snapshot).toEqual({
      operation: 'get',
      tenant: 'diag-near',
      server: near,
      keys: 1,
      hits: 1,
      misses: 0,
      memory: true,
    });
    expect(events[1]?.snapshot).toEqual({
      operation: 'get',
      tenant: 'diag-near',
      server: near,
      keys: 1,
      hits: 0,
      misses: 1,
      memory: true,
    });
    // A get that goes to the server (a key not held) keeps every event, with no memory field.
    events.length = 0;
    expect(await cache.get('other')).toBeNull();
    expect(events.map((e) => e.event)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
    expect(events.every((e) => e.ctx === events[0]?.ctx)).toBe(true);
    expect(events[3]?.snapshot).toEqual({
      operation: 'get',
      tenant: 'diag-near',
      server: near,
      keys: 1,
      hits: 0,
      misses: 1,
    });
    // An mget of keys all held is answered from memory too: one asyncEnd, counted once.
    const before = cache.stats();
    events.length = 0;
    expect(await cache.mget('n', 'none', 'other')).toEqual(['v', null, null]);
    expect(events.map((e) => [e.event, e.snapshot])).toEqual([
      [
        'asyncEnd',
        { operation: 'mget', tenant: 'diag-near', server: near, keys: 3, hits: 1, misses: 2, memory: true },
      ],
    ]);
    const after = cache.stats();
    expect(after.operations.mget).toMatchObject({
      calls: before.operations.mget.calls + 1,
      hits: before.operations.mget.hits + 1,
      misses: before.operations.mget.misses + 2,
    });
    expect((after.nearCache?.hits ?? 0) - (before.nearCache?.hits ?? 0)).toBe(3);
    // One key not held: the whole mget goes to the server, with every event.
    events.length = 0;
    expect(await cache.mget('n', 'third')).toEqual(['v', null]);
    expect(events.map((e) => e.event)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
  });

  it('traceAnswered publishes asyncEnd only, for any operation name, and nothing without its subscriber', () => {
    const events = start();
    const conn = { tenant: 't', server: { system: 'memory' as const, cluster: false } };
    const slot = answeredSlot();
    traceAnswered('cacheResult', conn, 1, 1, 0, slot);
    traceAnswered('getOrSet', undefined, 1, 0, 1, slot);
    // The same content again: the same frozen context; another content: another one.
    traceAnswered('getOrSet', undefined, 1, 0, 1, slot);
    traceAnswered('getOrSet', conn, 1, 0, 1, slot);
    expect(events[2]?.ctx).toBe(events[1]?.ctx);
    expect(events[3]?.ctx).not.toBe(events[2]?.ctx);
    expect(events[0]?.ctx).not.toBe(events[1]?.ctx);
    expect(Object.isFrozen(events[0]?.ctx)).toBe(true);
    expect(events.slice(0, 2).map((e) => [e.event, e.snapshot])).toEqual([
      [
        'asyncEnd',
        {
          operation: 'cacheResult',
          tenant: 't',
          server: conn.server,
          keys: 1,
          hits: 1,
          misses: 0,
          memory: true,
        },
      ],
      [
        'asyncEnd',
        {
          operation: 'getOrSet',
          tenant: undefined,
          server: undefined,
          keys: 1,
          hits: 0,
          misses: 1,
          memory: true,
        },
      ],
    ]);
    stopRecording?.();
    stopRecording = undefined;
    const starts: unknown[] = [];
    const onStart = (message: unknown) => starts.push(message);
    channel.start.subscribe(onStart);
    try {
      expect(isTraced()).toBe(true);
      traceAnswered('get', conn, 1, 1, 0, answeredSlot());
    } finally {
      channel.start.unsubscribe(onStart);
    }
    expect(starts).toEqual([]);
  });

  it('traces near-cache hits to a subscriber of asyncEnd alone (the other channels inactive)', async () => {
    const cache = pool.open({
      connectionConfig: { url: `redis://:${PASSWORD}@127.0.0.1:${server.port}/2`, tenant: 'diag-near-end' },
      debugLogs: false,
      env: {},
      nearCache: { maxEntries: 10 },
    });
    await cache.set('n', 'v');
    await cache.get('n');
    await cache.get('n');
    const held = cache.stats().nearCache?.hits ?? 0;
    const ends: Record<string, unknown>[] = [];
    const onEnd = (message: unknown) => {
      ends.push({ ...(message as OperationContext) });
    };
    channel.asyncEnd.subscribe(onEnd);
    try {
      expect(isTraced()).toBe(true);
      expect(await cache.get('n')).toBe('v');
    } finally {
      channel.asyncEnd.unsubscribe(onEnd);
    }
    expect(cache.stats().nearCache?.hits).toBe(held + 1);
    expect(ends).toEqual([
      expect.objectContaining({
        operation: 'get',
        tenant: 'diag-near-end',
        keys: 1,
        hits: 1,
        misses: 0,
        memory: true,
      }),
    ]);
  });

  it('runs the operation inside stores bound to the start channel (AsyncLocalStorage)', async () => {
    const cache = pool.open({ connectionConfig: { url: 'memory://', tenant: 'als' }, env: {} });
    const als = new AsyncLocalStorage<string>();
    let inside: string | undefined;
    const onEnd = () => {
      inside = als.getStore();
    };
    channel.start.bindStore(als, (message) => (message as OperationContext).operation);
    channel.asyncEnd.subscribe(onEnd);
    try {
      let after: string | undefined;
      await cache.mget('a').then(() => {
        after = als.getStore();
      });
      expect(inside).toBe('mget');
      // The caller's continuation runs in the caller's context again.
      expect(after).toBeUndefined();
    } finally {
      channel.asyncEnd.unsubscribe(onEnd);
      channel.start.unbindStore(als);
    }
  });
});
