/**
 * The decorators under TypeScript's `experimentalDecorators` (NestJS's default): a NestJS-style service
 * in test/fixtures/legacy-decorators, compiled with that flag (its own tsconfig; `npm run typecheck`
 * type-checks it with `tsc -p`), run as a child process. The standard (TC39) flavour is tested by the
 * conformance suites (test/cached-conformance.ts).
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURE = join('test', 'fixtures', 'legacy-decorators');

describe('decorators under experimentalDecorators', () => {
  it('cache results (the factory runs once per entity) and invalidate them, on instance and static methods', async () => {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        join(ROOT, 'node_modules', '.bin', 'tsx'),
        ['--tsconfig', join(FIXTURE, 'tsconfig.json'), join(FIXTURE, 'service.ts')],
        { cwd: ROOT, timeout: 30_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
        (err, out, errOut) => (err === null ? resolve(out) : reject(new Error(`${err.message}\n${errOut}`))),
      );
    });
    expect(JSON.parse(stdout)).toEqual({
      first: { id: '1', name: 'Ada' },
      second: { id: '1', name: 'Ada' },
      loadsBeforeRename: 1, // the second findOne was a hit
      renamed: { id: '1', name: 'Grace' }, // rename invalidated the entity's entry
      loads: 2,
      staticCalls: 1,
      hits: 2,
    });
  }, 40_000);
});
