/**
 * Read coalescing for one connection: the `GET`s issued in one tick go to the server as one `MGET`.
 *
 * A service with many requests in flight issues many `get`s between two socket reads. Sent one by one,
 * each is a command the server parses, dispatches and answers, and one the driver encodes and decodes;
 * sent as one `MGET`, the server does a single dispatch for all of them (measured on a 2-core machine at
 * 256 in flight: ~1.5x the calls per second of the raw driver sending `GET`s, and ~2x for misses).
 *
 * What a caller sees does not change:
 *
 * - **Order.** A batch goes out at the end of the tick (`process.nextTick`, after every promise job
 *   queued by then), or at once when it reaches `MAX_BATCH_KEYS` (`tick-batch.ts`), or just before any other command
 *   on the same connection ({@link GetBatch.flush}): a `get` is never sent after a command the caller
 *   issued later, so a `get` followed by a `set` of the same key in one tick still reads the old value.
 * - **Errors.** `MGET` answers nil for a key holding another type where `GET` fails with `WRONGTYPE`.
 *   When a batch has nil answers, one `EXISTS` of those keys tells: 0 (the usual case) means every one is
 *   missing; otherwise each nil key is read again with its own `GET`, which gives its caller the server's
 *   error. A nil key that holds a string by then was written after the `MGET` (by a command the caller
 *   issued later in the same tick, say, which went out before the `EXISTS`): its caller gets `null`, the
 *   answer at the `MGET`'s place in the order, not the later value. A miss in a batch of two or more
 *   therefore takes one more round trip; a lone `get` is sent as a plain `GET`.
 * - **Refusals.** When the server answers the `MGET` with an error (an ACL without `MGET`: `NOPERM`; a
 *   cluster node reached without `cluster: true`: `CROSSSLOT`), each key is read again with its own `GET`,
 *   whose answer (a value, or `MOVED` with its hint) its caller gets; after `NOPERM`, `CROSSSLOT` or
 *   `MOVED` the connection sends plain `GET`s from then on. Where an ACL refuses `EXISTS`, the nil keys
 *   are read again the same way.
 * - **Failures.** A failed batch fails every `get` in it, each with the same error (as the commands would
 *   have failed together on a lost connection).
 * - **Close.** The engine closes its connection only once every batch sent has sent its follow-ups
 *   ({@link GetBatch.settled}): a `get` issued before `close()` is answered, miss or not.
 *
 * Where a caller can tell (tested as skipped cases in `test/get-batch-adversarial.test.ts`): a key of
 * another type read in a batch and deleted by a later command of the same tick reads `null`, not
 * `WRONGTYPE` (the `EXISTS` comes after the delete); the first batch whose `MGET` is refused (`NOPERM`,
 * `CROSSSLOT`) re-reads its keys after the later commands of its tick; at `maxQueueLength`, an accepted
 * `get` whose follow-up `GET` finds the queue full fails with that instead of its `WRONGTYPE`.
 *
 * Only the standalone engine coalesces: on a cluster, keys of different slots cannot share an `MGET`.
 * The near cache's reads are not coalesced in effect (a miss reads `GET` then `PTTL`, which flushes).
 *
 * @module
 */
import { ErrorReply } from '@redis/client';
import { CacheError } from '../errors.js';
import {
  type Batch,
  REFUSED_FOR_GOOD,
  type SendCommand,
  type Waiter as Settles,
  TickBatch,
} from './tick-batch.js';

/** Settles one caller's `get`. */
type Waiter = Settles<string | null>;

/** Coalesces the `GET`s of one connection (see the module comment). */
export class GetBatch extends TickBatch<string | null> {
  /** Batches sent whose follow-up commands (`EXISTS`, `GET`s) may still be to send. */
  #unsettled = 0;
  /** Resolved by {@link GetBatch.settled} once {@link GetBatch.#unsettled} is 0. */
  readonly #onSettled: (() => void)[] = [];

  /**
   * @param send - sends one command on the connection; never called synchronously from {@link GetBatch.get}.
   * @param room - how many more calls may wait on the connection (see `TickBatch`).
   * @param refuse - the rejection of a call beyond that bound.
   */
  constructor(send: SendCommand, room: () => number, refuse: () => Promise<never>) {
    super(send, room, refuse, { single: 'GET', multi: 'MGET', maxChars: Number.POSITIVE_INFINITY });
  }

  /**
   * The value at `key` (`null` when missing), read in this tick's batch. Rejects at once, as node-redis
   * does for a full queue, when `room` calls already wait.
   */
  get(key: string): Promise<string | null> {
    return this.call(key);
  }

  /**
   * Resolves once every batch sent so far has sent all its commands (its `MGET`, any `EXISTS` and
   * `GET`s are answered or on the connection): the engine closes the connection after that, so that no
   * follow-up finds it closed. Never rejects.
   */
  settled(): Promise<void> {
    if (this.#unsettled === 0) return Promise.resolve();
    return new Promise((resolve) => this.#onSettled.push(resolve));
  }

  /** A batch sent no more commands of its own (see {@link GetBatch.settled}). */
  #done(): void {
    if (--this.#unsettled > 0) return;
    for (const resolve of this.#onSettled.splice(0)) resolve();
  }

  /** {@inheritDoc TickBatch.sendMany} */
  protected sendMany(batch: Batch<string | null>): void {
    const { args, waiters } = batch;
    this.#unsettled++;
    this.send<(string | null)[]>(args).then(
      (values) => {
        this.answered(waiters.length);
        this.#answer(args, waiters, values);
      },
      (err: unknown) => {
        this.answered(waiters.length);
        this.#refused(args.slice(1), waiters, err, false);
      },
    );
  }

  #answer(args: readonly string[], waiters: readonly Waiter[], values: readonly (string | null)[]): void {
    // The nil answers: each key missing or of another type when the MGET ran.
    const keys: string[] = [];
    const missing: Waiter[] = [];
    for (let i = 0; i < waiters.length; i++) {
      const value = values[i] ?? null;
      const waiter = waiters[i] as Waiter;
      if (value !== null) waiter.resolve(value);
      else {
        keys.push(args[i + 1] as string);
        missing.push(waiter);
      }
    }
    if (keys.length === 0) {
      this.#done();
      return;
    }
    this.send<number>(['EXISTS', ...keys]).then(
      (present) => {
        if (present === 0) {
          for (const waiter of missing) waiter.resolve(null);
          this.#done();
        } else this.#readEach(keys, missing, true);
      },
      (err: unknown) => this.#refused(keys, missing, err, true),
    );
  }

  /**
   * A batch command (`MGET`, `EXISTS`) failed for `keys`. On an error reply (the server refused the
   * command, the connection is fine), each key's own `GET` gives its caller the answer a `GET` would have
   * had; refusals every later batch would share turn coalescing off ({@link REFUSED_FOR_GOOD}). Any other
   * failure (a lost connection, a timeout) fails every caller with it. `nil`: the `MGET` answered nil
   * for every one of `keys` (see {@link GetBatch.#readEach}).
   */
  #refused(keys: readonly string[], waiters: readonly Waiter[], err: unknown, nil: boolean): void {
    if (!(err instanceof CacheError) || !(err.cause instanceof ErrorReply)) {
      for (const waiter of waiters) waiter.reject(err);
      this.#done();
      return;
    }
    this.noteRefusal(err);
    this.#readEach(keys, waiters, nil);
  }

  /**
   * One `GET` per key: `keys[i]` answers `waiters[i]`. `nil`: the `MGET` answered nil for every one of
   * `keys` (each was missing or of another type then), so a string read now was written after it (by a
   * command issued later, which went out before this `GET`) and its caller gets `null`, as a `GET` in the
   * `MGET`'s place would have answered; only an error (`WRONGTYPE`) is the `GET`'s own.
   */
  #readEach(keys: readonly string[], waiters: readonly Waiter[], nil: boolean): void {
    for (let i = 0; i < keys.length; i++) {
      const waiter = waiters[i] as Waiter;
      const reply = this.send<string | null>(['GET', keys[i] as string]);
      if (nil) reply.then(() => waiter.resolve(null), waiter.reject);
      else reply.then(waiter.resolve, waiter.reject);
    }
    this.#done();
  }
}
