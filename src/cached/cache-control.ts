/**
 * `Cache-Control` for cached functions: what a header value means for one call.
 *
 * - `no-store`, `no-cache`, `must-revalidate` or `private`: bypass (the function runs once; nothing is
 *   read or stored). This cache is shared (every process of the tenant reads it), and RFC 9111 section
 *   5.2.2.7 forbids a shared cache to store a `private` response.
 * - `s-maxage=N` (this cache is shared, so it wins over `max-age`), else `max-age=N`: the TTL is `N`
 *   seconds, at most the largest TTL the client accepts (2^32 s; RFC 9111 section 1.2.2: a larger
 *   delta-seconds is taken as the largest value the cache can represent); `N = 0` bypasses too
 *   (nothing is stored, and that is not an error).
 * - A malformed `s-maxage`/`max-age` (`max-age=abc`, `max-age=-1`, `max-age=1.5`, no value) bypasses:
 *   RFC 9111 section 4.2.1 has a cache treat invalid freshness information as stale, so no TTL is guessed.
 * - Anything else (`public`, unknown directives) is ignored: the configured TTL applies. Directive names
 *   are case-insensitive; quoted values are accepted.
 *
 * Differences from Python: Python reads `max-age` before `s-maxage`, and turns `max-age=0` into "run the
 * function twice" (a bug).
 *
 * @module
 */

/** What one call does under a `Cache-Control` value. */
export type CacheControlDecision =
  /** Read and store with this TTL (seconds). */
  | { readonly kind: 'cache'; readonly ttl: number }
  /** Neither read nor store: run the function. */
  | { readonly kind: 'bypass' };

const BYPASS = new Set(['no-store', 'no-cache', 'must-revalidate', 'private']);
const SECONDS = /^\d+$/;

/** Directives of a header value: lower-cased names, unquoted values (`true` for a bare name). */
export function parseCacheControl(header: string): Map<string, string | true> {
  const directives = new Map<string, string | true>();
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (name === '' || directives.has(name)) continue;
    let value: string | true = true;
    if (eq !== -1) {
      value = part.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    }
    directives.set(name, value);
  }
  return directives;
}

/** Seconds of a delta-seconds directive, clamped to `max`; `null` when malformed; `undefined` when absent. */
function seconds(value: string | true | undefined, max: number): number | null | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !SECONDS.test(value)) return null;
  return Math.min(Number(value), max);
}

/**
 * The decision for one call.
 * @param header - the `Cache-Control` value; `null`/`undefined`/`''` mean none.
 * @param defaultTtl - the configured TTL in seconds.
 * @param maxTtl - the largest TTL in seconds; larger `s-maxage`/`max-age` values are clamped to it.
 */
export function cacheControlDecision(
  header: string | null | undefined,
  defaultTtl: number,
  maxTtl = Number.MAX_SAFE_INTEGER,
): CacheControlDecision {
  if (header === null || header === undefined || header === '') return { kind: 'cache', ttl: defaultTtl };
  const directives = parseCacheControl(String(header));
  for (const name of BYPASS) if (directives.has(name)) return { kind: 'bypass' };
  const shared = seconds(directives.get('s-maxage'), maxTtl);
  const ttl = shared !== undefined ? shared : seconds(directives.get('max-age'), maxTtl);
  if (ttl === undefined) return { kind: 'cache', ttl: defaultTtl };
  return ttl === null || ttl === 0 ? { kind: 'bypass' } : { kind: 'cache', ttl };
}
