/**
 * Server-assisted client-side caching on node-redis 6 connections: the wiring the Redis and Cluster
 * engines add to their connections when a near cache is on.
 *
 * node-redis calls a `ClientSideCacheProvider` from every connection it owns, cluster node connections
 * included: it sends the provider's `trackingOn()` command in the connection handshake (before the
 * connection is ready, so no command runs on an untracked connection), hands it every RESP3 `invalidate`
 * push, and tells it when a connection fails or closes. {@link TrackingProvider} is such a provider that
 * caches nothing itself (our engines send commands with `sendCommand`, which node-redis never caches) and
 * forwards those events to a {@link TrackingListener}: the near cache.
 *
 * Tracking mode: default (the server remembers the keys each connection read and sends one invalidation
 * per key when it changes), not BCAST, so only keys we read cost invalidation traffic. Both work under the
 * README's per-tenant ACL user (`CLIENT TRACKING` is in `@connection`; RESP3 push messages need no
 * Pub/Sub channel permission, unlike the RESP2 REDIRECT mode, which `resetchannels` would refuse).
 *
 * @module
 */
import { BasicPooledClientSideCache, type RedisArgument } from '@redis/client';

/** Receives the tracking events of every connection of an engine. */
export interface TrackingListener {
  /** The server says `key` changed (or expired, or was evicted). */
  invalidate(key: string): void;
  /**
   * Invalidations may have been missed (a connection failed, closed or was replaced, the topology
   * changed, or the server flushed its keys): drop everything.
   */
  reset(): void;
}

/** Command sent in every connection handshake: default tracking mode. */
const TRACKING_ON = ['CLIENT', 'TRACKING', 'ON'];

/**
 * A node-redis client-side cache provider that caches nothing and forwards tracking events to a
 * {@link TrackingListener}. Extends node-redis's pooled provider so the cluster client shares it between its node
 * connections instead of wrapping it.
 */
export class TrackingProvider extends BasicPooledClientSideCache {
  readonly #listener: TrackingListener;

  /** @param listener - receives invalidations and resets. */
  constructor(listener: TrackingListener) {
    super({ maxEntries: 1, recordStats: false });
    this.#listener = listener;
  }

  /** Commands go straight to the server: node-redis's own reply cache is not used. */
  override handleCache(...args: Parameters<BasicPooledClientSideCache['handleCache']>): Promise<unknown> {
    const [, parser, fn, transformReply, typeMapping] = args;
    return fn().then((reply) =>
      transformReply === undefined ? reply : transformReply(reply, parser.preserve, typeMapping),
    );
  }

  /** The handshake command that turns tracking on for a connection. */
  override trackingOn(): string[] {
    return TRACKING_ON;
  }

  /** A RESP3 `invalidate` push: one key, or `null` when the server flushed its keys. */
  override invalidate(key: RedisArgument | null): void {
    if (key === null) this.#listener.reset();
    else this.#listener.invalidate(typeof key === 'string' ? key : key.toString());
  }

  /** node-redis clears the cache on topology changes (cluster) and on close. */
  override clear(): void {
    this.#listener.reset();
  }

  /** A connection failed: its invalidations may be lost. */
  override onError(): void {
    this.#listener.reset();
  }

  /** A connection closed or was destroyed. */
  override onClose(): void {
    this.#listener.reset();
  }

  /** Nothing is cached here. */
  override size(): number {
    return 0;
  }
}

/**
 * node-redis client options that turn tracking on for a connection (single server): RESP3, the provider,
 * and no Redis Enterprise maintenance handshake (RESP3 would otherwise add one, with a DNS lookup).
 */
export function trackingClientOptions(provider: TrackingProvider): {
  RESP: 3;
  clientSideCache: TrackingProvider;
  maintNotifications: 'disabled';
} {
  return { RESP: 3, clientSideCache: provider, maintNotifications: 'disabled' };
}
