/**
 * What `npm pack` ships: the license, the docs the README links to, and no unused bundle. Run after
 * `npm run build` (as `npm test` does); the file list comes from `npm pack --dry-run --json`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('the npm package', () => {
  let files: Set<string>;

  beforeAll(() => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const [pack] = JSON.parse(out) as [{ files: { path: string }[] }];
    files = new Set(pack.files.map((f) => f.path));
  }, 60_000);

  it('ships the Apache-2.0 license text', () => {
    expect(files.has('LICENSE')).toBe(true);
    const text = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
    expect(text).toMatch(/Apache License\s+Version 2\.0, January 2004/);
    expect(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).license).toBe('Apache-2.0');
  });

  it('every relative link of the README and the docs points at a file the package ships', () => {
    const sources = ['README.md', ...[...files].filter((f) => /^docs\/[^/]+\.md$/.test(f))];
    expect(sources.length).toBeGreaterThan(5);
    const missing: string[] = [];
    for (const source of sources) {
      const text = readFileSync(join(ROOT, source), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (target === undefined || /^[a-z]+:/.test(target)) continue;
        const path = normalize(join(dirname(source), target));
        if (!files.has(path)) missing.push(`${source} -> ${target}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it.skipIf(!existsSync(join(ROOT, 'dist', 'cli.js')))(
    'ships the CLI once, as ESM (no unused CJS bundle)',
    () => {
      expect(files.has('dist/cli.js')).toBe(true);
      expect(
        [...files].filter((f) => f.startsWith('dist/cli.') && f !== 'dist/cli.js' && f !== 'dist/cli.js.map'),
      ).toEqual([]);
    },
  );
});
