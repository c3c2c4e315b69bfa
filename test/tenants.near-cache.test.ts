/**
 * Issue 18: the near cache suite, unchanged, through `TenantCaches` views (shared mode, the near cache of
 * the `TenantCaches`) on a redis-server as the default user.
 */
import { nearCacheServer } from './helpers/near-cache-server.js';
import { TenantViews } from './helpers/tenant-views.js';
import { registerNearCacheSuite } from './near-cache.suite.js';

const views = new TenantViews();
const { start, stop } = nearCacheServer(false, views.open);
registerNearCacheSuite('tenant views on redis-server', start, async () => {
  await views.closeAll();
  await stop();
});
