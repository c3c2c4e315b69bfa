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
    // `@internal` members (the integrations' codec-free `rawOperation`, the engines behind it) stay out of
    // the published types; TypeDoc leaves them out of the reference for the same reason.
    compilerOptions: { stripInternal: true },
  },
  target: 'node20',
  platform: 'node',
  clean: true,
  sourcemap: true,
});
