/**
 * What read and write coalescing share (`get-batch.ts`, `set-batch.ts`): the calls of one tick gathered
 * into one multi-key command, sent at the end of the tick, at once when the batch is full, or before any
 * other command on the connection; each call counted against the connection's bound until its batch is
 * answered.
 *
 * @module
 */

import { isReplyCode } from './redis-errors.js';

/** Most keys in one coalesced command: a larger batch is sent at once and a new one begins. */
export const MAX_BATCH_KEYS = 256;

/**
 * Error codes of a batch command refused for a reason every later batch would share: an ACL without the
 * multi-key command (`NOPERM`), a cluster node reached without `cluster: true` (`CROSSSLOT`, `MOVED`).
 */
export const REFUSED_FOR_GOOD = ['NOPERM', 'CROSSSLOT', 'MOVED'] as const;

/** Sends one command on the connection (the engine's path, with its watchdog and error mapping). */
export type SendCommand = <T>(args: string[]) => Promise<T>;

/** Settles one caller's call with `V`. */
export interface Waiter<V> {
  readonly resolve: (value: V) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * The calls of one tick: `args` is the command and its arguments (`['MGET', key, ...]`,
 * `['MSET', key, value, ...]`), `waiters[i]` waits for the `i`-th key; `chars` counts the characters of
 * the arguments.
 */
export interface Batch<V> {
  readonly args: string[];
  readonly waiters: Waiter<V>[];
  chars: number;
}

/** The commands of one kind of call: `GET` and `MGET`, or `SET` and `MSET`. */
export interface BatchCommands {
  /** The command of one call (`GET key`, `SET key value`): a lone call, or every call once coalescing is off. */
  readonly single: string;
  /** The command of a batch (`MGET key...`, `MSET key value...`). */
  readonly multi: string;
  /** A batch whose arguments reach this many characters is sent at once. */
  readonly maxChars: number;
}

/** The gathering of one kind of call into batches (see the module comment); `V` is what a call resolves to. */
export abstract class TickBatch<V> {
  /** Sends one command on the connection; never called synchronously from {@link TickBatch.call}. */
  protected readonly send: SendCommand;
  readonly #room: () => number;
  readonly #refuse: () => Promise<never>;
  readonly #commands: BatchCommands;
  #open: Batch<V> | undefined;
  /** Calls accepted and not yet answered by their batch's command (a lone call is node-redis's to count). */
  #waiting = 0;
  /** Cleared when a batch is refused for good ({@link REFUSED_FOR_GOOD}): plain commands from then on. */
  #coalesce = true;
  readonly #flushOpen = (): void => {
    const open = this.#open;
    if (open !== undefined) this.#take(open);
  };

  /**
   * @param send - sends one command on the connection.
   * @param room - how many more calls may wait on the connection (`maxQueueLength` less the commands
   *   outstanding and the other kind's coalesced calls waiting): coalesced calls count one each against
   *   it, as the commands they replace would.
   * @param refuse - the rejection of a call beyond that bound (as node-redis rejects on a full queue).
   * @param commands - the commands of this kind of call, and the size that sends a batch at once.
   */
  constructor(send: SendCommand, room: () => number, refuse: () => Promise<never>, commands: BatchCommands) {
    this.send = send;
    this.#room = room;
    this.#refuse = refuse;
    this.#commands = commands;
  }

  /**
   * One call of `key` (and `value`, for a write): added to this tick's batch, opening one (sent at the end
   * of the tick) if none is open; the batch goes at once when it is full. Once coalescing is off, its
   * own single command. Rejects at once when `room` calls already wait.
   */
  protected call(key: string, value?: string): Promise<V> {
    const { single, multi, maxChars } = this.#commands;
    if (!this.#coalesce) return this.send(value === undefined ? [single, key] : [single, key, value]);
    if (this.#waiting >= this.#room()) return this.#refuse();
    this.#waiting++;
    let batch = this.#open;
    if (batch === undefined) {
      batch = { args: [multi], waiters: [], chars: 0 };
      this.#open = batch;
      process.nextTick(this.#flushOpen);
    }
    const { args, waiters } = batch;
    const reply = new Promise<V>((resolve, reject) => {
      waiters.push({ resolve, reject });
    });
    if (value === undefined) {
      args.push(key);
      batch.chars += key.length;
    } else {
      args.push(key, value);
      batch.chars += key.length + value.length;
    }
    if (waiters.length >= MAX_BATCH_KEYS || batch.chars >= maxChars) this.#take(batch);
    return reply;
  }

  /** Sends the open batch now, if any: called before every other command on the connection. */
  flush(): void {
    const open = this.#open;
    if (open !== undefined) this.#take(open);
  }

  /** Calls accepted and not yet answered by their batch: they count against the connection's bound. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Whether calls are waiting for the end of the tick. */
  get pending(): boolean {
    return this.#open !== undefined;
  }

  /** `count` calls of a batch sent were answered (or failed): they no longer wait. */
  protected answered(count: number): void {
    this.#waiting -= count;
  }

  /**
   * Turn coalescing off when `err` (a batch command's failure) is a refusal every later batch would share
   * ({@link REFUSED_FOR_GOOD}).
   */
  protected noteRefusal(err: unknown): void {
    if (REFUSED_FOR_GOOD.some((code) => isReplyCode(err, code))) this.#coalesce = false;
  }

  /** Sends `batch` (no longer open): a lone call as its single command, more with {@link TickBatch.sendMany}. */
  #take(batch: Batch<V>): void {
    if (this.#open === batch) this.#open = undefined;
    const { args, waiters } = batch;
    if (waiters.length > 1) {
      this.sendMany(batch);
      return;
    }
    this.#waiting--;
    const only = waiters[0] as Waiter<V>;
    args[0] = this.#commands.single;
    this.send<V>(args).then(only.resolve, only.reject);
  }

  /**
   * Send `batch` of two or more calls (no longer open) as its multi-key command; call
   * {@link TickBatch.answered} when its calls stop waiting.
   */
  protected abstract sendMany(batch: Batch<V>): void;
}
