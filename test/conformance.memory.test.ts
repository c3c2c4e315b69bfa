import { registerConformanceSuite } from './conformance.js';

registerConformanceSuite('memory engine', async () => ({
  options: (tenant, extra = {}) => ({ connectionConfig: { url: 'memory://', tenant }, ...extra }),
  rawKeys: async () => [],
  rawGet: async () => null,
  inspectable: false,
}));
