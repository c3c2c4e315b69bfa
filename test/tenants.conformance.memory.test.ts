/**
 * Issue 18: the conformance suite, unchanged, through `TenantCaches` views (shared mode) on memory://
 * (the cached-function suite runs through views on a redis-server: tenants.conformance.redis.test.ts).
 */
import { afterAll } from 'vitest';
import { registerConformanceSuite } from './conformance.js';
import { TenantViews } from './helpers/tenant-views.js';

const views = new TenantViews();
afterAll(() => views.closeAll());

registerConformanceSuite('tenant views on memory://', async () => ({
  options: (tenant, extra = {}) => ({ connectionConfig: { url: 'memory://', tenant }, ...extra }),
  open: views.open,
  rawKeys: async () => [],
  rawGet: async () => null,
  inspectable: false,
}));
