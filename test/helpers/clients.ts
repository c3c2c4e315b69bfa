/** Test helper: the clients a test file opens, closed together in `afterAll`. */
import { CacheClient, type CacheClientOptions } from '../../src/index.js';

/** Opens clients and closes them all at the end. */
export class ClientPool {
  readonly #clients: CacheClient[] = [];

  /**
   * A new client with `options` (made by `create`: default `new CacheClient`), closed by
   * {@link ClientPool.closeAll}.
   */
  open(options: CacheClientOptions, create?: (options: CacheClientOptions) => CacheClient): CacheClient {
    return this.track(create === undefined ? new CacheClient(options) : create(options));
  }

  /** Close `client` with the others at the end. */
  track(client: CacheClient): CacheClient {
    this.#clients.push(client);
    return client;
  }

  /** Close every client opened or tracked. */
  async closeAll(): Promise<void> {
    await Promise.all(this.#clients.splice(0).map((c) => c.close()));
  }
}
