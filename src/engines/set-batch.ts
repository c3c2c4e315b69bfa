/**
 * Write coalescing for one connection: the `set`s without a TTL issued in one tick go to the server as
 * one `MSET`, as the `get`s of a tick go as one `MGET` (see `get-batch.ts`, whose rules this follows).
 *
 * - **Order.** A batch goes out at the end of the tick, at once when it reaches `MAX_BATCH_KEYS` keys
 *   (`tick-batch.ts`), or just before any other command on the connection (a `get`, a `set` with a TTL,
 *   a delete...): no command overtakes one issued before it. Within a batch, `MSET` writes its keys in order, so a key
 *   set twice in one tick holds the later value, as with two `SET`s.
 * - **Only sets without a TTL.** A TTL needs `SET ... EX` per key (a script or `MULTI`, which an ACL may
 *   refuse, and whose fallback would have to be sent after later commands of the tick): a `set` with a
 *   TTL is one `SET ... EX`, as before. A lone `set` is a plain `SET`.
 * - **Failures.** `MSET` writes all its keys or none. A batch the server refuses (out of memory, an ACL
 *   without `MSET`, a replica, a cluster node reached without `cluster: true`) fails every `set` in it with
 *   that error, none written; a `set` refused alone would have failed the same way, except under an ACL
 *   that allows `SET` but not `MSET` or on a cluster node, where the connection then sends plain `SET`s
 *   from then on (the batches sent before that first refusal came back fail too). It is not retried key
 *   by key: the retry would go out after the later commands of the tick and could overwrite a value one
 *   of them wrote. A lost connection fails every `set` of the batch, as it would fail the commands.
 * - **Size.** A batch also goes out at once when its keys and values reach {@link MAX_BATCH_CHARS}: the
 *   watchdog fails every call of a connection when no reply comes within `timeoutMs`, and one `MSET`
 *   carrying many large values is answered only once all of them are received, where as many `SET`s
 *   would each be answered in turn. So a large value goes as a `SET` of its own (or ends a batch).
 * - **Queue bound.** A coalesced `set` counts as one call against `maxQueueLength`, which bounds the
 *   coalesced `get`s, the coalesced `set`s and the other commands of the connection together.
 *
 * @module
 */
import { type Batch, type SendCommand, TickBatch } from './tick-batch.js';

/**
 * Most characters (keys and values) in one coalesced `MSET`: a batch reaching it is sent at once, so that
 * its reply is not held back much longer than a single `SET`'s (see the module comment).
 */
export const MAX_BATCH_CHARS = 256 * 1024;

/** Coalesces the `set`s without a TTL of one connection (see the module comment). */
export class SetBatch extends TickBatch<void> {
  /**
   * @param send - sends one command on the connection; never called synchronously from {@link SetBatch.set}.
   * @param room - how many more calls may wait on the connection (see `TickBatch`).
   * @param refuse - the rejection of a call beyond that bound.
   */
  constructor(send: SendCommand, room: () => number, refuse: () => Promise<never>) {
    super(send, room, refuse, { single: 'SET', multi: 'MSET', maxChars: MAX_BATCH_CHARS });
  }

  /** Store `value` at `key` (no TTL) in this tick's batch. Rejects at once when `room` calls already wait. */
  set(key: string, value: string): Promise<void> {
    return this.call(key, value);
  }

  /** {@inheritDoc TickBatch.sendMany} */
  protected sendMany(batch: Batch<void>): void {
    const { args, waiters } = batch;
    this.send<void>(args).then(
      () => {
        this.answered(waiters.length);
        for (const waiter of waiters) waiter.resolve();
      },
      (err: unknown) => {
        this.answered(waiters.length);
        this.noteRefusal(err);
        for (const waiter of waiters) waiter.reject(err);
      },
    );
  }
}
