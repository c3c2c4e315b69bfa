/**
 * The version of the installed package, for `peak-cache --version`.
 *
 * @module
 */
import { createRequire } from 'node:module';

/**
 * The `version` of peak-cache's `package.json`, read at run time (the built CLI is `dist/cli.js`, one
 * level below the package root; the source is `src/cli/version.ts`, two levels below), or `'unknown'`.
 */
export function packageVersion(): string {
  const require = createRequire(import.meta.url);
  for (const path of ['../package.json', '../../package.json']) {
    try {
      const pkg = require(path) as { name?: unknown; version?: unknown };
      if (pkg.name === 'peak-cache' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // Not at this level: try the next.
    }
  }
  return 'unknown';
}
