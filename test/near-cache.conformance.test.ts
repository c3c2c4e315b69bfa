/**
 * The whole conformance suite, unchanged, against a redis-server and a Redis Cluster with the near cache
 * on (default options: shared frozen values): every operation behaves as without it.
 */
import { registerConformanceSuite } from './conformance.js';
import { clusterTarget } from './helpers/cluster-target.js';
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

// No command counts: the near cache's heartbeat PINGs every primary each second.
const cluster = clusterTarget({ nearCache: { maxEntries: 1000 } }, false);
registerConformanceSuite('redis-cluster with a near cache', cluster.setup, cluster.teardown);
