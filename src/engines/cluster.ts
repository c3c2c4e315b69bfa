/**
 * The Redis Cluster engine: node-redis 6's cluster client (topology discovery, MOVED/ASK redirects,
 * topology refresh) under the same string-only {@link Engine} contract as the single-node engine, with
 * the same key layout (no hash tags are added: keys stay byte-identical to Peak's Python client).
 *
 * Multi-key operations are split by hash slot, sent concurrently (node-redis pipelines the commands of
 * one tick on each node connection) and merged in the caller's order:
 *
 * - `mget`: one `MGET` per slot; every value lands at its key's position.
 * - `mset`: without a TTL, one `MSET` per slot; with a TTL, per slot a `MULTI` of `SET ... EX` (a single
 *   `SET ... EX` for a slot with one key), so no key is ever visible without its TTL. Atomic per slot only.
 * - `unlink` / `exists`: one command per slot, counts summed (repeats of a key share a slot, so Redis
 *   counts them exactly as on one server).
 * - `scan`: walks every primary in turn with its own cursor (never one random node).
 *
 * Tuning matches {@link RedisEngine}: no per-command timer (`commandOptions: { timeout: 0 }`), calls fail
 * fast while a node is disconnected (`disableOfflineQueue`), and hangs are bounded by ONE watchdog timer
 * per engine that tracks, node by node, the commands outstanding and the time of the last reply. When a
 * node has commands outstanding and has not replied for `timeoutMs` (a frozen or partitioned node), its
 * commands reject with {@link CacheTimeoutError}, its connection is replaced, and the topology is
 * refreshed without it, so a failed-over primary's slots move to its replacement.
 *
 * @module
 */
import {
  ClientClosedError,
  ClientOfflineError,
  createCluster,
  ErrorReply,
  RedisClient,
  type RedisClusterType,
  RootNodesUnavailableError,
} from '@redis/client';
import { CacheConnectionError, CacheError, CacheTimeoutError, CacheValidationError } from '../errors.js';
import type { Engine } from './engine.js';
import { reconnectDelay } from './redis.js';
import { type ErrorContext, isAuthFailure, toCacheError } from './redis-errors.js';
import { groupBySlot, keySlot } from './slot.js';
import { startWatchdog, withDeadline } from './watchdog.js';

/** Settings of a cluster engine. */
export interface ClusterEngineOptions {
  /**
   * Seed node URLs (`redis://` or `rediss://`), at least one. The scheme (TLS) and the credentials of the
   * first apply to every node of the cluster, discovered ones included.
   */
  readonly nodes: readonly string[];
  /** Longest wait for a reply from a node while it has commands outstanding, in milliseconds. */
  readonly timeoutMs: number;
  /** Longest wait to discover the cluster and to connect to a node, in milliseconds. */
  readonly connectTimeoutMs: number;
  /** Most commands waiting on one node connection; more reject at once. */
  readonly maxQueueLength: number;
  /** TCP keep-alive initial delay in milliseconds, or `false` to disable. */
  readonly keepAliveMs: number | false;
}

type Cluster = RedisClusterType;
type Reply = unknown;
type Values = (string | null)[];
type Fail = (err: CacheError) => void;

/** Commands outstanding on one node (by `host:port`) and when it last replied. */
interface NodeState {
  lastProgress: number;
  readonly pending: Set<Fail>;
}

/** Pseudo-address for commands whose slot has no known owner yet. */
const UNROUTED = 'cluster';
/** Refresh the topology this long after a node starts reconnecting (node-redis default: 5 s). */
const REFRESH_ON_RECONNECT_MS = 1000;
/** At most one topology refresh triggered by failing calls per this many milliseconds. */
const REFRESH_MIN_INTERVAL_MS = 300;
/** A redirect: the command did not run on that node. */
const REDIRECT_REPLY = /^(MOVED|ASK) /;
/** Per-command options: no per-command timer (the watchdog bounds hangs). */
const NO_TIMEOUT = { timeout: 0 } as const;
/** Replies that say the topology changed or is changing: refresh it. */
const TOPOLOGY_REPLY = /^(CLUSTERDOWN|TRYAGAIN|MASTERDOWN|READONLY|MOVED|ASK)\b/;

interface Seed {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  readonly username: string | undefined;
  readonly password: string | undefined;
}

/**
 * Parse and check the seed URLs of a cluster: `redis://` or `rediss://`, database 0, and one scheme and
 * one set of credentials for all (they apply to every node). Messages never repeat a URL.
 * @param nameOf - the option that gave the i-th URL, for messages.
 * @throws {CacheValidationError} naming the option.
 */
export function parseSeeds(
  urls: readonly string[],
  nameOf: (index: number) => string = (i) => `connectionConfig.nodes[${i}]`,
): Seed[] {
  if (urls.length === 0) throw new CacheValidationError('A Redis Cluster needs at least one seed node');
  const seeds: Seed[] = [];
  const seen = new Set<string>();
  for (const [i, url] of urls.entries()) {
    let parsed: ReturnType<typeof RedisClient.parseURL>;
    try {
      parsed = RedisClient.parseURL(url);
    } catch {
      throw new CacheValidationError(
        `\`${nameOf(i)}\` is not a valid redis:// or rediss:// URL (Redis Cluster needs a Redis server)`,
      );
    }
    if (parsed.database !== undefined && parsed.database !== 0) {
      throw new CacheValidationError(
        `\`${nameOf(i)}\` selects database ${parsed.database}; Redis Cluster has database 0 only`,
      );
    }
    const socket = parsed.socket as { host?: string; port?: number; tls?: boolean };
    const seed: Seed = {
      host: socket.host ?? '127.0.0.1',
      port: socket.port ?? 6379,
      tls: socket.tls === true,
      username: parsed.username,
      password: parsed.password,
    };
    const first = seeds[0];
    if (
      first !== undefined &&
      (first.tls !== seed.tls || first.username !== seed.username || first.password !== seed.password)
    ) {
      throw new CacheValidationError(
        `\`${nameOf(i)}\` must use the same scheme (redis:// or rediss://) and credentials as the first node`,
      );
    }
    const address = `${seed.host}:${seed.port}`;
    if (!seen.has(address)) {
      seen.add(address);
      seeds.push(seed);
    }
  }
  return seeds;
}

/** Redis Cluster engine over node-redis's cluster client. */
export class ClusterEngine implements Engine {
  readonly #options: ClusterEngineOptions;
  readonly #seeds: readonly Seed[];
  readonly #ctx: ErrorContext;
  #cluster: Cluster | undefined;
  #connecting: Promise<Cluster> | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Engine calls in progress: `close()` lets them finish first. */
  #active = 0;
  #onIdle: (() => void) | undefined;
  /** Commands outstanding, node by node (`host:port`). */
  readonly #nodes = new Map<string, NodeState>();
  #watchdog: NodeJS.Timeout | undefined;
  #lastRefresh = 0;
  /** The last credentials rejection seen while (re)connecting a node. */
  #authFailure: Error | undefined;

  /** @param options - cluster settings; no I/O happens until the first command. */
  constructor(options: ClusterEngineOptions) {
    this.#options = options;
    this.#seeds = parseSeeds(options.nodes);
    const targets = this.#seeds.map((s) => `${s.host}:${s.port}`);
    this.#ctx = { target: `cluster ${targets.join(',')}`, timeoutMs: options.timeoutMs };
  }

  #createCluster(): Cluster {
    const { connectTimeoutMs, keepAliveMs, maxQueueLength } = this.#options;
    const first = this.#seeds[0] as Seed;
    const cluster = createCluster({
      rootNodes: this.#seeds.map((s) => ({ socket: { host: s.host, port: s.port } })),
      // Applied to every node connection, discovered nodes included.
      defaults: {
        ...(first.username === undefined ? {} : { username: first.username }),
        ...(first.password === undefined ? {} : { password: first.password }),
        disableOfflineQueue: true,
        commandsQueueMaxLength: maxQueueLength,
        socket: {
          ...(first.tls ? { tls: true as const } : {}),
          connectTimeout: connectTimeoutMs,
          ...(keepAliveMs === false
            ? { keepAlive: false }
            : { keepAlive: true, keepAliveInitialDelay: keepAliveMs }),
          // Reconnect with back-off while calls to that node fail fast; stop on rejected credentials
          // (reported to callers) and once closed. A node that leaves the topology is dropped by
          // node-redis, which stops its reconnects.
          reconnectStrategy: (retries: number, cause: Error) => {
            if (this.#closed) return false;
            if (isAuthFailure(cause)) {
              this.#authFailure = cause;
              return false;
            }
            return reconnectDelay(retries);
          },
        },
      },
      // No per-command timer: the watchdog bounds hangs with one timer per engine.
      commandOptions: { timeout: 0 },
      // Connect to a node on first use: one unreachable node does not stop the others from serving.
      minimizeConnections: true,
      useReplicas: false,
      topologyRefreshOnReconnectionAttemptStrategy: REFRESH_ON_RECONNECT_MS,
    }) as unknown as Cluster;
    // Discovery failures are emitted as 'error' (they reach callers through their commands); node
    // socket errors as 'node-error'.
    cluster.on('error', () => {});
    cluster.on('node-error', () => {});
    cluster.on('node-ready', () => {
      this.#authFailure = undefined;
    });
    return cluster;
  }

  #connect(): Promise<Cluster> {
    if (this.#closed) return Promise.reject(new CacheConnectionError('the client is closed'));
    this.#connecting ??= this.#openCluster().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #openCluster(): Promise<Cluster> {
    const cluster = this.#createCluster();
    let discoveryError: unknown;
    const onError = (err: unknown) => {
      discoveryError = err;
    };
    cluster.on('error', onError);
    try {
      await withDeadline(cluster.connect(), this.#options.connectTimeoutMs, () => {
        cluster.destroy();
        return new CacheTimeoutError(
          `could not discover ${this.#ctx.target} within ${this.#options.connectTimeoutMs} ms`,
        );
      });
    } catch (err) {
      if (cluster.isOpen) cluster.destroy();
      // "All the root nodes are unavailable" hides why: report the last discovery failure instead.
      throw toCacheError(
        err instanceof RootNodesUnavailableError && discoveryError !== undefined ? discoveryError : err,
        this.#ctx,
      );
    } finally {
      cluster.off('error', onError);
    }
    if (this.#closed) {
      cluster.destroy();
      throw new CacheConnectionError('the client is closed');
    }
    this.#cluster = cluster;
    this.#authFailure = undefined;
    this.#startWatchdog();
    return cluster;
  }

  #startWatchdog(): void {
    if (this.#watchdog) return;
    const { timeoutMs } = this.#options;
    // Fine-grained ticks (the check is a walk over a handful of nodes): calls reject within ~5% of
    // timeoutMs after it elapses.
    this.#watchdog = startWatchdog(
      Math.max(10, Math.floor(timeoutMs / 20)),
      (now) => {
        for (const [address, node] of this.#nodes) {
          if (node.pending.size > 0 && now - node.lastProgress > timeoutMs) this.#onStall(address, node);
        }
      },
      (now) => {
        for (const node of this.#nodes.values()) node.lastProgress = now;
      },
    );
  }

  /** A node has not replied for `timeoutMs`: reject its commands, replace its connection, refresh. */
  #onStall(address: string, node: NodeState): void {
    const failures = [...node.pending];
    node.pending.clear();
    node.lastProgress = Date.now();
    for (const fail of failures) {
      fail(new CacheTimeoutError(`${address} did not reply within ${this.#options.timeoutMs} ms`));
    }
    const cluster = this.#cluster;
    if (!cluster) return;
    this.#detachNode(cluster, address, true);
    this.#refresh(cluster, address, true);
  }

  /**
   * Forget a node's connection so the next command opens a new one: when `force` (it stopped replying),
   * or when node-redis gave up on it (closed after rejected credentials).
   */
  #detachNode(cluster: Cluster, address: string, force: boolean): void {
    const node = cluster.nodeByAddress.get(address);
    const client = node?.client;
    if (node === undefined || client === undefined || (!force && client.isOpen)) return;
    delete node.client;
    client.destroy();
  }

  /** Refresh the topology in the background (throttled unless `force`), avoiding `exclude` as source. */
  #refresh(cluster: Cluster, exclude: string | undefined, force = false): void {
    const now = Date.now();
    if (!force && now - this.#lastRefresh < REFRESH_MIN_INTERVAL_MS) return;
    this.#lastRefresh = now;
    const excluded = exclude === undefined || exclude === UNROUTED ? undefined : new Set([exclude]);
    cluster._slots.rediscover(undefined, excluded).catch(() => {});
  }

  /** Map a node-redis failure of a command sent to `address`, reacting to what it says. */
  #failure(err: unknown, address: string): CacheError {
    if (err instanceof CacheError) return err;
    const ctx = { target: address, timeoutMs: this.#options.timeoutMs };
    const cluster = this.#cluster;
    if (err instanceof ErrorReply) {
      if (cluster && TOPOLOGY_REPLY.test(err.message)) this.#refresh(cluster, undefined);
      return toCacheError(err, ctx);
    }
    if (cluster) {
      if (err instanceof ClientClosedError) this.#detachNode(cluster, address, false);
      this.#refresh(cluster, address);
    }
    // A node connection that gave up on rejected credentials reports itself closed or offline.
    const auth = this.#authFailure;
    if (auth !== undefined && (err instanceof ClientClosedError || err instanceof ClientOfflineError)) {
      return toCacheError(auth, ctx);
    }
    return toCacheError(err, ctx);
  }

  /** Run one command (or transaction) on `address`, tracked by the watchdog. */
  #track<T>(address: string, start: () => Promise<T>): Promise<T> {
    let node = this.#nodes.get(address);
    if (node === undefined) {
      node = { lastProgress: 0, pending: new Set() };
      this.#nodes.set(address, node);
    }
    const state = node;
    if (state.pending.size === 0) state.lastProgress = Date.now();
    return new Promise<T>((resolve, reject) => {
      const fail: Fail = reject;
      state.pending.add(fail);
      let sent: Promise<T>;
      try {
        sent = start();
      } catch (err) {
        sent = Promise.reject(err);
      }
      sent.then(
        (reply) => {
          if (!state.pending.delete(fail)) return;
          state.lastProgress = Date.now();
          resolve(reply);
        },
        (err: unknown) => {
          if (!state.pending.delete(fail)) return;
          state.lastProgress = Date.now();
          reject(this.#failure(err, address));
        },
      );
    });
  }

  /** The primary serving `slot`, as `host:port`, per the current topology. */
  #owner(cluster: Cluster, slot: number): string {
    return cluster.slots[slot]?.master.address ?? UNROUTED;
  }

  /**
   * Send a command whose keys all hash to the slot of `key`. Fast path: straight to the connection of
   * the slot's primary (node-redis's routed `sendCommand` costs 3-4x more per command). A redirect
   * (MOVED/ASK: the command did not run) goes through node-redis's routed path, which refreshes the
   * topology or follows the ASK, and sends it again.
   */
  #send(cluster: Cluster, key: string, readonly: boolean, args: string[]): Promise<Reply> {
    const slot = keySlot(key);
    const primary = cluster.slots[slot]?.master;
    if (primary === undefined) {
      this.#refresh(cluster, undefined);
      return Promise.reject(
        new CacheConnectionError(
          `no node of ${this.#ctx.target} serves hash slot ${slot} (refreshing the topology)`,
        ),
      );
    }
    return this.#track(primary.address, () => {
      const client = primary.client;
      const sent =
        client !== undefined && primary.connectPromise === undefined
          ? client.sendCommand(args, NO_TIMEOUT)
          : cluster.nodeClient(primary).then((c) => c.sendCommand(args, NO_TIMEOUT));
      return sent.catch((err: unknown) => {
        if (err instanceof ErrorReply && REDIRECT_REPLY.test(err.message)) {
          return cluster.sendCommand(key, readonly, args);
        }
        throw err;
      });
    });
  }

  /** Send a keyless command to the node at `address` (a primary of the current topology). */
  #sendTo(cluster: Cluster, address: string, args: string[]): Promise<Reply> {
    return this.#track(address, async () => {
      const node = cluster.nodeByAddress.get(address);
      if (node === undefined) {
        throw new CacheConnectionError(`${address} left the cluster during the operation`);
      }
      const client = await cluster.nodeClient(node);
      return client.sendCommand(args, NO_TIMEOUT);
    });
  }

  /** Run an engine call: connect if needed; `close()` waits for calls in progress. */
  async #run<T>(body: (cluster: Cluster) => Promise<T>): Promise<T> {
    if (this.#closed) throw new CacheConnectionError('the client is closed');
    this.#active++;
    try {
      const cluster = this.#cluster ?? (await this.#connect());
      return await body(cluster);
    } catch (err) {
      throw toCacheError(err, this.#ctx);
    } finally {
      if (--this.#active === 0) this.#onIdle?.();
    }
  }

  /**
   * Run `each` for every slot group of `keys` concurrently; wait for all of them (so nothing is still in
   * flight when the call settles), then throw the first failure, if any.
   */
  async #perSlot<T>(
    keys: readonly string[],
    each: (indices: number[], slot: number) => Promise<T>,
  ): Promise<T[]> {
    const groups = groupBySlot(keys);
    if (groups.size === 1) for (const [slot, indices] of groups) return [await each(indices, slot)];
    const settled = await Promise.allSettled([...groups].map(([slot, indices]) => each(indices, slot)));
    const out: T[] = [];
    for (const result of settled) {
      if (result.status === 'rejected') throw result.reason;
      out.push(result.value);
    }
    return out;
  }

  /** {@inheritDoc Engine.get} */
  get(key: string): Promise<string | null> {
    return this.#run((c) => this.#send(c, key, true, ['GET', key])) as Promise<string | null>;
  }

  /** {@inheritDoc Engine.set} */
  async set(key: string, value: string, ttlSeconds?: number): Promise<void> {
    const args =
      ttlSeconds === undefined ? ['SET', key, value] : ['SET', key, value, 'EX', String(ttlSeconds)];
    await this.#run((c) => this.#send(c, key, false, args));
  }

  /** {@inheritDoc Engine.mget} */
  mget(keys: readonly string[]): Promise<(string | null)[]> {
    return this.#run(async (c) => {
      const values: Values = new Array<string | null>(keys.length).fill(null);
      await this.#perSlot(keys, async (indices) => {
        const group = indices.map((i) => keys[i] as string);
        const reply = (await this.#send(c, group[0] as string, true, ['MGET', ...group])) as Values;
        indices.forEach((position, j) => {
          values[position] = reply[j] ?? null;
        });
      });
      return values;
    });
  }

  /** {@inheritDoc Engine.mset} */
  async mset(entries: readonly (readonly [string, string])[], ttlSeconds?: number): Promise<void> {
    const keys = entries.map(([key]) => key);
    const ttl = ttlSeconds === undefined ? undefined : String(ttlSeconds);
    await this.#run((c) =>
      this.#perSlot(keys, async (indices, slot) => {
        const first = keys[indices[0] as number] as string;
        if (ttl === undefined) {
          const args = ['MSET'];
          for (const i of indices) args.push(...(entries[i] as readonly [string, string]));
          return this.#send(c, first, false, args);
        }
        if (indices.length === 1) {
          const [key, value] = entries[indices[0] as number] as readonly [string, string];
          return this.#send(c, key, false, ['SET', key, value, 'EX', ttl]);
        }
        // Several keys in one slot: a MULTI of SET EX, so they appear together, each with its TTL.
        return this.#track(this.#owner(c, slot), async () => {
          const client = await c.getNodeClientForKey(first);
          // A transaction is queued even while the node reconnects; fail fast instead, as commands do.
          if (!client.isReady) throw new ClientOfflineError();
          const multi = c.multi(first);
          for (const i of indices) {
            const [key, value] = entries[i] as readonly [string, string];
            multi.addCommand(key, false, ['SET', key, value, 'EX', ttl]);
          }
          return multi.exec();
        });
      }),
    );
  }

  /** {@inheritDoc Engine.unlink} */
  unlink(keys: readonly string[]): Promise<number> {
    return this.#count('UNLINK', keys);
  }

  /** {@inheritDoc Engine.exists} */
  exists(keys: readonly string[]): Promise<number> {
    return this.#count('EXISTS', keys);
  }

  #count(command: 'UNLINK' | 'EXISTS', keys: readonly string[]): Promise<number> {
    return this.#run(async (c) => {
      const counts = await this.#perSlot(keys, (indices) => {
        const group = indices.map((i) => keys[i] as string);
        const args = [command, ...group];
        return this.#send(c, group[0] as string, command === 'EXISTS', args) as Promise<number>;
      });
      return counts.reduce((sum, n) => sum + n, 0);
    });
  }

  /** {@inheritDoc Engine.expire} */
  async expire(key: string, ttlSeconds: number): Promise<boolean> {
    return (await this.#run((c) => this.#send(c, key, false, ['EXPIRE', key, String(ttlSeconds)]))) === 1;
  }

  /** {@inheritDoc Engine.ttl} */
  ttl(key: string): Promise<number> {
    return this.#run((c) => this.#send(c, key, true, ['TTL', key])) as Promise<number>;
  }

  /**
   * {@inheritDoc Engine.scan}
   *
   * Every primary of the topology at the start of the scan is walked with its own cursor, one after the
   * other. A primary that fails over during the scan makes it reject (the caller may run it again).
   */
  async *scan(match: string, count: number): AsyncIterable<string[]> {
    const primaries = await this.#run(async (c) => c.masters.map((m) => m.address));
    for (const address of primaries) {
      let cursor = '0';
      do {
        const [next, keys] = (await this.#run((c) =>
          this.#sendTo(c, address, ['SCAN', cursor, 'MATCH', match, 'COUNT', String(count)]),
        )) as [string, string[]];
        cursor = next;
        if (keys.length > 0) yield keys;
      } while (cursor !== '0');
    }
  }

  /** {@inheritDoc Engine.ping} Pings every primary: the whole keyspace must be reachable. */
  async ping(): Promise<void> {
    await this.#run(async (c) => {
      const primaries = c.masters.map((m) => m.address);
      const settled = await Promise.allSettled(primaries.map((a) => this.#sendTo(c, a, ['PING'])));
      for (const result of settled) if (result.status === 'rejected') throw result.reason;
    });
  }

  /** {@inheritDoc Engine.close} */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    // Calls in progress finish first (the watchdog bounds them).
    if (this.#active > 0) {
      await new Promise<void>((resolve) => {
        this.#onIdle = resolve;
      });
    }
    await this.#connecting?.catch(() => undefined);
    const cluster = this.#cluster;
    this.#cluster = undefined;
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
    if (!cluster?.isOpen) return;
    // A graceful close waits for the nodes; one that stopped answering must not hold it forever.
    try {
      await withDeadline(cluster.close(), this.#options.timeoutMs, () => new Error('close timed out'));
    } catch {
      cluster.destroy();
    }
  }
}
