import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    cli: 'src/cli.ts',
    otel: 'src/integrations/otel.ts',
    keyv: 'src/integrations/keyv.ts',
  },
  format: ['esm', 'cjs'],
  dts: {
    entry: { index: 'src/index.ts', otel: 'src/integrations/otel.ts', keyv: 'src/integrations/keyv.ts' },
  },
  target: 'node20',
  platform: 'node',
  clean: true,
  sourcemap: true,
});
