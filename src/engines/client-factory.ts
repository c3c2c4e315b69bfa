/**
 * node-redis clients built from one command class per RESP version.
 *
 * `createClient(options)` of node-redis 6 (`RedisClient.create`) builds its command class
 * (`attachConfig`: a prototype method per Redis command) from the options it is given, and caches only
 * the last one, keyed by the JSON of the whole options, URL and credentials included. Every connection
 * with a URL other than the previous one's (one per tenant in a pooled `TenantCaches`) rebuilt it:
 * 35-50 ms of synchronous CPU per connection opened, blocking every other call of the process. The class
 * depends only on the RESP version (and modules, functions and scripts, which this package never
 * passes), so this module builds it once per RESP version with `RedisClient.factory({ RESP })` and
 * creates every client from it: opening a tenant's connection costs only its socket and handshake.
 *
 * @module
 */
import { RedisClient, type RedisClientOptions, type RedisClientType } from '@redis/client';

type CreateClient = (options: RedisClientOptions) => RedisClientType;

/** One client factory per RESP version (2: the default; 3: near cache tracking). */
const factories = new Map<2 | 3, CreateClient>();

/**
 * A node-redis client for `options` (as `createClient(options)`), created from the command class of its
 * RESP version, built on first use only.
 */
export function createRedisClient(options: RedisClientOptions & { RESP?: 2 | 3 }): RedisClientType {
  const resp = options.RESP ?? 2;
  let create = factories.get(resp);
  if (create === undefined) {
    create = RedisClient.factory({ RESP: resp }) as unknown as CreateClient;
    factories.set(resp, create);
  }
  return create(options);
}
