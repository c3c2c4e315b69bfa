/**
 * A tour of every operation. Runs on the embedded engine (memory://) when nothing is configured, or on
 * the server named by PEAK_CACHE_URL (with PEAK_CACHE_TENANT, default `demo`).
 *
 *   npm run demo
 *   PEAK_CACHE_URL=redis://127.0.0.1:6379 PEAK_CACHE_TENANT=demo npm run demo
 */
import { CacheClient, CacheError } from '../src/index.js';

const url = process.env.PEAK_CACHE_URL || 'memory://';
const tenant = process.env.PEAK_CACHE_TENANT || 'demo';
const where = url.startsWith('memory:') ? 'the embedded engine (memory://)' : new URL(url).host;

function show(call: string, result: unknown): void {
  console.log(`${call.padEnd(48)} -> ${JSON.stringify(result)}`);
}

const cache = new CacheClient({ connectionConfig: { url, tenant }, additionalPrefix: 'tour' });
console.log(`peak-cache demo on ${where}, tenant "${tenant}", prefix "tour"\n`);
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
  cache.setAdditionalPrefix('other');
  show("setAdditionalPrefix('other'); set('x', 1)", await cache.set('x', 1));
  cache.setAdditionalPrefix('tour');
  show("flushByPattern('user:*')", await cache.flushByPattern('user:*'));
  show('flushTenant()', await cache.flushTenant());
} catch (err) {
  console.error(err instanceof CacheError ? `${err.name} (${err.code}): ${err.message}` : err);
  process.exitCode = 1;
} finally {
  await cache.close();
}
