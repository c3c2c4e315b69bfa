/**
 * A tour of every operation. Runs on the embedded engine (memory://) when nothing is configured, or on
 * the server named by PEAK_CACHE_URL (with PEAK_CACHE_TENANT, default `demo`).
 *
 *   npm run demo
 *   PEAK_CACHE_URL=redis://127.0.0.1:6379 PEAK_CACHE_TENANT=acme npm run demo
 *
 * It never touches data it did not write: everything goes under an additional prefix of its own,
 * `peak-cache-demo-<random>` (printed first), and at the end it deletes exactly the keys it wrote. It
 * runs `flushTenant()` only on the embedded engine, whose keyspace belongs to this process alone.
 */
import { randomBytes } from 'node:crypto';
import { CacheClient, CacheError } from '../src/index.js';

const url = process.env.PEAK_CACHE_URL || 'memory://';
const tenant = process.env.PEAK_CACHE_TENANT || 'demo';
const embedded = url.startsWith('memory:');
const where = embedded ? 'the embedded engine (memory://)' : new URL(url).host;
/** The demo's own namespace inside the tenant: nobody else writes under a random prefix. */
const prefix = `peak-cache-demo-${randomBytes(4).toString('hex')}`;
const otherPrefix = `${prefix}:other`;

function show(call: string, result: unknown): void {
  console.log(`${call.padEnd(48)} -> ${JSON.stringify(result)}`);
}

const cache = new CacheClient({ connectionConfig: { url, tenant }, additionalPrefix: prefix });
console.log(`peak-cache demo on ${where}, tenant "${tenant}", in its own prefix "${prefix}"`);
console.log(`(it writes only "${tenant}:${prefix}:*" keys and deletes them at the end)\n`);
try {
  show('ping()', await cache.ping());
  show("set('user:1', { name: 'Ada' }, 60)", await cache.set('user:1', { name: 'Ada' }, 60));
  show("get('user:1')", await cache.get('user:1'));
  show("set('n', 42)", await cache.set('n', 42));
  show("get('n')   // scalars read back as strings", await cache.get('n'));
  show("get('missing', 'fallback')", await cache.get('missing', 'fallback'));
  show("ttl('user:1')", await cache.ttl('user:1'));
  show("ttl('n')", await cache.ttl('n'));
  show("expire('n', 30)", await cache.expire('n', 30));
  show(
    "mset({ 'user:2': {...}, 'user:3': {...} }, 60)",
    await cache.mset({ 'user:2': { name: 'Grace' }, 'user:3': { name: 'Linus' } }, 60),
  );
  show("mget('user:1', 'user:2', 'nope')", await cache.mget('user:1', 'user:2', 'nope'));
  show("exists('user:1', 'user:2', 'nope')", await cache.exists('user:1', 'user:2', 'nope'));
  show("delete('user:3')", await cache.delete('user:3'));
  show('getAdditionalPrefix()', cache.getAdditionalPrefix());
  cache.setAdditionalPrefix(otherPrefix);
  show(`setAdditionalPrefix('${otherPrefix}'); set('x', 1)`, await cache.set('x', 1));
  cache.setAdditionalPrefix(prefix);
  show("flushByPattern('user:*')", await cache.flushByPattern('user:*'));
  if (embedded) show('flushTenant()', await cache.flushTenant());
  else console.log(`flushTenant()   // skipped: it would delete every key of tenant "${tenant}"`);
} catch (err) {
  console.error(err instanceof CacheError ? `${err.name} (${err.code}): ${err.message}` : err);
  process.exitCode = 1;
} finally {
  // Delete exactly what the tour wrote (also after a failure): nothing else in the tenant is touched.
  try {
    await cache.delete('user:1', 'user:2', 'user:3', 'n');
    cache.setAdditionalPrefix(otherPrefix);
    await cache.delete('x');
    console.log(`\ncleaned up: the demo's keys under "${tenant}:${prefix}:" are deleted`);
  } catch (err) {
    console.error(`cleanup failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
  await cache.close();
}
