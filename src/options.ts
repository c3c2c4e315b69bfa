/**
 * The options of {@link CacheClient}, their defaults and their validation. Validation happens in the
 * constructor, with an error that names the option.
 *
 * @module
 */
import { CacheValidationError } from './errors.js';
import type { CacheLogger } from './logger.js';
import type { NearCacheOptions } from './near-cache/options.js';
import type { Session } from './session.js';
import type { CodecOption, ReadableType } from './value-types.js';

/** Where and how to connect. In platform mode only the tuning fields apply (see README). */
export interface ConnectionConfig {
  /**
   * `redis://`, `rediss://` or `memory://` URL (direct mode). With a `session`, ignored with a warning.
   * @default env `PEAK_CACHE_URL`
   */
  url?: string;
  /**
   * The tenant: first segment of every key (direct mode; the platform supplies it otherwise).
   * @default env `PEAK_CACHE_TENANT`
   */
  tenant?: string;
  /**
   * Longest wait for a reply while commands are outstanding, in milliseconds; then the call rejects with
   * `CacheTimeoutError` and the connection is replaced. This, `connectTimeoutMs` and `keepAliveMs` are
   * at most 2^31-1 (about 24.8 days, Node's longest timer); `CacheValidationError` otherwise.
   * @default 5000
   */
  timeoutMs?: number;
  /**
   * Longest wait to establish a connection (TCP, TLS, authentication), in milliseconds. After the server
   * failed to reply within `timeoutMs`, the next connection must come up within the smaller of the two
   * (a frozen server accepts TCP but never answers), until one succeeds.
   * @default `timeoutMs` when that is set and below 5000, else 5000
   */
  connectTimeoutMs?: number;
  /**
   * TCP keep-alive initial delay in milliseconds, or `false` to turn keep-alive off.
   * @default 5000
   */
  keepAliveMs?: number | false;
  /**
   * Most commands waiting on a connection at once (a `get` or `set` coalesced into an `MGET` or `MSET`
   * counts as one; see the README's read and write coalescing); beyond it calls reject at once with
   * `CacheConnectionError` instead of queueing without bound.
   * @default 10000
   */
  maxQueueLength?: number;
  /**
   * Redis Cluster mode: `url` (or any entry of `nodes`) is a seed node, the client discovers the others
   * and splits multi-key operations by hash slot (see docs/cluster.md). Allowed in platform mode (it does
   * not change where the client connects or which credentials it uses).
   * @default env `PEAK_CACHE_CLUSTER` (`1`/`true`/`yes`/`on`), else `true` when `nodes` is set, else `false`
   */
  cluster?: boolean;
  /**
   * Seed nodes of a Redis Cluster (`redis://` or `rediss://` URLs); implies `cluster: true`. Every node
   * must use the scheme and credentials of the first, which apply to the whole cluster. `url` may be
   * omitted (the first node is used). In platform mode ignored with a warning, like `url`.
   * @default none: `url` is the only seed
   */
  nodes?: readonly string[];
  /**
   * Host, port, TLS and credentials belong in `url`. In platform mode they are ignored with a warning
   * (the platform decides where the tenant's cache is); in direct mode they are an error.
   */
  host?: string;
  /** See {@link ConnectionConfig.host}. */
  port?: number;
  /** See {@link ConnectionConfig.host}. */
  tls?: boolean;
  /** See {@link ConnectionConfig.host}. */
  username?: string;
  /** See {@link ConnectionConfig.host}. */
  password?: string;
}

/** Options of {@link CacheClient} and {@link getClient}. */
export interface CacheClientOptions<C extends CodecOption = CodecOption> {
  /**
   * Peak platform session: the client fetches the tenant's credentials from the platform.
   * @default a `Session` from env `API_KEY` when neither `connectionConfig.url` nor `PEAK_CACHE_URL` is set
   */
  session?: Session;
  /**
   * Emit one debug line per operation (key names, never values) through `logger.debug`.
   * @default true
   */
  debugLogs?: boolean;
  /**
   * Extra namespace after the tenant: keys are `<tenant>:<additionalPrefix>:<key>`.
   * @default null
   */
  additionalPrefix?: string | null;
  /** Connection source and tuning. */
  connectionConfig?: ConnectionConfig;
  /**
   * How values are stored: `'peak'` (wire-compatible with Peak's Python client), `'json'` (lossless
   * typed round-trip), or a custom `{ encode, decode }`. It also types `get`/`mget` (see
   * {@link ReadableType}): the client is a `CacheClient<'peak'>`, `CacheClient<'json'>`, ...
   * @default 'peak'
   */
  codec?: C;
  /**
   * Largest encoded value accepted, in bytes (UTF-8); larger values reject before any I/O.
   * @default 16777216 (16 MiB)
   */
  maxValueBytes?: number;
  /**
   * Receives debug lines and warnings.
   * @default debug lines via `util.debuglog('peak-cache')` (`NODE_DEBUG=peak-cache`), warnings via `process.emitWarning`
   */
  logger?: CacheLogger;
  /**
   * Environment to read `PEAK_CACHE_*`, `API_KEY` and `STAGE` from.
   * @default process.env
   */
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * Peak deployment id: the first segment of the keys of cached functions
   * (`<deploymentId>:<keyPrefix>[:<entityId>]:<digest>`) and of `invalidate` patterns, as in Python's
   * `cache_result`. `null` or `''`: no deployment segment. Given, it is used as it is (no network).
   * @default resolved as Python resolves it, at the first cached call or `invalidate`: in platform mode
   * the parent deployment's id from Peak's Press API for env `PRESS_DEPLOYMENT_ID` (its own id when it
   * has no parent; one request per process, see {@link Session.pressUrl}); in direct mode env
   * `PRESS_DEPLOYMENT_ID` as it is (read from `env`); else none. See docs/cached-functions.md.
   */
  deploymentId?: string | null;
  /**
   * Near cache: serve hot keys from process memory, kept correct by the server (RESP3 `CLIENT TRACKING`),
   * e.g. `{ maxEntries: 10_000 }`. Redis, Valkey and Redis Cluster only; ignored by `memory://`. See
   * {@link NearCacheOptions} and docs/near-cache.md.
   * @default off
   */
  nearCache?: NearCacheOptions;
}

/** Connection tuning with defaults applied. */
export interface ConnectionSettings {
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  /**
   * Longest wait for the platform's credentials (an HTTPS request, slower than a Redis handshake):
   * `connectTimeoutMs` when set, else 5000 (not bounded by `timeoutMs`), in milliseconds.
   */
  readonly credentialsTimeoutMs: number;
  readonly keepAliveMs: number | false;
  readonly maxQueueLength: number;
}

/** Defaults of the tuning fields of {@link ConnectionConfig}. */
export const DEFAULT_SETTINGS: ConnectionSettings = {
  timeoutMs: 5000,
  connectTimeoutMs: 5000,
  credentialsTimeoutMs: 5000,
  keepAliveMs: 5000,
  maxQueueLength: 10_000,
};

/** Default of {@link CacheClientOptions.maxValueBytes}. */
export const DEFAULT_MAX_VALUE_BYTES = 16 * 1024 * 1024;

/** Fields of {@link ConnectionConfig} that redirect the connection or carry credentials. */
export const LOCATION_FIELDS = [
  'url',
  'nodes',
  'tenant',
  'host',
  'port',
  'tls',
  'username',
  'password',
] as const;
const TUNING_FIELDS = ['timeoutMs', 'connectTimeoutMs', 'keepAliveMs', 'maxQueueLength', 'cluster'] as const;
const KNOWN_FIELDS = new Set<string>([...LOCATION_FIELDS, ...TUNING_FIELDS]);
const CLIENT_FIELDS = new Set<string>([
  'session',
  'debugLogs',
  'additionalPrefix',
  'connectionConfig',
  'codec',
  'maxValueBytes',
  'logger',
  'env',
  'deploymentId',
  'nearCache',
]);

/**
 * Longest millisecond option that feeds a timer: 2^31-1 ms (about 24.8 days), Node's limit (a longer
 * `setTimeout` fires after 1 ms with a `TimeoutOverflowWarning`). @internal
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** ` up to max` for an error message (with why, for {@link MAX_TIMER_MS}); empty when unbounded. @internal */
export function upTo(max: number): string {
  if (max >= Number.MAX_SAFE_INTEGER) return '';
  return max === MAX_TIMER_MS ? ` up to ${max} (about 24.8 days, Node's longest timer)` : ` up to ${max}`;
}

/** Throw unless `value` is a positive safe integer (at most `max`). */
export function positiveInteger(value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > max) {
    throw new CacheValidationError(`The \`${name}\` option must be a positive integer${upTo(max)}`);
  }
  return value;
}

/** Reject option names the client does not know (a typo, or a Python name such as `socket_timeout`). */
export function checkKnownOptions(options: object): void {
  for (const name of Object.keys(options)) {
    if (!CLIENT_FIELDS.has(name)) throw new CacheValidationError(`Unknown option \`${name}\``);
  }
}

/**
 * Check that `options` (an object) has only `known` own keys.
 * @param what - whose options these are, for the message (`connectionConfig`, `nearCache`, `getOrSet`...).
 * @throws {CacheValidationError} naming the first unknown option and listing the known ones.
 */
export function checkOptionNames(options: object, known: ReadonlySet<string>, what: string): void {
  for (const name of Object.keys(options)) {
    if (!known.has(name)) {
      throw new CacheValidationError(`Unknown ${what} option \`${name}\` (known: ${[...known].join(', ')})`);
    }
  }
}

/** Validate the tuning fields of a connection config and apply defaults. */
export function resolveSettings(config: ConnectionConfig): ConnectionSettings {
  checkOptionNames(config, KNOWN_FIELDS, 'connectionConfig');
  if (config.cluster !== undefined && typeof config.cluster !== 'boolean') {
    throw new CacheValidationError('The `connectionConfig.cluster` option must be a boolean');
  }
  const keepAlive = config.keepAliveMs ?? DEFAULT_SETTINGS.keepAliveMs;
  const timeoutMs = positiveInteger(
    config.timeoutMs ?? DEFAULT_SETTINGS.timeoutMs,
    'connectionConfig.timeoutMs',
    MAX_TIMER_MS,
  );
  return {
    timeoutMs,
    // `timeoutMs` bounds the first connection too (a frozen server accepts TCP and never answers).
    connectTimeoutMs: positiveInteger(
      config.connectTimeoutMs ?? Math.min(timeoutMs, DEFAULT_SETTINGS.connectTimeoutMs),
      'connectionConfig.connectTimeoutMs',
      MAX_TIMER_MS,
    ),
    credentialsTimeoutMs: config.connectTimeoutMs ?? DEFAULT_SETTINGS.credentialsTimeoutMs,
    keepAliveMs:
      keepAlive === false ? false : positiveInteger(keepAlive, 'connectionConfig.keepAliveMs', MAX_TIMER_MS),
    maxQueueLength: positiveInteger(
      config.maxQueueLength ?? DEFAULT_SETTINGS.maxQueueLength,
      'connectionConfig.maxQueueLength',
    ),
  };
}
