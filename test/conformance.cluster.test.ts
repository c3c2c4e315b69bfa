import { registerConformanceSuite } from './conformance.js';
import { type RedisCluster, startRedisCluster } from './helpers/redis-cluster.js';

let cluster: RedisCluster | undefined;

registerConformanceSuite(
  'redis-cluster',
  async () => {
    const c = await startRedisCluster();
    cluster = c;
    return {
      options: (tenant, extra = {}) => ({
        connectionConfig: { url: c.url, tenant, cluster: true },
        ...extra,
      }),
      // SCAN on every primary: one node holds only its own slots' keys.
      rawKeys: (match = '*') => c.scanAll(match),
      rawGet: (key) => c.rawGet(key),
      inspectable: true,
    };
  },
  async () => {
    await cluster?.stop();
  },
);
