/**
 * Where the connection comes from (SPEC section 2): a direct URL + tenant, or the Peak platform, and the
 * engine that serves a URL (`memory://` embedded, `redis://` / `rediss://` Redis or Valkey).
 *
 * @module
 */
import type { Engine } from './engines/engine.js';
import { MemoryEngine, MemoryStore } from './engines/memory.js';
import { RedisEngine } from './engines/redis.js';
import { CacheConnectionError, CacheValidationError } from './errors.js';
import { validateTenant } from './keys.js';
import type { CacheLogger } from './logger.js';
import { type ConnectionConfig, type ConnectionSettings, LOCATION_FIELDS } from './options.js';
import { fetchCredentials } from './platform.js';
import { Session } from './session.js';

/** A direct connection (URL and tenant known up front) or the Peak platform (fetched on first use). */
export type ConnectionSource =
  | { readonly kind: 'direct'; readonly url: string; readonly tenant: string }
  | { readonly kind: 'platform'; readonly session: Session };

/** A URL and tenant to connect with. */
export interface Endpoint {
  readonly url: string;
  readonly tenant: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/** The message when nothing is configured: every way to configure the client. */
export const NOT_CONFIGURED =
  'No cache is configured. Use one of: `connectionConfig: { url, tenant }` (redis://, rediss:// or memory://); ' +
  'env PEAK_CACHE_URL and PEAK_CACHE_TENANT; or the Peak platform, with `session: new Session({ authToken })` ' +
  'or env API_KEY (and STAGE)';

const SCHEMES = new Set(['redis:', 'rediss:', 'memory:']);

/** Check a direct URL's scheme and shape; the message never repeats the URL (it may hold a password). */
export function validateUrl(url: unknown, name: string): string {
  if (typeof url !== 'string' || url.length === 0)
    throw new CacheValidationError(`\`${name}\` must be a non-empty string`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CacheValidationError(`\`${name}\` is not a valid URL`);
  }
  if (!SCHEMES.has(parsed.protocol)) {
    throw new CacheValidationError(
      `\`${name}\` has scheme ${JSON.stringify(parsed.protocol)}; use redis://, rediss:// or memory://`,
    );
  }
  return url;
}

/**
 * Decide the connection source, without I/O. Order: an explicit `session` (platform); `connectionConfig.url`;
 * env `PEAK_CACHE_URL`; env `API_KEY` (platform). Location overrides in platform mode are dropped with a warning.
 */
export function chooseSource(
  session: Session | undefined,
  config: ConnectionConfig,
  env: Env,
  logger: CacheLogger,
): ConnectionSource {
  const platform = (s: Session): ConnectionSource => {
    const ignored = LOCATION_FIELDS.filter((f) => config[f] !== undefined);
    if (ignored.length > 0) {
      logger.warn(
        `peak-cache: connectionConfig ${ignored.join(', ')} ignored: in Peak platform mode the platform decides ` +
          'where the cache is and which credentials to use; only timeouts, keep-alive and queue settings apply',
      );
    }
    return { kind: 'platform', session: s };
  };
  if (session !== undefined) {
    if (!(session instanceof Session))
      throw new CacheValidationError('The `session` option must be a Session');
    return platform(session);
  }
  for (const field of ['host', 'port', 'tls', 'username', 'password'] as const) {
    if (config[field] !== undefined) {
      throw new CacheValidationError(
        `connectionConfig.${field} is not supported: put host, port, TLS (rediss://) and credentials in connectionConfig.url`,
      );
    }
  }
  const fromConfig = config.url !== undefined;
  const url = config.url ?? env.PEAK_CACHE_URL;
  if (url !== undefined && url !== '') {
    const tenant = config.tenant ?? env.PEAK_CACHE_TENANT;
    if (tenant === undefined || tenant === '') {
      throw new CacheConnectionError(
        `A tenant is required with ${fromConfig ? 'connectionConfig.url' : 'PEAK_CACHE_URL'}: set connectionConfig.tenant or PEAK_CACHE_TENANT`,
      );
    }
    return {
      kind: 'direct',
      url: validateUrl(url, fromConfig ? 'connectionConfig.url' : 'PEAK_CACHE_URL'),
      tenant: validateTenant(tenant),
    };
  }
  if (env.API_KEY !== undefined && env.API_KEY !== '') return platform(new Session({ env }));
  throw new CacheConnectionError(NOT_CONFIGURED);
}

/** The endpoint of a source: immediate for a direct source, fetched from the platform otherwise. */
export async function resolveEndpoint(
  source: ConnectionSource,
  settings: ConnectionSettings,
): Promise<Endpoint> {
  if (source.kind === 'direct') return source;
  const credentials = await fetchCredentials(source.session, { timeoutMs: settings.connectTimeoutMs });
  return { url: credentials.url, tenant: validateTenant(credentials.tenant) };
}

/**
 * The engine serving `url`. Creates no connection: engines connect on first use. Every `memory://name`
 * URL names one process-wide embedded keyspace (`memory://` is the default one), shared by the clients
 * that use it as clients of one Redis server share its keys.
 */
export function createEngine(url: string, settings: ConnectionSettings): Engine {
  if (url.startsWith('memory:')) return new MemoryEngine(MemoryStore.named(new URL(url).host));
  return new RedisEngine({ url, ...settings });
}
