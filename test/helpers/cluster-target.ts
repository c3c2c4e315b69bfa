/** Test helper: a real Redis Cluster as the target of a conformance-style suite. */
import type { CacheClientOptions } from '../../src/index.js';
import type { ConformanceTarget } from '../conformance.js';
import { commandCalls } from './command-stats.js';
import { type RedisCluster, startRedisCluster } from './redis-cluster.js';

/** `setup`/`teardown` for a suite's `beforeAll`/`afterAll`, around one 3+3 cluster. */
export interface ClusterTarget {
  /** Start the cluster; the target's clients use it in cluster mode with `defaults` merged in. */
  setup(): Promise<ConformanceTarget>;
  /** Stop the cluster (nothing to do when `setup` failed). */
  teardown(): Promise<void>;
}

/**
 * A Redis Cluster target: client options for a tenant (`defaults`, then a test's own `extra`), raw reads
 * over every primary (one node holds only its own slots' keys) and, unless `countCommands` is false
 * (clients that send background commands, such as the near cache's heartbeat), the primaries' command
 * counts.
 */
export function clusterTarget(
  defaults: Partial<CacheClientOptions> = {},
  countCommands = true,
): ClusterTarget {
  let cluster: RedisCluster | undefined;
  return {
    async setup() {
      const c = await startRedisCluster();
      cluster = c;
      return {
        options: (tenant, extra = {}) => ({
          connectionConfig: { url: c.url, tenant, cluster: true },
          ...defaults,
          ...extra,
        }),
        rawKeys: (match = '*') => c.scanAll(match),
        rawGet: (key) => c.rawGet(key),
        inspectable: true,
        // Every primary (the client never uses replicas, and a replica counts the expiries its primary
        // sends it as commands).
        ...(countCommands && {
          commandCalls: async () => {
            let total = 0;
            for (const port of await c.primaries()) {
              total += commandCalls(await c.cli(port, 'INFO', 'commandstats'));
            }
            return total;
          },
        }),
      };
    },
    async teardown() {
      await cluster?.stop();
    },
  };
}
