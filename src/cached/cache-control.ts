/**
 * `Cache-Control` for cached functions: what a header value means for one call.
 *
 * - `no-store`, `no-cache` or `must-revalidate`: bypass (the function runs once; nothing is read or stored).
 * - `s-maxage=N` (this cache is shared, so it wins over `max-age`), else `max-age=N`: the TTL is `N`
 *   seconds; `N = 0` bypasses too (nothing is stored, and that is not an error).
 * - Anything else, including malformed values (`max-age=abc`, `max-age=-1`), is ignored: the configured
 *   TTL applies. Directive names are case-insensitive; quoted values are accepted.
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

const BYPASS = new Set(['no-store', 'no-cache', 'must-revalidate']);
const SECONDS = /^\d{1,10}$/;

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

function seconds(value: string | true | undefined): number | undefined {
  return typeof value === 'string' && SECONDS.test(value) ? Number(value) : undefined;
}

/**
 * The decision for one call.
 * @param header - the `Cache-Control` value; `null`/`undefined`/`''` mean none.
 * @param defaultTtl - the configured TTL in seconds.
 */
export function cacheControlDecision(
  header: string | null | undefined,
  defaultTtl: number,
): CacheControlDecision {
  if (header === null || header === undefined || header === '') return { kind: 'cache', ttl: defaultTtl };
  const directives = parseCacheControl(String(header));
  for (const name of BYPASS) if (directives.has(name)) return { kind: 'bypass' };
  const ttl = seconds(directives.get('s-maxage')) ?? seconds(directives.get('max-age'));
  if (ttl === undefined) return { kind: 'cache', ttl: defaultTtl };
  return ttl === 0 ? { kind: 'bypass' } : { kind: 'cache', ttl };
}
