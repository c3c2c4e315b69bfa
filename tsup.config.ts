import { defineConfig } from 'tsup';

const common = { target: 'node20', platform: 'node', sourcemap: true } as const;
const library = {
  index: 'src/index.ts',
  otel: 'src/integrations/otel.ts',
  keyv: 'src/integrations/keyv.ts',
};
const dts = {
  // `@internal` members (the integrations' codec-free `rawOperation`, the engines behind it) stay out of
  // the published types; TypeDoc leaves them out of the reference for the same reason.
  compilerOptions: { stripInternal: true },
};

// Two builds: ESM for the library and the `peak-cache` binary (sharing chunks), CJS for the library
// only (the binary is ESM, as the package is `"type": "module"`: a CJS copy would ship unused).
export default defineConfig([
  {
    ...common,
    entry: { ...library, cli: 'src/cli.ts' },
    format: ['esm'],
    dts: { ...dts, entry: library },
    clean: true,
  },
  { ...common, entry: library, format: ['cjs'], dts },
]);
