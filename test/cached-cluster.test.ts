import { registerCachedSuite } from './cached-conformance.js';
import { type RedisCluster, startRedisCluster } from './helpers/redis-cluster.js';

let cluster: RedisCluster | undefined;

// Lock keys, values and invalidation scans land on different primaries: the suite checks they still
// behave as on one server.
registerCachedSuite(
  'redis-cluster',
  async () => {
    const c = await startRedisCluster();
    cluster = c;
    return {
      options: (tenant, extra = {}) => ({
        connectionConfig: { url: c.url, tenant, cluster: true },
        ...extra,
      }),
    };
  },
  async () => {
    await cluster?.stop();
  },
);
