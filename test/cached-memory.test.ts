import { registerCachedSuite } from './cached-conformance.js';

// A named store: every client of the suite sees the same keys, as clients of one server do.
registerCachedSuite('memory engine', async () => ({
  options: (tenant, extra = {}) => ({ connectionConfig: { url: 'memory://cached-suite', tenant }, ...extra }),
}));
