import { registerConformanceSuite } from './conformance.js';
import { clusterTarget } from './helpers/cluster-target.js';

const target = clusterTarget();
registerConformanceSuite('redis-cluster', target.setup, target.teardown);
