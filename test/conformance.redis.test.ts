import { registerConformanceSuite } from './conformance.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

let server: RedisServer;

registerConformanceSuite(
  'redis-server',
  async () => {
    server = await startRedis();
    return {
      options: (tenant, extra = {}) => ({ connectionConfig: { url: server.url, tenant }, ...extra }),
      rawKeys: async (match = '*') => {
        const out = await server.cli('--scan', '--pattern', match);
        return out === '' ? [] : out.split('\n');
      },
      rawGet: async (key) => {
        const out = await server.cli('--raw', 'GET', key);
        return out === '' ? null : out;
      },
      inspectable: true,
    };
  },
  () => server.stop(),
);
