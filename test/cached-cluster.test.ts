import { registerCachedSuite } from './cached-conformance.js';
import { clusterTarget } from './helpers/cluster-target.js';

// Lock keys, values and invalidation scans land on different primaries: the suite checks they still
// behave as on one server.
const target = clusterTarget();
registerCachedSuite('redis-cluster', target.setup, target.teardown);
