/**
 * `delete` and `flush*` of a key in this process win over a fill of it that is already running: the fill
 * may still hand its result to the callers that were waiting for it, but it does not store it, and a
 * caller that arrives after the delete starts a fill of its own instead of joining the old one.
 *
 * (Other processes learn about a delete by the key being gone; a fill there that started before it may
 * still store its result, as with any cache without tags: use tags or `invalidate` for that.)
 *
 * @module
 */

/** One running fill; `voided` once its key was deleted or flushed in this process. */
export interface FillTicket {
  voided: boolean;
}

/** The fills running in one client, by in-process key identity (`<prefix>\0<key>`). */
export class FillTickets {
  readonly #running = new Map<string, Set<FillTicket>>();

  /** A ticket for a fill of `id` starting now (before its factory runs). */
  begin(id: string): FillTicket {
    const ticket: FillTicket = { voided: false };
    let set = this.#running.get(id);
    if (set === undefined) {
      set = new Set();
      this.#running.set(id, set);
    }
    set.add(ticket);
    return ticket;
  }

  /** The fill of `ticket` is over. */
  end(id: string, ticket: FillTicket): void {
    const set = this.#running.get(id);
    set?.delete(ticket);
    if (set?.size === 0) this.#running.delete(id);
  }

  /** Void the running fills of `ids` (`undefined`: of every key). */
  void(ids?: readonly string[]): void {
    const sets = ids === undefined ? [...this.#running.values()] : ids.map((id) => this.#running.get(id));
    for (const set of sets) for (const ticket of set ?? []) ticket.voided = true;
  }
}
