/**
 * Issue 18: the conformance suite, unchanged, through `TenantCaches` views (shared mode: one set of node
 * connections) on a Redis Cluster.
 */
import { registerConformanceSuite } from './conformance.js';
import { clusterTarget } from './helpers/cluster-target.js';
import { TenantViews } from './helpers/tenant-views.js';

const views = new TenantViews();
const cluster = clusterTarget();
registerConformanceSuite(
  'tenant views on redis-cluster',
  async () => ({ ...(await cluster.setup()), open: views.open }),
  async () => {
    await views.closeAll();
    await cluster.teardown();
  },
);
