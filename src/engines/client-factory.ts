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
 * `createCluster(options)` has the same single-entry cache twice: for its own class, and (in its slots
 * table) for the class of its node connections, both keyed by the JSON of the cluster options, whose
 * `defaults` carry the credentials. Measured: 20 cluster clients of 20 tenants with their own passwords
 * took 3.9-5.7 s of synchronous CPU to create, 20 with the same options 63 ms. So the cluster class is
 * built once per RESP version here too, and credentials go into a `credentialsProvider` (a function,
 * which JSON leaves out) instead of `defaults.username`/`password`: tenants of one cluster then share
 * one node connection class.
 *
 * @module
 */
import {
  RedisClient,
  type RedisClientOptions,
  type RedisClientType,
  RedisCluster,
  type RedisClusterOptions,
  type RedisClusterType,
} from '@redis/client';

type Resp = 2 | 3;

/**
 * `create(options)` through a factory built once per RESP version by `build(resp)` (node-redis's
 * `factory({ RESP })`: the command class), kept in `factories`.
 */
function perResp<O extends { RESP?: Resp }, R>(
  factories: Map<Resp, (options: O) => R>,
  build: (resp: Resp) => (options: O) => R,
  options: O,
): R {
  const resp = options.RESP ?? 2;
  let create = factories.get(resp);
  if (create === undefined) {
    create = build(resp);
    factories.set(resp, create);
  }
  return create(options);
}

type ClientOptions = RedisClientOptions & { RESP?: Resp };
type ClusterOptions = RedisClusterOptions & { RESP?: Resp };

/** One client factory per RESP version (2: the default; 3: near cache tracking). */
const clientFactories = new Map<Resp, (options: ClientOptions) => RedisClientType>();
/** One cluster client factory per RESP version. */
const clusterFactories = new Map<Resp, (options: ClusterOptions) => RedisClusterType>();

/**
 * A node-redis client for `options` (as `createClient(options)`), created from the command class of its
 * RESP version, built on first use only.
 */
export function createRedisClient(options: ClientOptions): RedisClientType {
  return perResp(
    clientFactories,
    (RESP) => RedisClient.factory({ RESP }) as unknown as (options: ClientOptions) => RedisClientType,
    options,
  );
}

/**
 * A node-redis cluster client for `options` (as `createCluster(options)`), created from the command class
 * of its RESP version, built on first use only. Pass credentials with {@link credentialsOf}, not as
 * `defaults.username`/`password`, so the node connection class is shared too.
 */
export function createRedisCluster(options: ClusterOptions): RedisClusterType {
  return perResp(
    clusterFactories,
    (RESP) => RedisCluster.factory({ RESP }) as unknown as (options: ClusterOptions) => RedisClusterType,
    options,
  );
}

/**
 * Connection options carrying `username`/`password` as a node-redis `credentialsProvider` (sent with
 * `HELLO`/`AUTH` on every connect, as `username`/`password` are), or nothing when neither is set.
 */
export function credentialsOf(
  username: string | undefined,
  password: string | undefined,
): Pick<RedisClientOptions, 'credentialsProvider'> {
  if (username === undefined && password === undefined) return {};
  return {
    credentialsProvider: {
      type: 'async-credentials-provider',
      credentials: async () => ({
        ...(username === undefined ? {} : { username }),
        ...(password === undefined ? {} : { password }),
      }),
    },
  };
}
