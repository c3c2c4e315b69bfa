/**
 * `npm run demo` (examples/demo.ts) as a user runs it after following the README's CLI section
 * (PEAK_CACHE_URL and PEAK_CACHE_TENANT exported): it works in a prefix of its own, names it, and leaves
 * the tenant exactly as it found it. And with nothing configured it runs on the embedded engine.
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

/** Run the demo with exactly `env` (plus PATH/HOME): no PEAK_* or API_KEY from the parent. */
function runDemo(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      TSX,
      ['examples/demo.ts'],
      {
        cwd: ROOT,
        timeout: 30_000,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
      },
      (err, stdout, stderr) =>
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr }),
    );
  });
}

describe('npm run demo', () => {
  let server: RedisServer;
  const seeded = {
    'acme:important:data': 'keep me',
    'acme:tour:user:1': 'the old demo prefix',
    'acme:n': 'no prefix',
    'other:x': 'another tenant',
  };

  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server.stop();
  });

  it("on the user's server and tenant: touches nothing it did not write and leaves no key behind", async () => {
    for (const [key, value] of Object.entries(seeded)) await server.cli('SET', key, value);
    const run = await runDemo({ PEAK_CACHE_URL: server.url, PEAK_CACHE_TENANT: 'acme' });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const prefix = /in its own prefix "(peak-cache-demo-[0-9a-f]+)"/.exec(run.stdout)?.[1];
    expect(prefix).toBeDefined();
    expect(run.stdout).toMatch(/set\('user:1'.*-> true/);
    expect(run.stdout).toMatch(/flushTenant\(\)\s+\/\/ skipped/);
    for (const [key, value] of Object.entries(seeded)) expect(await server.cli('GET', key)).toBe(value);
    const left = (await server.cli('KEYS', '*')).split('\n').filter(Boolean).sort();
    expect(left).toEqual(Object.keys(seeded).sort());
  }, 40_000);

  it('with nothing configured: runs on the embedded engine', async () => {
    const run = await runDemo({});
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/on the embedded engine \(memory:\/\/\), tenant "demo"/);
    expect(run.stdout).toMatch(
      /mget\('user:1', 'user:2', 'nope'\)\s+-> \[\{"name":"Ada"\},\{"name":"Grace"\},null\]/,
    );
  }, 40_000);
});
