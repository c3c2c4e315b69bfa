/**
 * The Redis Cluster engine: node-redis 6's cluster client (topology discovery, MOVED/ASK redirects,
 * topology refresh) under the same string-only {@link Engine} contract as the single-node engine, with
 * the same key layout (no hash tags are added: keys stay byte-identical to Peak's Python client).
 *
 * Multi-key operations are split by hash slot, sent concurrently (node-redis pipelines the commands of
 * one tick on each node connection) and merged in the caller's order:
 *
 * - `mget`: one `MGET` per slot; every value lands at its key's position.
 * - `mset`: without a TTL, one `MSET` per slot; with a TTL, per slot the single server's SET EX script
 *   (`EVAL`, `MULTI`/`EXEC` where an ACL refuses scripting; see `mset-ttl.ts`), so
 *   no key is ever visible without its TTL. Atomic per slot only.
 * - `unlink` / `exists`: one command per slot, counts summed (repeats of a key share a slot, so Redis
 *   counts them exactly as on one server).
 * - `scan`: walks every primary in turn with its own cursor (never one random node).
 *
 * Tuning matches {@link RedisEngine}: no per-command timer (`commandOptions: { timeout: 0 }`), calls fail
 * fast while a node is disconnected (`disableOfflineQueue`), and hangs are bounded by ONE watchdog timer
 * per engine that tracks, node by node, the commands outstanding and the time of the last reply. When a
 * node has commands outstanding and has not replied for `timeoutMs` (a frozen or partitioned node), its
 * commands reject with {@link CacheTimeoutError}, its connection is replaced, and the topology is
 * checked without it, so a failed-over primary's slots move to its replacement.
 *
 * Only node-redis's public API is used (`createCluster` and its options and events, `slots`, `masters`,
 * `nodeByAddress`, `nodeClient`, `sendCommand`, `multi`, `close`/`destroy`, and the node clients' own
 * `sendCommand`/`connect`/`destroy`/`isOpen`/`isReady`). Two things node-redis does not offer are built on
 * it:
 *
 * - **Failing fast on a node known to be down.** node-redis makes a command for a node that is still
 *   connecting wait for the connection (for ever, with a reconnect strategy). The engine learns from the
 *   `node-error` / `node-ready` events which nodes are down, fails their calls at once, and fails the
 *   calls waiting for such a node's first connection as soon as that attempt fails.
 * - **A topology check on demand.** node-redis refreshes its slot map on `MOVED` and while a node
 *   reconnects, but offers no way to refresh it for a node that stopped answering (or was never reached).
 *   The engine asks a healthy primary for `CLUSTER SLOTS`; when the answer differs from the slot map in
 *   use, it opens a new cluster client on that topology, switches to it, and closes the old one.
 *
 * @module
 */
import {
  ClientClosedError,
  ClientOfflineError,
  ErrorReply,
  RedisClient,
  type RedisClusterType,
  RootNodesUnavailableError,
} from '@redis/client';
import { CacheConnectionError, CacheError, CacheTimeoutError, CacheValidationError } from '../errors.js';
import { type TrackingListener, TrackingProvider } from '../near-cache/tracking.js';
import { createRedisCluster, credentialsOf } from './client-factory.js';
import {
  deleteIfEquals,
  pexpireIfEquals,
  type ScriptingState,
  type SendOne,
  setIfAbsent,
} from './conditional.js';
import { incrementBy } from './counter.js';
import type { Engine } from './engine.js';
import { msetWithTtl } from './mset-ttl.js';
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
/** A node of the topology, as node-redis's public `slots`, `masters` and `nodeByAddress` give it. */
type ClusterNode = Cluster['masters'][number];
/** A node's connection, as node-redis's public `nodeClient()` gives it. */
type NodeClient = Awaited<ReturnType<Cluster['nodeClient']>>;
type Reply = unknown;
type Values = (string | null)[];
type Fail = (err: CacheError) => void;

/** What the engine knows about one node (by `host:port`): commands outstanding, last reply, health. */
interface NodeState {
  lastProgress: number;
  /** Calls waiting for the node's connection (the slow path): the watchdog rejects them one by one. */
  readonly pending: Set<Fail>;
  /**
   * Commands sent on a ready connection (the fast path): counted only, since a stall destroys the
   * connection, which rejects them.
   */
  inflight: number;
  /**
   * The connections those commands were sent on. Usually one; two or more while a topology switch retires
   * a cluster client whose connections still carry commands. A stall acts on these, not on whatever
   * connection the current cluster client has for the node.
   */
  readonly sentOn: Set<NodeClient>;
  /** Stalls so far: a fast-path command that fails after a stall during it failed for want of a reply. */
  stalls: number;
  /**
   * The node (of the cluster client in use) whose connection attempt failed and has not succeeded since
   * (`node-error` without `node-ready`): its calls fail fast while node-redis reconnects in the background.
   */
  down: ClusterNode | undefined;
  /** Why it is down: the last connection failure, mapped again for each call that fails fast. */
  lastError: unknown;
}

/** One `CLUSTER SLOTS` entry: `[from, to, [host, port, id, ...], ...replicas]`. */
type SlotRange = [number, number, [string, number, ...unknown[]], ...unknown[]];

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

/**
 * Whether `ranges` (a `CLUSTER SLOTS` reply from the node at `askedHost`) assigns every slot it lists to
 * the primary that serves it in `cluster`'s slot map.
 */
function sameTopology(cluster: Cluster, ranges: readonly SlotRange[], askedHost: string): boolean {
  for (const [from, to, [host, port]] of ranges) {
    const address = `${host === '' ? askedHost : host}:${port}`;
    for (let slot = from; slot <= to; slot++) {
      if (cluster.slots[slot]?.master.address !== address) return false;
    }
  }
  return true;
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
  /** The topology check in progress (at most one). */
  #refreshing: Promise<void> | undefined;
  /** Cluster clients replaced by a topology check, still closing (close() waits for them). */
  readonly #retiring = new Set<Promise<void>>();
  /**
   * Each node's connection once `nodeClient()` resolved it: the hot path sends on it without a promise
   * hop. Keyed by node object, so a node that leaves the topology (or a replaced cluster client) drops out.
   */
  readonly #clients = new WeakMap<ClusterNode, NodeClient>();
  /** The last credentials rejection seen while (re)connecting a node. */
  #authFailure: Error | undefined;
  /** Whether the nodes let us run the mset script (an ACL may refuse @scripting). */
  readonly #msetScript: ScriptingState = { scripting: true };
  /** Near cache: tracking wiring for every node connection (see {@link ClusterEngine.track}). */
  #tracking: TrackingProvider | undefined;

  /** @param options - cluster settings; no I/O happens until the first command. */
  constructor(options: ClusterEngineOptions) {
    this.#options = options;
    this.#seeds = parseSeeds(options.nodes);
    const targets = this.#seeds.map((s) => `${s.host}:${s.port}`);
    this.#ctx = { target: `cluster ${targets.join(',')}`, timeoutMs: options.timeoutMs };
  }

  /** A node-redis cluster client that discovers the topology from `rootNodes` (`host:port`s). */
  #createCluster(rootNodes: readonly { host: string; port: number }[]): Cluster {
    const { connectTimeoutMs, keepAliveMs, maxQueueLength } = this.#options;
    const first = this.#seeds[0] as Seed;
    const cluster = createRedisCluster({
      rootNodes: rootNodes.map(({ host, port }) => ({ socket: { host, port } })),
      // Applied to every node connection, discovered nodes included.
      defaults: {
        ...credentialsOf(first.username, first.password),
        disableOfflineQueue: true,
        commandsQueueMaxLength: maxQueueLength,
        ...(this.#tracking && { maintNotifications: 'disabled' as const }),
        socket: {
          ...(first.tls ? { tls: true as const } : {}),
          connectTimeout: connectTimeoutMs,
          ...(keepAliveMs === false
            ? { keepAlive: false }
            : { keepAlive: true, keepAliveInitialDelay: keepAliveMs }),
          // Reconnect (the first attempt at once, then with back-off) while calls to that node fail
          // fast; stop on rejected credentials (reported to callers) and once closed. A node that leaves
          // the topology is dropped by node-redis, which stops its reconnects.
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
      // Near cache: RESP3 and CLIENT TRACKING on every node connection, events to one shared listener.
      ...(this.#tracking && { RESP: 3 as const, clientSideCache: this.#tracking }),
      // Connect to a node on first use: one unreachable node does not stop the others from serving.
      minimizeConnections: true,
      useReplicas: false,
      topologyRefreshOnReconnectionAttemptStrategy: REFRESH_ON_RECONNECT_MS,
    }) as unknown as Cluster;
    // Discovery failures are emitted as 'error' (they reach callers through their commands); node
    // connection failures as 'node-error': that node is down until its 'node-ready'.
    cluster.on('error', () => {});
    cluster.on('node-error', (err: unknown, node: { host: string; port: number }) => {
      if (cluster === this.#cluster) this.#onNodeError(cluster, `${node.host}:${node.port}`, err);
    });
    cluster.on('node-ready', (node: { host: string; port: number }) => {
      // A connection of a retired (or not yet adopted) cluster client says nothing of the nodes in use.
      if (cluster !== this.#cluster) return;
      this.#authFailure = undefined;
      const state = this.#nodes.get(`${node.host}:${node.port}`);
      if (state !== undefined) state.down = undefined;
    });
    return cluster;
  }

  /** {@inheritDoc Engine.track} */
  track(listener: TrackingListener): void {
    this.#tracking = new TrackingProvider(listener);
  }

  #connect(): Promise<Cluster> {
    if (this.#closed) return Promise.reject(new CacheConnectionError('the client is closed'));
    this.#connecting ??= this.#openCluster().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #openCluster(): Promise<Cluster> {
    const cluster = await this.#discover(this.#seeds);
    if (this.#closed) {
      cluster.destroy();
      throw new CacheConnectionError('the client is closed');
    }
    this.#cluster = cluster;
    this.#authFailure = undefined;
    this.#startWatchdog();
    return cluster;
  }

  /** A connected cluster client discovered from `rootNodes`, within `connectTimeoutMs`. */
  async #discover(rootNodes: readonly { host: string; port: number }[]): Promise<Cluster> {
    const cluster = this.#createCluster(rootNodes);
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
          const busy = node.pending.size > 0 || node.inflight > 0;
          if (busy && now - node.lastProgress > timeoutMs) this.#onStall(address, node);
        }
      },
      (now) => {
        for (const node of this.#nodes.values()) node.lastProgress = now;
      },
    );
  }

  /** What the engine knows about the node at `address` (created on first use). */
  #state(address: string): NodeState {
    let state = this.#nodes.get(address);
    if (state === undefined) {
      state = {
        lastProgress: 0,
        pending: new Set(),
        inflight: 0,
        sentOn: new Set(),
        stalls: 0,
        down: undefined,
        lastError: undefined,
      };
      this.#nodes.set(address, state);
    }
    return state;
  }

  /**
   * A node has not replied for `timeoutMs`: reject its commands, replace the connections that carry them
   * (the same client reconnects; until it is ready again, calls for the node fail fast), and check the
   * topology without it.
   */
  #onStall(address: string, node: NodeState): void {
    const failures = [...node.pending];
    node.pending.clear();
    node.lastProgress = Date.now();
    node.stalls++;
    for (const fail of failures) fail(this.#noReply(address));
    const cluster = this.#cluster;
    // Calls that waited for a connection and then sent on it (slow path) are not in `sentOn`: their
    // connection is the node's connection in the cluster client in use.
    const target = failures.length > 0 ? cluster?.nodeByAddress.get(address) : undefined;
    const current = target === undefined ? undefined : this.#clients.get(target);
    if (current !== undefined) node.sentOn.add(current);
    for (const client of node.sentOn) this.#replaceConnection(client);
    node.sentOn.clear();
    if (cluster) this.#refresh(cluster, address, true);
  }

  /**
   * Drop a node connection that stopped replying, rejecting its commands. An established connection is
   * opened again; a closing one (its cluster client was retired by a topology switch) is only dropped.
   *
   * A connection that is open but not ready is left alone: node-redis is (re)connecting it, and rejected
   * its commands when it lost the previous connection. `destroy()` + `connect()` there would start a
   * second connect loop on the same client, and two sockets feeding one reply queue hand callers each
   * other's replies (and the handshake's).
   */
  #replaceConnection(client: NodeClient): void {
    if (!client.isOpen) {
      client.destroy();
    } else if (client.isReady) {
      client.destroy();
      this.#reopen(client);
    }
  }

  /**
   * A node's connection attempt failed, or its connection broke: the node is down until `node-ready`.
   * The calls waiting for it (for its first connection, or for replies on the broken one) fail now.
   */
  #onNodeError(cluster: Cluster, address: string, err: unknown): void {
    const node = cluster.nodeByAddress.get(address);
    if (node === undefined) return;
    if (this.#clients.get(node)?.isReady) return; // an error on a connection that still works
    const state = this.#state(address);
    state.lastError = err;
    // Rejected credentials are not "down": the next call tries again, so each caller learns why.
    if (!isAuthFailure(err)) state.down = node;
    const failures = [...state.pending];
    state.pending.clear();
    for (const fail of failures) fail(this.#failure(err, address));
    this.#refresh(cluster, address);
  }

  /**
   * Open a node connection again after `destroy()`; its failures arrive as `node-error` events. Only for a
   * client whose connect loop has ended (it was ready, or it gave up), see {@link ClusterEngine.#replaceConnection}.
   */
  #reopen(client: NodeClient): void {
    if (this.#closed || client.isOpen) return;
    client.connect().catch(() => {});
  }

  /**
   * The connection of `node` when it is not ready (the hot path checks `#clients` first): connects on
   * first use, but rejects at once while the node is known to be down (its connection is reconnecting, or
   * its last connection attempt failed), instead of making the call wait for the reconnect.
   */
  #connectNode(cluster: Cluster, node: ClusterNode, state: NodeState): Promise<NodeClient> {
    const known = this.#clients.get(node);
    if (known?.isOpen) {
      return known.isReady ? Promise.resolve(known) : Promise.reject(new ClientOfflineError());
    }
    if (state.down === node) return Promise.reject(state.lastError);
    // A retired cluster client: asking it for a connection could open a new one that nothing closes.
    if (cluster !== this.#cluster) return Promise.reject(new ClientClosedError());
    return cluster.nodeClient(node).then((client) => {
      // A topology switch retired this cluster client meanwhile: its connections are closing. Reopening
      // one would give it a second socket while the first still drains, both feeding one reply queue.
      // The call fails (the next one goes through the cluster client in use), and the connection is
      // closed for good once nothing can be on it. (`close()` retires the cluster client only once no call
      // is in progress.)
      if (cluster !== this.#cluster) {
        this.#reap(client, false);
        throw new ClientClosedError();
      }
      this.#clients.set(node, client);
      if (client.isOpen) return client;
      // Closing gracefully (still ready, draining its replies): the same hazard.
      if (client.isReady) throw new ClientClosedError();
      // node-redis keeps a node's client after giving up on it (rejected credentials): open it again,
      // so this caller learns why (or the new password works).
      return client.connect();
    });
  }

  /**
   * Check the topology in the background (at most one check at a time; throttled unless `force`): ask a
   * connected primary other than `exclude` for `CLUSTER SLOTS`, and when its answer differs from the slot
   * map in use, switch to a new cluster client discovered from it.
   */
  #refresh(cluster: Cluster, exclude: string | undefined, force = false): void {
    if (this.#closed || cluster !== this.#cluster || this.#refreshing !== undefined) return;
    const now = Date.now();
    if (!force && now - this.#lastRefresh < REFRESH_MIN_INTERVAL_MS) return;
    this.#lastRefresh = now;
    this.#refreshing = this.#checkTopology(cluster, exclude)
      .catch(() => {})
      .finally(() => {
        this.#refreshing = undefined;
      });
  }

  async #checkTopology(cluster: Cluster, exclude: string | undefined): Promise<void> {
    for (const master of cluster.masters) {
      const client = this.#clients.get(master);
      if (master.address === exclude || client === undefined || !client.isReady) continue;
      let ranges: SlotRange[];
      try {
        ranges = (await this.#track(this.#state(master.address), master.address, () =>
          client.sendCommand(['CLUSTER', 'SLOTS'], NO_TIMEOUT),
        )) as SlotRange[];
      } catch {
        continue;
      }
      if (cluster !== this.#cluster || sameTopology(cluster, ranges, master.host)) return;
      const primaries = ranges.map(([, , [host, port]]) => ({
        host: host === '' ? master.host : host,
        port,
      }));
      await this.#replace(cluster, primaries);
      return;
    }
    // No connected primary to ask: discover afresh from the known primaries and the seeds.
    const known = cluster.masters
      .filter((m) => m.address !== exclude)
      .map(({ host, port }) => ({ host, port }));
    await this.#replace(cluster, [...known, ...this.#seeds]);
  }

  /** Switch from `old` to a cluster client discovered from `rootNodes`; close `old` in the background. */
  async #replace(old: Cluster, rootNodes: readonly { host: string; port: number }[]): Promise<void> {
    const fresh = await this.#discover(rootNodes);
    // Connect to its primaries before switching (calls carry on over the old client meanwhile), so the
    // first calls after the switch do not each wait for a connection. A primary that does not connect
    // within connectTimeoutMs is left connecting in the background.
    const { connectTimeoutMs } = this.#options;
    let dropped = false;
    await Promise.allSettled(
      fresh.masters.map((node) => {
        const connected = fresh.nodeClient(node);
        // Still connecting when `fresh` is dropped below: close that connection once it completes.
        connected.then(
          (client) => {
            if (dropped) this.#reap(client, true);
          },
          () => {},
        );
        return withDeadline(connected, connectTimeoutMs, () => new Error('not connected yet')).then(
          (client) => {
            this.#clients.set(node, client);
          },
        );
      }),
    );
    if (this.#closed || this.#cluster !== old) {
      dropped = true;
      fresh.destroy();
      return;
    }
    this.#cluster = fresh;
    this.#retire(old);
  }

  /**
   * Close a cluster client gracefully (calls still on it finish), bounded by `timeoutMs`; then destroy
   * its node connections, which rejects what they still carry. They are collected first: node-redis's
   * `close()` forgets its nodes at once, so its `destroy()` afterwards would not reach them.
   */
  #retire(cluster: Cluster): void {
    const connections: NodeClient[] = [];
    for (const node of cluster.masters) {
      const client = this.#clients.get(node);
      if (client !== undefined) connections.push(client);
    }
    const done: Promise<void> = withDeadline(
      cluster.close(),
      this.#options.timeoutMs,
      () => new Error('close timed out'),
    )
      .catch(() => {
        cluster.destroy();
        for (const client of connections) client.destroy();
      })
      .finally(() => {
        for (const client of connections) this.#reap(client, true);
        this.#retiring.delete(done);
      });
    this.#retiring.add(done);
  }

  /**
   * Make sure a node connection of a cluster client that is no longer used gets closed. node-redis's
   * `close()` and `destroy()` miss a connection whose TCP connect is still in progress: it completes
   * afterwards, runs its handshake and stays open (closed, yet ready) with nothing to close it.
   * @param drained - whether its cluster client finished closing (so a closed, ready connection is such a
   *   leftover); otherwise it may still be draining replies, and gets `timeoutMs` to do so.
   */
  #reap(client: NodeClient, drained: boolean): void {
    if (client.isOpen) {
      // Opened after its cluster client was retired or dropped: nothing of ours is on it.
      client.destroy();
    } else if (!client.isReady) {
      client.once('ready', () => {
        if (!client.isOpen) client.destroy();
      });
    } else if (drained) {
      client.destroy();
    } else {
      setTimeout(() => {
        if (!client.isOpen && client.isReady) client.destroy();
      }, this.#options.timeoutMs).unref();
    }
  }

  /** The error of a call the node at `address` did not answer within `timeoutMs`. */
  #noReply(address: string, cause?: unknown): CacheTimeoutError {
    const message = `${address} did not reply within ${this.#options.timeoutMs} ms`;
    return cause === undefined ? new CacheTimeoutError(message) : new CacheTimeoutError(message, { cause });
  }

  /**
   * The fast path: send on a ready connection, counted for the watchdog. A stall destroys the
   * connection, which rejects the command (then reported as a timeout). `redirected` sends it again
   * after a MOVED/ASK reply (which says it did not run).
   */
  #sendOn(
    state: NodeState,
    address: string,
    client: NodeClient,
    args: string[],
    redirected: () => Promise<Reply>,
  ): Promise<Reply> {
    if (state.inflight++ === 0 && state.pending.size === 0) state.lastProgress = Date.now();
    state.sentOn.add(client);
    const stalls = state.stalls;
    return client.sendCommand(args, NO_TIMEOUT).then(
      (reply) => {
        if (--state.inflight === 0) state.sentOn.clear();
        state.lastProgress = Date.now();
        return reply;
      },
      (err: unknown) => {
        if (--state.inflight === 0) state.sentOn.clear();
        state.lastProgress = Date.now();
        if (state.stalls !== stalls) throw this.#noReply(address, err);
        if (err instanceof ErrorReply && REDIRECT_REPLY.test(err.message)) {
          return this.#track(state, address, redirected);
        }
        throw this.#failure(err, address);
      },
    );
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
    if (cluster) this.#refresh(cluster, address);
    // A node connection that gave up on rejected credentials reports itself closed or offline.
    const auth = this.#authFailure;
    if (auth !== undefined && (err instanceof ClientClosedError || err instanceof ClientOfflineError)) {
      return toCacheError(auth, ctx);
    }
    return toCacheError(err, ctx);
  }

  /** Run one command (or transaction) on the node at `address`, tracked by the watchdog. */
  /**
   * Run one command (or transaction) on the node at `address`, tracked by the watchdog. `redirected`,
   * when given, sends it again after a MOVED/ASK reply (which says it did not run).
   */
  #track<T>(
    state: NodeState,
    address: string,
    start: () => Promise<T>,
    redirected?: () => Promise<T>,
  ): Promise<T> {
    if (state.pending.size === 0 && state.inflight === 0) state.lastProgress = Date.now();
    return new Promise<T>((resolve, reject) => {
      const fail: Fail = reject;
      state.pending.add(fail);
      let sent: Promise<T>;
      try {
        sent = start();
      } catch (err) {
        sent = Promise.reject(err);
      }
      const onReply = (reply: T) => {
        if (!state.pending.delete(fail)) return;
        state.lastProgress = Date.now();
        resolve(reply);
      };
      const onError = (err: unknown) => {
        if (!state.pending.delete(fail)) return;
        state.lastProgress = Date.now();
        reject(this.#failure(err, address));
      };
      sent.then(onReply, (err: unknown) => {
        if (redirected !== undefined && err instanceof ErrorReply && REDIRECT_REPLY.test(err.message)) {
          redirected().then(onReply, onError);
        } else {
          onError(err);
        }
      });
    });
  }

  /** The primary serving the slot of `key` per the slot map in use; rejects (and checks it) when none. */
  #primary(cluster: Cluster, slot: number): ClusterNode {
    const primary = cluster.slots[slot]?.master;
    if (primary !== undefined) return primary;
    this.#refresh(cluster, undefined);
    throw new CacheConnectionError(
      `no node of ${this.#ctx.target} serves hash slot ${slot} (checking the topology)`,
    );
  }

  /**
   * Send a command whose keys all hash to the slot of `key`. Fast path: straight to the ready connection
   * of the slot's primary (node-redis's routed `sendCommand` costs 3-4x more per command). A redirect
   * (MOVED/ASK: the command did not run) goes through node-redis's routed path, which refreshes the
   * topology or follows the ASK, and sends it again.
   */
  #send(
    cluster: Cluster,
    key: string,
    readonly: boolean,
    args: string[],
    slot = keySlot(key),
  ): Promise<Reply> {
    let primary: ClusterNode;
    try {
      primary = this.#primary(cluster, slot);
    } catch (err) {
      return Promise.reject(err);
    }
    const address = primary.address;
    const state = this.#state(address);
    const redirected = () => cluster.sendCommand(key, readonly, args);
    const client = this.#clients.get(primary);
    if (client?.isReady === true) return this.#sendOn(state, address, client, args, redirected);
    return this.#track(
      state,
      address,
      () => this.#connectNode(cluster, primary, state).then((c) => c.sendCommand(args, NO_TIMEOUT)),
      redirected,
    );
  }

  /** Send a keyless command to the node at `address` (a primary of the current topology). */
  #sendTo(cluster: Cluster, address: string, args: string[]): Promise<Reply> {
    const state = this.#state(address);
    return this.#track(state, address, async () => {
      const node = cluster.nodeByAddress.get(address);
      if (node === undefined) {
        throw new CacheConnectionError(`${address} left the cluster during the operation`);
      }
      const client = await this.#connectNode(cluster, node, state);
      return client.sendCommand(args, NO_TIMEOUT);
    });
  }

  /**
   * Run an engine call: connect if needed; `close()` waits for calls in progress. The hot path is one
   * plain call and one `.then` (no async frame: each `await` is a promise hop per call).
   */
  #run<T>(body: (cluster: Cluster) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new CacheConnectionError('the client is closed'));
    this.#active++;
    const cluster = this.#cluster;
    let result: Promise<T>;
    try {
      result = cluster === undefined ? this.#connect().then(body) : body(cluster);
    } catch (err) {
      result = Promise.reject(err);
    }
    return result.then(
      (value) => {
        this.#settled();
        return value;
      },
      (err: unknown) => {
        this.#settled();
        throw toCacheError(err, this.#ctx);
      },
    );
  }

  /** An engine call settled: wake `close()` when it was the last one. */
  #settled(): void {
    if (--this.#active === 0) this.#onIdle?.();
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
  set(key: string, value: string, ttlSeconds?: number): Promise<void> {
    const args =
      ttlSeconds === undefined ? ['SET', key, value] : ['SET', key, value, 'EX', String(ttlSeconds)];
    // Resolves with the reply ('OK'), which callers ignore: no extra promise hop to drop it.
    return this.#run((c) => this.#send(c, key, false, args)) as Promise<void>;
  }

  /** {@inheritDoc Engine.mget} */
  mget(keys: readonly string[]): Promise<(string | null)[]> {
    return this.#run(async (c) => {
      const values: Values = new Array<string | null>(keys.length).fill(null);
      await this.#perSlot(keys, async (indices, slot) => {
        const group = indices.map((i) => keys[i] as string);
        const reply = (await this.#send(c, group[0] as string, true, ['MGET', ...group], slot)) as Values;
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
    await this.#run((c) =>
      this.#perSlot(keys, async (indices, slot) => {
        const first = keys[indices[0] as number] as string;
        if (ttlSeconds === undefined) {
          const args = ['MSET'];
          for (const i of indices) args.push(...(entries[i] as readonly [string, string]));
          return this.#send(c, first, false, args, slot);
        }
        const ttl = String(ttlSeconds);
        if (indices.length === 1) {
          const [key, value] = entries[indices[0] as number] as readonly [string, string];
          return this.#send(c, key, false, ['SET', key, value, 'EX', ttl], slot);
        }
        // Several keys in one slot: the SET EX script (or MULTI of SET EX where scripting is refused),
        // so they appear together, each with its TTL.
        const group = indices.map((i) => entries[i] as readonly [string, string]);
        return msetWithTtl(
          (args) => this.#send(c, first, false, args, slot),
          () => this.#multiSetEx(c, slot, group, ttl),
          this.#msetScript,
          group,
          ttlSeconds,
        );
      }),
    );
  }

  /** `MULTI` of `SET key value EX ttl` for `entries` (all in `slot`), on the slot's primary. */
  #multiSetEx(
    cluster: Cluster,
    slot: number,
    entries: readonly (readonly [string, string])[],
    ttl: string,
  ): Promise<unknown> {
    const primary = this.#primary(cluster, slot);
    const state = this.#state(primary.address);
    return this.#track(state, primary.address, async () => {
      const client = await this.#connectNode(cluster, primary, state);
      // A transaction is queued even while the node reconnects; fail fast instead, as commands do.
      if (!client.isReady) throw new ClientOfflineError();
      const first = (entries[0] as readonly [string, string])[0];
      // Routed by node-redis, which follows MOVED/ASK.
      const multi = cluster.multi(first);
      for (const [key, value] of entries) multi.addCommand(key, false, ['SET', key, value, 'EX', ttl]);
      return multi.exec();
    });
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
      const counts = await this.#perSlot(keys, (indices, slot) => {
        const group = indices.map((i) => keys[i] as string);
        const args = [command, ...group];
        return this.#send(c, group[0] as string, command === 'EXISTS', args, slot) as Promise<number>;
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

  /** {@inheritDoc Engine.pttl} */
  pttl(key: string): Promise<number> {
    return this.#run((c) => this.#send(c, key, false, ['PTTL', key])) as Promise<number>;
  }

  readonly #sendOne: SendOne = (key, args) => this.#run((c) => this.#send(c, key, false, args));
  /** Whether compare-and-delete may use its script (an ACL may refuse @scripting). */
  readonly #conditional: ScriptingState = { scripting: true };

  /** {@inheritDoc Engine.setIfAbsent} */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return setIfAbsent(this.#sendOne, key, value, ttlMs);
  }

  /** {@inheritDoc Engine.deleteIfEquals} */
  deleteIfEquals(key: string, value: string): Promise<boolean> {
    return deleteIfEquals(this.#sendOne, this.#conditional, key, value);
  }

  /** {@inheritDoc Engine.pexpireIfEquals} */
  pexpireIfEquals(key: string, value: string, ttlMs: number): Promise<boolean> {
    return pexpireIfEquals(this.#sendOne, this.#conditional, key, value, ttlMs);
  }

  /** {@inheritDoc Engine.incrBy} */
  incrBy(key: string, by: number, ttlSeconds?: number): Promise<number> {
    return incrementBy(this.#sendOne, key, by, ttlSeconds);
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
    // A topology check may be discovering a new cluster client: it sees #closed and destroys it.
    await this.#refreshing;
    const cluster = this.#cluster;
    this.#cluster = undefined;
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
    // A graceful close waits for the nodes; one that stopped answering must not hold it forever.
    if (cluster?.isOpen) this.#retire(cluster);
    await Promise.all(this.#retiring);
  }
}
