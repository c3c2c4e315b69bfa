import { registerConformanceSuite } from './conformance.js';
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
    };
  },
  () => server.stop(),
);
