/**
 * Where the connection comes from (SPEC section 2): a direct URL + tenant, or the Peak platform, and the
 * engine that serves a URL (`memory://` embedded, `redis://` / `rediss://` Redis or Valkey, or a Redis
 * Cluster in cluster mode).
 *
 * @module
 */
import { RedisClient } from '@redis/client';
import { ClusterEngine, parseSeeds } from './engines/cluster.js';
import type { Engine } from './engines/engine.js';
import { MemoryEngine, MemoryStore } from './engines/memory.js';
import { RedisEngine } from './engines/redis.js';
import { CacheConnectionError, CacheValidationError } from './errors.js';
import { validateTenant } from './keys.js';
import type { CacheLogger } from './logger.js';
import { type ConnectionConfig, type ConnectionSettings, LOCATION_FIELDS } from './options.js';
import { fetchCredentials } from './platform.js';
import { Session } from './session.js';

/**
 * A direct connection (URL and tenant known up front) or the Peak platform (fetched on first use). In
 * cluster mode a direct source lists its seed nodes (`url` first); a platform source only says that the
 * URL it will fetch is a cluster seed.
 */
export type ConnectionSource =
  | {
      readonly kind: 'direct';
      readonly url: string;
      readonly tenant: string;
      readonly clusterNodes?: readonly string[];
    }
  | { readonly kind: 'platform'; readonly session: Session; readonly cluster: boolean };

/** A URL and tenant to connect with; `clusterNodes` (seed URLs, `url` first) in cluster mode. */
export interface Endpoint {
  readonly url: string;
  readonly tenant: string;
  readonly clusterNodes?: readonly string[];
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
  if (parsed.protocol !== 'memory:') {
    // The driver's own parser, so what it would refuse on the first call (a database that is not a number,
    // a malformed %-escape in the password) is refused here, naming the option but never the URL.
    try {
      RedisClient.parseURL(url);
    } catch (err) {
      const reason = err instanceof Error ? err.message.split('\n')[0] : 'unparsable';
      throw new CacheValidationError(
        `\`${name}\` cannot be used (${reason}): the path must be a database number and the user and password URL-encoded`,
      );
    }
  }
  return url;
}

const TRUE_FLAGS = new Set(['1', 'true', 'yes', 'on']);
const FALSE_FLAGS = new Set(['', '0', 'false', 'no', 'off']);

/** Cluster mode from `connectionConfig.cluster`, else env `PEAK_CACHE_CLUSTER`. */
function clusterFlag(config: ConnectionConfig, env: Env): boolean | undefined {
  if (config.cluster !== undefined) {
    if (typeof config.cluster !== 'boolean') {
      throw new CacheValidationError('The `connectionConfig.cluster` option must be a boolean');
    }
    return config.cluster;
  }
  const raw = env.PEAK_CACHE_CLUSTER;
  if (raw === undefined) return undefined;
  const flag = raw.trim().toLowerCase();
  if (TRUE_FLAGS.has(flag)) return true;
  if (FALSE_FLAGS.has(flag)) return undefined;
  throw new CacheValidationError('PEAK_CACHE_CLUSTER must be 1/true/yes/on or 0/false/no/off');
}

/** Check `connectionConfig.nodes`: a non-empty array of redis:// or rediss:// URLs. */
function validateNodes(nodes: unknown): string[] {
  if (!Array.isArray(nodes) || nodes.length === 0) {
    throw new CacheValidationError('`connectionConfig.nodes` must be a non-empty array of URLs');
  }
  return nodes.map((node, i) => validateUrl(node, `connectionConfig.nodes[${i}]`));
}

const NO_MEMORY_CLUSTER =
  'memory:// cannot be used in cluster mode: unset connectionConfig.cluster / PEAK_CACHE_CLUSTER, or use redis:// seed nodes';

/**
 * Decide the connection source, without I/O. Order: an explicit `session` (platform); `connectionConfig.url`
 * (or `nodes`); env `PEAK_CACHE_URL`; env `API_KEY` (platform). Location overrides in platform mode are dropped
 * with a warning. Cluster mode: `connectionConfig.cluster`, else env `PEAK_CACHE_CLUSTER`, else `nodes` set.
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
          'where the cache is and which credentials to use; only timeouts, keep-alive, queue settings and cluster apply',
      );
    }
    return { kind: 'platform', session: s, cluster: clusterFlag(config, env) ?? false };
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
  const nodes = config.nodes === undefined ? undefined : validateNodes(config.nodes);
  const urlName =
    config.url !== undefined ? 'connectionConfig.url' : nodes ? 'connectionConfig.nodes' : 'PEAK_CACHE_URL';
  const url = config.url ?? nodes?.[0] ?? env.PEAK_CACHE_URL;
  if (url !== undefined && url !== '') {
    const tenant = config.tenant ?? env.PEAK_CACHE_TENANT;
    if (tenant === undefined || tenant === '') {
      throw new CacheConnectionError(
        `A tenant is required with ${urlName}: set connectionConfig.tenant or PEAK_CACHE_TENANT`,
      );
    }
    const direct = {
      kind: 'direct',
      url: validateUrl(url, urlName),
      tenant: validateTenant(tenant),
    } as const;
    const cluster = clusterFlag(config, env);
    if (nodes !== undefined && cluster === false) {
      throw new CacheValidationError(
        '`connectionConfig.nodes` lists Redis Cluster seed nodes: it cannot be combined with `cluster: false`',
      );
    }
    if (nodes === undefined && cluster !== true) return direct;
    if (direct.url.startsWith('memory:') || nodes?.some((n) => n.startsWith('memory:'))) {
      throw new CacheValidationError(NO_MEMORY_CLUSTER);
    }
    // The seeds: `url` first, then the other nodes; named after the option that gave them, for messages.
    const seeds = [{ url: direct.url, name: urlName }];
    for (const [i, node] of (nodes ?? []).entries()) {
      if (node !== direct.url) seeds.push({ url: node, name: `connectionConfig.nodes[${i}]` });
    }
    const clusterNodes = seeds.map((s) => s.url);
    parseSeeds(clusterNodes, (i) => seeds[i]?.name ?? 'connectionConfig.nodes');
    return { ...direct, clusterNodes };
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
  const credentials = await fetchCredentials(source.session, { timeoutMs: settings.credentialsTimeoutMs });
  const url = credentials.url;
  return {
    url,
    tenant: validateTenant(credentials.tenant),
    ...(source.cluster ? { clusterNodes: [url] } : {}),
  };
}

/**
 * The engine serving an endpoint. Creates no connection: engines connect on first use. Every
 * `memory://name` URL names one process-wide embedded keyspace (`memory://` is the default one), shared
 * by the clients that use it as clients of one Redis server share its keys. With `clusterNodes`, a
 * Redis Cluster engine seeded with them.
 */
export function createEngine(endpoint: Endpoint, settings: ConnectionSettings): Engine {
  const { url, clusterNodes } = endpoint;
  if (clusterNodes !== undefined) {
    if (url.startsWith('memory:')) throw new CacheValidationError(NO_MEMORY_CLUSTER);
    return new ClusterEngine({ nodes: clusterNodes, ...settings });
  }
  if (url.startsWith('memory:')) return new MemoryEngine(MemoryStore.named(new URL(url).host));
  return new RedisEngine({ url, ...settings });
}
