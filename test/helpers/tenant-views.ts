/**
 * Test helper (issue 18): run a suite written for `new CacheClient(options)` through `TenantCaches`
 * views. Options with nothing but the connection, tenant and prefix get a view of one `TenantCaches`
 * shared by the whole suite (many tenants, one connection); options with more (codec, near cache, env,
 * logger...) get a view of a `TenantCaches` of their own with those options.
 */
import {
  type CacheClient,
  type CacheClientOptions,
  TenantCaches,
  type TenantCachesOptions,
} from '../../src/index.js';

/** Makes views for client options; {@link TenantViews.closeAll} closes every `TenantCaches`. */
export class TenantViews {
  readonly #shared = new Map<string, TenantCaches>();
  readonly #own: TenantCaches[] = [];

  /** The view standing for `new CacheClient(options)`. */
  readonly open = (options: CacheClientOptions): CacheClient => {
    const { connectionConfig = {}, additionalPrefix, session, nearCache, ...rest } = options;
    if (session !== undefined) throw new Error('TenantViews: platform sessions are not views');
    const { tenant, ...config } = connectionConfig;
    const view = { additionalPrefix: additionalPrefix ?? null };
    // Typed as the peak codec's, as `open` returns (the conformance suites read values untyped).
    const cachesOptions = {
      connectionConfig: config,
      ...(nearCache === undefined ? {} : { nearCache }),
      ...rest,
    } as TenantCachesOptions<'peak'>;
    if (nearCache === undefined && Object.keys(rest).length === 0) {
      const id = JSON.stringify(config);
      let caches = this.#shared.get(id);
      if (caches === undefined) {
        caches = new TenantCaches(cachesOptions);
        this.#shared.set(id, caches);
      }
      return caches.tenant(tenant as string, view);
    }
    const caches = new TenantCaches(cachesOptions);
    this.#own.push(caches);
    return caches.tenant(tenant as string, view);
  };

  /** How many `TenantCaches` were created (the suite-wide shared ones included). */
  get created(): number {
    return this.#shared.size + this.#own.length;
  }

  /** Close every `TenantCaches` (after the views were closed). */
  async closeAll(): Promise<void> {
    const all = [...this.#shared.values(), ...this.#own.splice(0)];
    this.#shared.clear();
    await Promise.all(all.map((c) => c.close()));
  }
}
