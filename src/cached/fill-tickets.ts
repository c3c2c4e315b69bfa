/**
 * A later `delete`, `flush*`, `invalidate` or `invalidateTags` in this process wins over a fill that is
 * already running: the fill may still hand its result to the callers that were waiting for it, but it
 * does not store it (an abandoned fill's late result included), and a caller that arrives afterwards
 * starts a fill of its own instead of joining the old one (the in-flight entry is dropped too).
 *
 * (Other processes learn about a delete by the key being gone; a fill there that started before it may
 * still store its result, as with any cache without tags: use tags or `invalidate`, whose stamps make such
 * a result stale everywhere, see `tags.ts`.)
 *
 * @module
 */

/** One running fill; `voided` once its key was deleted, flushed or invalidated in this process. */
export interface FillTicket {
  voided: boolean;
}

/**
 * The fills running in one client (or, issue 18, in every view of a `TenantCaches`), by in-process key
 * identity (`[<tenant>\0]<prefix>\0<key>`).
 */
export class FillTickets {
  readonly #running = new Map<string, Set<FillTicket>>();

  /** `ticket`'s fill of `id` starts now (before its factory runs). */
  begin(id: string, ticket: FillTicket): void {
    let set = this.#running.get(id);
    if (set === undefined) {
      set = new Set();
      this.#running.set(id, set);
    }
    set.add(ticket);
  }

  /** The fill of `ticket` is over. */
  end(id: string, ticket: FillTicket): void {
    const set = this.#running.get(id);
    set?.delete(ticket);
    if (set?.size === 0) this.#running.delete(id);
  }

  /** Void the running fills of `ids`. */
  void(ids: readonly string[]): void {
    for (const id of ids) for (const ticket of this.#running.get(id) ?? []) ticket.voided = true;
  }

  /** Void the running fills whose identity starts with `scope` (`<tenant>\0`: the tenant's; `''`: all). */
  voidScope(scope: string): void {
    for (const [id, set] of this.#running) {
      if (id.startsWith(scope)) for (const ticket of set) ticket.voided = true;
    }
  }
}
