/**
 * The fill lock as a lease: while its factory runs, the owner extends the lock every third of
 * `lockTtlMs` (compare-and-extend with its token), so `lockTtlMs` can be short and a slow factory is
 * never run twice in parallel across processes, while a dead owner's lock still expires within
 * `lockTtlMs`.
 *
 * @module
 */

/** Renews one lock until stopped. Timers are unref'd: a lease never keeps a process alive. */
export class Lease {
  readonly #extend: () => Promise<boolean>;
  readonly #everyMs: number;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  /**
   * Start renewing.
   * @param extend - one compare-and-extend; `false` when the lock is no longer this owner's (expired and
   * taken, or released by `close()`): renewing stops. A rejection (the cache failing) is retried at the
   * next tick; the lock expires by itself if the cache stays down.
   * @param lockTtlMs - the lock's lifetime in milliseconds; renewed every third of it.
   */
  constructor(extend: () => Promise<boolean>, lockTtlMs: number) {
    this.#extend = extend;
    this.#everyMs = Math.max(1, Math.floor(lockTtlMs / 3));
    this.#schedule();
  }

  /** Stop renewing (idempotent). The lock itself is released by its owner. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#extend().then(
        (held) => {
          if (held) this.#schedule();
          else this.stop();
        },
        () => this.#schedule(),
      );
    }, this.#everyMs);
    this.#timer.unref();
  }
}
