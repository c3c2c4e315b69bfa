/**
 * Issue 18: the conformance and cached-function suites, unchanged, through `TenantCaches` views
 * (shared mode) on memory://.
 */
import { afterAll } from 'vitest';
import { registerCachedSuite } from './cached-conformance.js';
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

registerCachedSuite('tenant views on memory://', async () => ({
  options: (tenant, extra = {}) => ({ connectionConfig: { url: 'memory://views', tenant }, ...extra }),
  open: views.open,
}));
