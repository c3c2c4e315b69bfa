/**
 * The Redis/Valkey engine: a thin layer over one node-redis 6 connection.
 *
 * node-redis arms a timer per command by default (`commandOptions.timeout`, 5 s); on these machines that
 * cut throughput 3-5x. This engine disables it and bounds hangs with one watchdog per connection instead:
 * while commands are outstanding and no reply has arrived for `timeoutMs`, the connection is destroyed,
 * its commands reject with {@link CacheTimeoutError}, and the next call connects afresh.
 *
 * While the connection is down, calls fail fast (`disableOfflineQueue`): nothing is queued behind the
 * caller's back and nothing is re-sent after a reconnect, so a write is never executed twice silently.
 * The same holds for a server that stopped answering (frozen, partitioned): once a call timed out (or a
 * connection attempt did), later calls fail fast with a {@link CacheTimeoutError} while a replacement
 * connection is tried in the background (each attempt bounded by `timeoutMs`, with back-off), until one
 * answers; as the cluster engine does for a node.
 *
 * @module
 */
import { ClientOfflineError, type RedisClientType } from '@redis/client';
import { CacheConnectionError, type CacheError, CacheTimeoutError } from '../errors.js';
import { type TrackingListener, TrackingProvider, trackingClientOptions } from '../near-cache/tracking.js';
import { createRedisClient } from './client-factory.js';
import {
  deleteIfEquals,
  pexpireIfEquals,
  type ScriptingState,
  type SendOne,
  setIfAbsent,
} from './conditional.js';
import { incrementBy } from './counter.js';
import type { Engine } from './engine.js';
import { GetBatch } from './get-batch.js';
import { msetWithTtl, type SendArgs } from './mset-ttl.js';
import { type ErrorContext, isAuthFailure, queueFullError, toCacheError } from './redis-errors.js';
import { SetBatch } from './set-batch.js';
import { startWatchdog, withDeadline } from './watchdog.js';

/** Settings of one Redis connection. */
export interface RedisEngineOptions {
  /** `redis://` or `rediss://` URL, credentials included. */
  readonly url: string;
  /** Longest wait for a reply while commands are outstanding, in milliseconds. */
  readonly timeoutMs: number;
  /** Longest wait to connect (TCP, TLS and handshake), in milliseconds. */
  readonly connectTimeoutMs: number;
  /** Most commands waiting on the connection; more reject at once. */
  readonly maxQueueLength: number;
  /** TCP keep-alive initial delay in milliseconds, or `false` to disable. */
  readonly keepAliveMs: number | false;
}

type Client = RedisClientType;

/** Longest wait between two reconnect attempts, in milliseconds. */
export const RECONNECT_MAX_DELAY_MS = 500;

/**
 * Wait before reconnect attempt `retries` (0-based) after a lost connection, in milliseconds: the first
 * attempt at once, then 50 ms doubling up to {@link RECONNECT_MAX_DELAY_MS}, each spread by +-20 % so
 * that many clients do not reconnect in step. A server back after an outage is found within about
 * half a second (measured by the soak: see `docs/cluster.md`).
 */
export function reconnectDelay(retries: number): number {
  if (retries <= 0) return 0;
  const base = Math.min(50 * 2 ** (retries - 1), RECONNECT_MAX_DELAY_MS);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/** `host:port` of a Redis URL, for messages (never the credentials). */
export function describeTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}`;
  } catch {
    return 'the configured server';
  }
}

/** Redis/Valkey engine over a single node-redis connection. */
export class RedisEngine implements Engine {
  readonly #options: RedisEngineOptions;
  readonly #ctx: ErrorContext;
  #client: Client | undefined;
  #connecting: Promise<Client> | undefined;
  #closed = false;
  /** Clients destroyed by the watchdog: their failures are timeouts. */
  readonly #stalled = new WeakSet<Client>();
  /**
   * The server last failed to reply within `timeoutMs` and no connection has succeeded since: a new
   * connection must then come up within `timeoutMs` too (a frozen server accepts TCP but never answers
   * the handshake, and every call would otherwise wait the longer `connectTimeoutMs`).
   */
  #unresponsive = false;
  /** Why calls fail fast while {@link RedisEngine.#unresponsive}: the last stall or connection failure. */
  #lastFailure: CacheError | undefined;
  /** The background loop that looks for a replacement connection is running. */
  #replacing = false;
  /** Abandon the connection attempt in progress (on close): its callers reject at once. */
  #abortConnect: (() => void) | undefined;
  #pending = 0;
  /**
   * Replies (and failures) received: counted, not timed, per command (a clock read costs ~50-100 ns); the
   * watchdog notes the time when the count moved since its last tick.
   */
  #replies = 0;
  #seenReplies = 0;
  /** When the last reply was noted (by the watchdog), or the first command after an idle spell was sent. */
  #lastProgress = 0;
  #watchdog: NodeJS.Timeout | undefined;
  /** Whether the server lets us run the mset script (an ACL may refuse @scripting). */
  readonly #msetScript: ScriptingState = { scripting: true };
  /** Near cache: tracking wiring for every connection (see {@link RedisEngine.track}). */
  #tracking: TrackingProvider | undefined;

  /** @param options - connection settings; no I/O happens until the first command. */
  constructor(options: RedisEngineOptions) {
    this.#options = options;
    this.#ctx = { target: describeTarget(options.url), timeoutMs: options.timeoutMs, standalone: true };
  }

  #createClient(): Client {
    let everReady = false;
    const { connectTimeoutMs, keepAliveMs, maxQueueLength, url } = this.#options;
    const client = createRedisClient({
      url,
      disableOfflineQueue: true,
      commandsQueueMaxLength: maxQueueLength,
      // No per-command timer: the watchdog below bounds hangs with one timer per connection.
      commandOptions: { timeout: 0 },
      ...(this.#tracking && trackingClientOptions(this.#tracking)),
      socket: {
        connectTimeout: connectTimeoutMs,
        ...(keepAliveMs === false
          ? { keepAlive: false }
          : { keepAlive: true, keepAliveInitialDelay: keepAliveMs }),
        // Give up on the first connection attempt (the caller gets the error) and on rejected
        // credentials; otherwise reconnect with back-off while calls fail fast.
        reconnectStrategy: (retries: number, cause: Error) =>
          !everReady || isAuthFailure(cause) || this.#closed ? false : reconnectDelay(retries),
      },
    }) as Client;
    client.on('ready', () => {
      everReady = true;
    });
    // node-redis reports socket errors as events too; failures reach callers through their commands.
    client.on('error', () => {});
    return client;
  }

  /** {@inheritDoc Engine.track} */
  track(listener: TrackingListener): void {
    this.#tracking = new TrackingProvider(listener);
  }

  #connect(): Promise<Client> {
    if (this.#closed) return this.#closedError();
    this.#connecting ??= this.#openClient().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #openClient(): Promise<Client> {
    const client = this.#createClient();
    const { connectTimeoutMs, timeoutMs } = this.#options;
    const deadlineMs = this.#unresponsive ? Math.min(connectTimeoutMs, timeoutMs) : connectTimeoutMs;
    const aborted = new Promise<never>((_, reject) => {
      this.#abortConnect = () => reject(new CacheConnectionError('the client is closed'));
    });
    try {
      await withDeadline(Promise.race([client.connect(), aborted]), deadlineMs, () => {
        client.destroy();
        return new CacheTimeoutError(`could not connect to ${this.#ctx.target} within ${deadlineMs} ms`);
      });
    } catch (err) {
      if (client.isOpen) client.destroy();
      if (this.#closed) throw new CacheConnectionError('the client is closed');
      const failure = toCacheError(err, this.#ctx);
      // No answer in time (a frozen server accepts TCP but never answers the handshake): as a stall.
      if (failure instanceof CacheTimeoutError) this.#markUnresponsive(failure);
      else if (this.#unresponsive) this.#lastFailure = failure;
      throw failure;
    } finally {
      this.#abortConnect = undefined;
    }
    if (this.#closed) {
      client.destroy();
      throw new CacheConnectionError('the client is closed');
    }
    this.#client = client;
    this.#unresponsive = false;
    this.#lastFailure = undefined;
    this.#startWatchdog();
    return client;
  }

  /**
   * The server did not answer in time (`failure`): until a replacement connection answers, calls fail
   * fast with it, and a background loop tries to connect (each attempt within `timeoutMs`), first at once
   * and then with {@link reconnectDelay} back-off. The loop's timers never keep Node alive; it stops on
   * success, on rejected credentials (then each call connects, and reports them, itself) and on close.
   */
  #markUnresponsive(failure: CacheError): void {
    this.#unresponsive = true;
    this.#lastFailure = failure;
    if (this.#replacing || this.#closed) return;
    this.#replacing = true;
    const attempt = (retries: number): void => {
      if (this.#closed || !this.#unresponsive) {
        this.#replacing = false;
        return;
      }
      this.#connect().then(
        () => {
          this.#replacing = false;
        },
        (err: unknown) => {
          // Rejected credentials are not a frozen server: stop, and let each call try (and report) again.
          if (isAuthFailure(err)) this.#unresponsive = false;
          if (this.#closed || !this.#unresponsive) this.#replacing = false;
          else setTimeout(attempt, reconnectDelay(retries + 1), retries + 1).unref();
        },
      );
    };
    // After the caller that saw the failure: a call made in the same tick fails fast too.
    setTimeout(attempt, 0, 0).unref();
  }

  /** The error of a call made while the server is unresponsive: a copy of the last failure, at once. */
  #failFast(): Promise<never> {
    const last = this.#lastFailure as CacheError;
    const Class = last.constructor as new (message: string, options: { cause: unknown }) => CacheError;
    return Promise.reject(
      new Class(`${last.message} (failing fast until a new connection answers)`, { cause: last }),
    );
  }

  #startWatchdog(): void {
    if (this.#watchdog) return;
    const { timeoutMs } = this.#options;
    // Replies are noted at the tick after they arrive (up to one interval late, never early): with ticks
    // every timeoutMs / 20, a stall is still detected within 1.1 x timeoutMs of the last reply.
    this.#watchdog = startWatchdog(
      Math.max(10, Math.floor(timeoutMs / 20)),
      (now) => {
        if (this.#replies !== this.#seenReplies) {
          this.#seenReplies = this.#replies;
          this.#lastProgress = now;
        } else if (this.#pending > 0 && now - this.#lastProgress > timeoutMs) {
          this.#onStall();
        }
      },
      (now) => {
        this.#seenReplies = this.#replies;
        this.#lastProgress = now;
      },
    );
  }

  #onStall(): void {
    const client = this.#client;
    this.#lastProgress = Date.now();
    if (!client) return;
    this.#stalled.add(client);
    this.#dropClient();
    client.destroy();
    this.#markUnresponsive(
      new CacheTimeoutError(`${this.#ctx.target} did not reply within ${this.#options.timeoutMs} ms`),
    );
  }

  #dropClient(): void {
    this.#client = undefined;
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }

  /**
   * Run `command` on the connection, connecting first when there is none. The hot path is one plain
   * call and one `.then`: no async frames, no per-command timer.
   */
  #run<T>(command: (client: Client) => Promise<T>): Promise<T> {
    const refused = this.#admit();
    if (refused !== undefined) return refused;
    // A client that gave up reconnecting (rejected credentials) is closed: connect afresh, so the caller
    // sees why (and platform mode can fetch new credentials).
    const client = this.#client;
    if (client === undefined || !client.isOpen) return this.#reconnect(command);
    return this.#track(client, command);
  }

  #reconnect<T>(command: (client: Client) => Promise<T>): Promise<T> {
    if (this.#unresponsive && !this.#closed) return this.#failFast();
    return this.#connect().then((fresh) => this.#track(fresh, command));
  }

  #track<T>(client: Client, command: (client: Client) => Promise<T>): Promise<T> {
    let reply: Promise<T>;
    try {
      reply = command(client);
    } catch (err) {
      return Promise.reject(toCacheError(err, this.#ctx));
    }
    return this.#watch(client, reply);
  }

  /** Count `reply` as outstanding until it settles (see the watchdog); failures become {@link CacheError}s. */
  #watch<T>(client: Client, reply: Promise<T>): Promise<T> {
    if (this.#pending++ === 0) this.#lastProgress = Date.now();
    return reply.then(this.#onReply as (value: T) => T, this.#onFailure(client));
  }

  /** Settles a reply: shared by every command (no closure per command). */
  readonly #onReply = (value: unknown): unknown => {
    this.#pending--;
    this.#replies++;
    return value;
  };

  /** The failure handler of commands sent on `client` (one per connection, not per command). */
  #failureHandler: { connection: Client; handle: (err: unknown) => never } | undefined;

  #onFailure(client: Client): (err: unknown) => never {
    const known = this.#failureHandler;
    if (known !== undefined && known.connection === client) return known.handle;
    const handle = (err: unknown): never => {
      this.#pending--;
      this.#replies++;
      throw this.#stalled.has(client)
        ? new CacheTimeoutError(`${this.#ctx.target} did not reply within ${this.#options.timeoutMs} ms`, {
            cause: err,
          })
        : toCacheError(err, this.#ctx);
    };
    this.#failureHandler = { connection: client, handle };
    return handle;
  }

  /**
   * `sendCommand(args)` on the connection: {@link RedisEngine.#run} without a closure per command. The
   * `get`s of this tick go first (see {@link GetBatch}): no command overtakes one issued before it.
   */
  #send<T>(args: string[]): Promise<T> {
    return this.#admit() ?? this.#sendNow(args);
  }

  /**
   * Before a command other than a coalesced call: the rejection when the engine is closed, or when
   * `maxQueueLength` calls already wait counting the coalesced `get`s and `set`s waiting for their batch's
   * reply (node-redis's own bound counts each batch as one command, so without this the commands of a
   * tick after a batch would be accepted beyond the bound); else `undefined`, after sending the open batch
   * (no command overtakes one issued before it).
   */
  #admit(): Promise<never> | undefined {
    if (this.#closed) return this.#closedError();
    if (this.#reads.pending) this.#reads.flush();
    if (this.#writes.pending) this.#writes.flush();
    const waiting = this.#reads.waiting + this.#writes.waiting;
    if (waiting !== 0 && waiting + this.#pending >= this.#options.maxQueueLength) return this.#refuseFull();
    return undefined;
  }

  /** The rejection of a call beyond `maxQueueLength` calls waiting. */
  readonly #refuseFull = (): Promise<never> => Promise.reject(queueFullError(this.#ctx));

  /** {@link RedisEngine.#send} without flushing the batch of `get`s (the batch's own commands). */
  readonly #sendNow = <T>(args: string[]): Promise<T> => {
    const client = this.#client;
    if (client === undefined || !client.isOpen) {
      return this.#reconnect((fresh) => fresh.sendCommand(args) as Promise<T>);
    }
    let reply: Promise<T>;
    try {
      reply = client.sendCommand(args) as Promise<T>;
    } catch (err) {
      return Promise.reject(toCacheError(err, this.#ctx));
    }
    return this.#watch(client, reply);
  };

  /** The `get`s of this tick, sent as one `MGET` ({@link GetBatch}). */
  readonly #reads: GetBatch = new GetBatch(
    this.#sendNow,
    // The coalesced `set`s waiting count too: one bound for every call on the connection.
    () => this.#options.maxQueueLength - this.#pending - this.#writes.waiting,
    this.#refuseFull,
  );

  /** The `set`s without a TTL of this tick, sent as one `MSET` ({@link SetBatch}). */
  readonly #writes: SetBatch = new SetBatch(
    this.#sendNow,
    () => this.#options.maxQueueLength - this.#pending - this.#reads.waiting,
    this.#refuseFull,
  );

  /** {@inheritDoc Engine.get} Coalesced with the other `get`s of this tick ({@link GetBatch}). */
  get(key: string): Promise<string | null> {
    if (this.#closed) return this.#closedError();
    if (this.#writes.pending) this.#writes.flush();
    return this.#reads.get(key);
  }

  /**
   * The failure of a call made after {@link RedisEngine.close}: while `close()` waits for the batches of
   * `get`s sent before it ({@link GetBatch.settled}), the connection is still open, but only their
   * commands go out on it.
   */
  #closedError(): Promise<never> {
    return Promise.reject(new CacheConnectionError('the client is closed'));
  }

  /**
   * {@inheritDoc Engine.set} Without a TTL, coalesced with the other such `set`s of this tick
   * ({@link SetBatch}); with one, a `SET ... EX` of its own.
   */
  set(key: string, value: string, ttlSeconds?: number): Promise<void> {
    if (ttlSeconds !== undefined) return this.#send<void>(['SET', key, value, 'EX', String(ttlSeconds)]);
    if (this.#closed) return this.#closedError();
    if (this.#reads.pending) this.#reads.flush();
    return this.#writes.set(key, value);
  }

  /** {@inheritDoc Engine.mget} */
  mget(keys: readonly string[]): Promise<(string | null)[]> {
    return this.#send(['MGET', ...keys]);
  }

  /** {@inheritDoc Engine.mset} */
  async mset(entries: readonly (readonly [string, string])[], ttlSeconds?: number): Promise<void> {
    if (ttlSeconds === undefined) {
      const args = ['MSET'];
      for (const [key, value] of entries) args.push(key, value);
      await this.#send(args);
      return;
    }
    // One script of SET EX (or, where scripting is refused, MULTI/EXEC of SET EX): the whole mapping
    // appears at once, each key with its TTL. The script is one command and one reply instead of
    // 102 of each, measured 1.3x faster.
    const ttl = String(ttlSeconds);
    await msetWithTtl(
      this.#sendArgs,
      () =>
        this.#run((client) => {
          // node-redis queues a MULTI while reconnecting even with disableOfflineQueue: fail fast instead,
          // as every other command does, so the transaction never runs later behind the caller's back.
          if (!client.isReady) throw new ClientOfflineError();
          const multi = client.multi();
          for (const [key, value] of entries) multi.addCommand(['SET', key, value, 'EX', ttl]);
          return multi.exec();
        }),
      this.#msetScript,
      entries,
      ttlSeconds,
    );
  }

  readonly #sendArgs: SendArgs = (args) => this.#send(args);

  /** {@inheritDoc Engine.unlink} */
  unlink(keys: readonly string[]): Promise<number> {
    return this.#send(['UNLINK', ...keys]);
  }

  /** {@inheritDoc Engine.exists} */
  exists(keys: readonly string[]): Promise<number> {
    return this.#send(['EXISTS', ...keys]);
  }

  /** {@inheritDoc Engine.expire} */
  async expire(key: string, ttlSeconds: number): Promise<boolean> {
    return (await this.#send<number>(['EXPIRE', key, String(ttlSeconds)])) === 1;
  }

  /** {@inheritDoc Engine.ttl} */
  ttl(key: string): Promise<number> {
    return this.#send(['TTL', key]);
  }

  /** {@inheritDoc Engine.pttl} */
  pttl(key: string): Promise<number> {
    return this.#send(['PTTL', key]);
  }

  readonly #sendOne: SendOne = (_key, args) => this.#send(args);
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

  /** {@inheritDoc Engine.scan} */
  async *scan(match: string, count: number): AsyncIterable<string[]> {
    let cursor = '0';
    do {
      const [next, keys] = (await this.#send(['SCAN', cursor, 'MATCH', match, 'COUNT', String(count)])) as [
        string,
        string[],
      ];
      cursor = next;
      if (keys.length > 0) yield keys;
    } while (cursor !== '0');
  }

  /** {@inheritDoc Engine.ping} */
  async ping(): Promise<void> {
    await this.#send(['PING']);
  }

  /**
   * {@inheritDoc Engine.close}
   *
   * Bounded on a frozen server: a connection attempt in progress is abandoned at once, and calls in
   * flight get `timeoutMs` to finish; then the connection is destroyed and they reject with
   * {@link CacheTimeoutError}.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    // The get()s and set()s of this tick were issued before close(): they are sent, as every earlier
    // command was (at most one of the two batches is open: each kind flushes the other).
    this.#reads.flush();
    this.#writes.flush();
    this.#closed = true;
    this.#abortConnect?.();
    await this.#connecting?.catch(() => undefined);
    const client = this.#client;
    if (client?.isOpen) {
      const { timeoutMs } = this.#options;
      try {
        // A batch's EXISTS or GETs follow its MGET's reply: they go out on this connection before it closes.
        const drained = this.#reads.settled().then(() => (client.isOpen ? client.close() : undefined));
        await withDeadline(drained, timeoutMs, () => {
          this.#stalled.add(client);
          client.destroy();
          return new CacheTimeoutError(`${this.#ctx.target} did not finish closing within ${timeoutMs} ms`);
        });
      } catch {
        if (client.isOpen) client.destroy();
      }
    }
    this.#dropClient();
  }
}
