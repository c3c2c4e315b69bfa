/**
 * The store of a plain `new CacheClient(...)`: one connection source, one engine, one near cache, all
 * its own; closing the client closes them.
 *
 * @module
 */
import type { ConnectionSource } from '../connection.js';
import type { Engine } from '../engines/engine.js';
import type { CacheLogger } from '../logger.js';
import type { NearCache } from '../near-cache/near-cache.js';
import type { ConnectionSettings } from '../options.js';
import type { Connected, ViewStore } from './binding.js';
import { EngineSlot } from './engine-slot.js';

/** A store with exactly one view: the client that created it. */
export class OwnStore implements ViewStore {
  readonly #slot: EngineSlot;
  readonly near: NearCache | undefined;
  readonly cachedState = undefined;
  readonly stats = undefined;

  constructor(
    source: ConnectionSource,
    settings: ConnectionSettings,
    near: NearCache | undefined,
    logger: CacheLogger,
  ) {
    this.near = near;
    this.#slot = new EngineSlot({ source, settings, near, logger });
  }

  get kind(): string {
    return this.#slot.source.kind;
  }

  get tenant(): string | undefined {
    const source = this.#slot.source;
    return this.#slot.connected?.tenant ?? (source.kind === 'direct' ? source.tenant : undefined);
  }

  current(): Connected | undefined {
    return this.#slot.connected;
  }

  connect(): Promise<Connected> {
    return this.#slot.connect();
  }

  recover(conn: Connected, err: unknown): Promise<Connected> {
    return this.#slot.recover(conn, err);
  }

  closed(): boolean {
    return this.#slot.closed;
  }

  close(beforeClose: (engine: Engine) => Promise<void>): Promise<void> {
    return this.#slot.close(beforeClose);
  }
}
