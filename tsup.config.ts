import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    cli: 'src/cli.ts',
    otel: 'src/integrations/otel.ts',
    keyv: 'src/integrations/keyv.ts',
  },
  format: ['esm', 'cjs'],
  // The `peak-cache` binary is ESM only (the package is `"type": "module"`; nothing requires it): the
  // CJS build leaves it out, so no unused `dist/cli.cjs` ships. One config, so one clean of `dist/`.
  esbuildOptions(options, { format }) {
    const entries = options.entryPoints;
    if (format === 'cjs' && entries !== undefined && !Array.isArray(entries)) {
      // A copy: the entry object is shared with the ESM build.
      options.entryPoints = Object.fromEntries(Object.entries(entries).filter(([name]) => name !== 'cli'));
    }
  },
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
