/**
 * The whole conformance suite, unchanged, against a redis-server and a Redis Cluster with the near cache
 * on (default options: shared frozen values): every operation behaves as without it.
 */
import { registerConformanceSuite } from './conformance.js';
import { type RedisCluster, startRedisCluster } from './helpers/redis-cluster.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

let server: RedisServer;

registerConformanceSuite(
  'redis-server with a near cache',
  async () => {
    server = await startRedis();
    return {
      options: (tenant, extra = {}) => ({
        connectionConfig: { url: server.url, tenant },
        nearCache: { maxEntries: 1000 },
        ...extra,
      }),
      rawKeys: (match) => server.scanKeys(match),
      rawGet: (key) => server.rawGet(key),
      inspectable: true,
    };
  },
  () => server.stop(),
);

let cluster: RedisCluster | undefined;

registerConformanceSuite(
  'redis-cluster with a near cache',
  async () => {
    const c = await startRedisCluster();
    cluster = c;
    return {
      options: (tenant, extra = {}) => ({
        connectionConfig: { url: c.url, tenant, cluster: true },
        nearCache: { maxEntries: 1000 },
        ...extra,
      }),
      rawKeys: (match = '*') => c.scanAll(match),
      rawGet: (key) => c.rawGet(key),
      inspectable: true,
    };
  },
  async () => {
    await cluster?.stop();
  },
);
