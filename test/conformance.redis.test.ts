import { registerConformanceSuite } from './conformance.js';
import { commandCalls } from './helpers/command-stats.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

let server: RedisServer;

registerConformanceSuite(
  'redis-server',
  async () => {
    server = await startRedis();
    return {
      options: (tenant, extra = {}) => ({ connectionConfig: { url: server.url, tenant }, ...extra }),
      rawKeys: (match) => server.scanKeys(match),
      rawGet: (key) => server.rawGet(key),
      inspectable: true,
      commandCalls: async () => commandCalls(await server.cli('INFO', 'commandstats')),
    };
  },
  () => server.stop(),
);
