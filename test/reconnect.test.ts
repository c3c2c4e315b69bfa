/**
 * Recovery after an outage (issue 13): the first reconnect attempt is immediate, then 50 ms doubling up to
 * 500 ms, so a client finds a server that is back within about half a second, however long it was gone.
 * The outage is exact: a TCP gate in front of a real redis-server drops every connection and refuses new
 * ones (as a dead server does) for 0.5 s or 2 s, then lets them through again.
 */
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RECONNECT_MAX_DELAY_MS, reconnectDelay } from '../src/engines/redis.js';
import { CacheClient, CacheConnectionError } from '../src/index.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP gate on a fixed port: `close()` drops every connection and refuses new ones; `open()` again. */
interface Gate {
  readonly port: number;
  open(): Promise<void>;
  close(): Promise<void>;
}

async function startGate(target: number): Promise<Gate> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const open = async () => {
    server = createServer((client) => {
      const upstream = connect(target, '127.0.0.1');
      client.pipe(upstream).pipe(client);
      const end = () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', end).on('error', end);
      }
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  };
  await open();
  return {
    port,
    open,
    async close() {
      const closing = server;
      server = undefined;
      if (!closing) return;
      const closed = once(closing, 'close');
      closing.close();
      for (const s of sockets) s.destroy();
      sockets.clear();
      await closed;
    },
  };
}

let redis: RedisServer;
let gate: Gate;
const clients: CacheClient[] = [];

beforeAll(async () => {
  redis = await startRedis();
  gate = await startGate(redis.port);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await gate?.close();
  await redis?.stop();
});

describe('reconnect delay', () => {
  it('is 0 for the first attempt, then 50 ms doubling, capped at 500 ms (+-20 %)', () => {
    expect(reconnectDelay(0)).toBe(0);
    for (let i = 0; i < 200; i++) {
      for (const [retries, base] of [
        [1, 50],
        [2, 100],
        [3, 200],
        [4, 400],
        [5, 500],
        [12, 500],
      ] as const) {
        const d = reconnectDelay(retries);
        expect(d).toBeGreaterThanOrEqual(Math.floor(base * 0.8));
        expect(d).toBeLessThanOrEqual(Math.ceil(base * 1.2));
      }
    }
    expect(RECONNECT_MAX_DELAY_MS).toBe(500);
  });
});

describe('recovery after an outage (one server)', () => {
  for (const outageMs of [500, 2000]) {
    it(`a ${outageMs} ms outage: calls fail fast meanwhile, and succeed again within ~0.5 s of the server's return`, async () => {
      const cache = new CacheClient({
        connectionConfig: { url: `redis://127.0.0.1:${gate.port}`, tenant: 'reconnect', timeoutMs: 1000 },
        env: {},
      });
      clients.push(cache);
      await cache.set('k', 'v');
      await gate.close();
      const during: unknown[] = [];
      const cutAt = Date.now();
      while (Date.now() - cutAt < outageMs) {
        const start = Date.now();
        during.push(await cache.get('k').catch((err: unknown) => err));
        expect(Date.now() - start).toBeLessThan(200); // fail fast, no queueing
        await sleep(20);
      }
      await gate.open();
      const backAt = Date.now();
      let value: unknown;
      while (Date.now() - backAt < 5000) {
        value = await cache.get('k').catch((err: unknown) => err);
        if (value === 'v') break;
        await sleep(5);
      }
      const recoveryMs = Date.now() - backAt;
      console.info(
        `reconnect: ${outageMs} ms outage, calls succeed again ${recoveryMs} ms after the server is back`,
      );
      expect(during.length).toBeGreaterThan(0);
      expect(during.every((e) => e instanceof CacheConnectionError)).toBe(true);
      expect(value).toBe('v');
      // The longest wait between attempts (500 ms + 20 %), plus the connection and a margin for a busy machine.
      expect(recoveryMs).toBeLessThan(RECONNECT_MAX_DELAY_MS * 1.2 + 400);
    });
  }
});
