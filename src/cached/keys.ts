/**
 * Keys of cached functions, in the layout of Peak's Python `cache_result` (SPEC section 7):
 *
 * ```
 * <tenant>:[<additionalPrefix>:]<deploymentId>:<keyPrefix>[:<entityId>]:<digest>
 * ```
 *
 * The client adds `<tenant>:[<additionalPrefix>:]`; this module builds the rest. `<deploymentId>:` is
 * omitted when there is none. `<digest>` is the base64url SHA-256 of a canonical encoding of the
 * function's identity and its arguments: object key order does not matter, `'123'` and `123` differ,
 * tuples and arrays are the same JSON-free encoding on every call, and two different functions never
 * share an entry.
 *
 * Invalidation patterns (also Python's layout): targeted `<deploymentId>:<pattern>:<entityId>:*`
 * (entity `42` never matches `420`: the `:` after the id is part of the pattern), broad
 * `<deploymentId>:<pattern>*`. The deployment id and entity id are glob-escaped; the caller's pattern is
 * a glob, as in Python.
 *
 * @module
 */
import crypto, { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { escapeGlob } from '../engines/glob.js';
import { CacheValidationError } from '../errors.js';

/** Default `keyPrefix` of cached functions (Python's default). */
export const DEFAULT_KEY_PREFIX = 'cached';

/** Deepest argument nesting digested; deeper structures are rejected. */
const MAX_DEPTH = 100;

/** Prototypes of the binary views digested by their bytes (Node's `Buffer` is a `Uint8Array`). */
const BINARY_VIEWS = new Set<object>(
  [
    Int8Array,
    Uint8Array,
    Uint8ClampedArray,
    Int16Array,
    Uint16Array,
    Int32Array,
    Uint32Array,
    Float32Array,
    Float64Array,
    BigInt64Array,
    BigUint64Array,
    DataView,
    Buffer,
  ].map((c) => c.prototype),
);

function notDigestible(what: string, why = ''): CacheValidationError {
  return new CacheValidationError(
    `A ${what} argument cannot be part of a cache key${why}: pass the \`key\` option to build the key yourself`,
  );
}

const HIDDEN_STATE = ' (its state is not in plain data the digest can read faithfully)';

/**
 * A canonical, type-tagged text of `value`: equal for equal values whatever the key order of their
 * objects, different for values of different types (`'1'` vs `1`, `1n` vs `1`, `[]` vs `{}`).
 *
 * Only values whose whole state the digest can read are accepted: primitives, plain objects (prototype
 * `Object.prototype` or `null`; own enumerable string keys), arrays, `Date`, `Map`, `Set`, `RegExp`,
 * `URL` and `URLSearchParams` (by their text), `ArrayBuffer` and typed arrays / `DataView` / `Buffer` (by
 * their bytes). Anything else (class instances, `Request`, `Headers`, `Error`, `Promise`, `WeakMap`,
 * objects with private fields, subclasses of the types above) keeps state the digest cannot see, so two
 * different calls could share an entry: it is rejected rather than guessed at.
 * @throws {CacheValidationError} for functions, symbols, other objects, objects with symbol keys,
 * circular structures and very deep values (the message says to pass `key`).
 */
export function canonical(value: unknown): string {
  return write(value, 0, new Set());
}

function write(value: unknown, depth: number, path: Set<object>): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      // NaN, ±Infinity and -0 keep their identity (JSON would turn them into null / 0).
      return Object.is(value, -0) ? 'n-0' : `n${value}`;
    case 'boolean':
      return value ? 'T' : 'F';
    case 'bigint':
      return `b${value}`;
    case 'undefined':
      return 'U';
    case 'object':
      break;
    default:
      throw notDigestible(typeof value);
  }
  if (value === null) return 'N';
  if (depth > MAX_DEPTH || path.has(value)) {
    throw new CacheValidationError(
      'A circular or too deeply nested argument cannot be part of a cache key: pass the `key` option',
    );
  }
  path.add(value);
  try {
    const next = depth + 1;
    const proto = Object.getPrototypeOf(value) as object | null;
    if (proto === Object.prototype || proto === null) {
      if (Object.getOwnPropertySymbols(value).length > 0)
        throw notDigestible('symbol-keyed object', HIDDEN_STATE);
      const keys = Object.keys(value).sort();
      const body = keys.map(
        (k) => `${JSON.stringify(k)}:${write((value as Record<string, unknown>)[k], next, path)}`,
      );
      return `{${body.join(',')}}`;
    }
    if (proto === Array.prototype) {
      return `[${(value as unknown[]).map((v) => write(v, next, path)).join(',')}]`;
    }
    if (proto === Date.prototype) {
      const time = (value as Date).getTime();
      return `D${Number.isNaN(time) ? 'NaN' : (value as Date).toISOString()}`;
    }
    if (proto === Map.prototype) {
      const entries = [...(value as Map<unknown, unknown>)].map(
        ([k, v]) => `${write(k, next, path)}=>${write(v, next, path)}`,
      );
      return `M{${entries.sort().join(',')}}`;
    }
    if (proto === Set.prototype) {
      const items = [...(value as Set<unknown>)].map((v) => write(v, next, path));
      return `S{${items.sort().join(',')}}`;
    }
    if (proto === RegExp.prototype) return `R${String(value)}`;
    if (proto === URL.prototype) return `L${(value as URL).href}`;
    if (proto === URLSearchParams.prototype) return `Q${String(value)}`;
    if (BINARY_VIEWS.has(proto)) {
      const view = value as ArrayBufferView;
      const bytes = Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64');
      return `B${view.constructor.name}:${bytes}`;
    }
    if (proto === ArrayBuffer.prototype) return `A${Buffer.from(value as ArrayBuffer).toString('base64')}`;
    throw notDigestible(describeObject(proto), HIDDEN_STATE);
  } finally {
    path.delete(value);
  }
}

/** The class name of an object for an error message (no value). */
function describeObject(proto: object): string {
  const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' ? `${name} (class instance)` : 'class instance';
}

// One-shot `crypto.hash` (Node 20.12+) is about 2.5x faster than createHash for short inputs.
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: string) => string }).hash;

/** Texts whose digest {@link digest} keeps (each at most {@link DIGEST_MEMO_MAX_LENGTH} characters). */
export const DIGEST_MEMO_ENTRIES = 4096;
/** Longest text whose digest is kept, in characters (bounds the memo to about 4 MiB). */
export const DIGEST_MEMO_MAX_LENGTH = 512;
/**
 * Digests of recent texts: a cached function called again with the same arguments (a hit, the hot path)
 * looks its key's digest up instead of hashing again (a SHA-256 costs about a microsecond; the lookup
 * tens of nanoseconds). Bounded: {@link DIGEST_MEMO_ENTRIES} texts, least recently used dropped.
 */
const digestMemo = new LRUCache<string, string>({ max: DIGEST_MEMO_ENTRIES });

/** base64url SHA-256 of `text` (43 characters, no `:`). */
export function digest(text: string): string {
  const memoized = text.length <= DIGEST_MEMO_MAX_LENGTH;
  if (memoized) {
    const known = digestMemo.get(text);
    if (known !== undefined) return known;
  }
  const hash =
    oneShot === undefined
      ? createHash('sha256').update(text).digest('base64url')
      : oneShot('sha256', text, 'base64url');
  if (memoized) digestMemo.set(text, hash);
  return hash;
}

/**
 * A function's identity for its key: its name and a hash of its source, so the same function gives the
 * same key in every process, and two different functions (even with the same name) do not collide.
 * Closures with identical source share entries: give them a `name`.
 */
export function functionIdentity(fn: (...args: never[]) => unknown, name?: string): string {
  return `${name ?? fn.name}#${digest(Function.prototype.toString.call(fn))}`;
}

/** The `<deploymentId>:` segment, or `''` without a deployment id. */
export function deploymentSegment(deploymentId: string | null): string {
  return deploymentId === null ? '' : `${deploymentId}:`;
}

/**
 * The key (below the client's namespace) of one call:
 * `[<deploymentId>:]<keyPrefix>[:<entityId>]:<digest of identity and args>`.
 */
export function resultKey(
  deploymentId: string | null,
  keyPrefix: string,
  entityId: string | null,
  identity: string,
  args: readonly unknown[],
): string {
  const entity = entityId === null ? '' : `${entityId}:`;
  return `${deploymentSegment(deploymentId)}${keyPrefix}:${entity}${digest(`${identity}|${canonical(args)}`)}`;
}

/**
 * Text of an entity id for a key (strings as they are, numbers and bigints in decimal), as Python writes
 * it. An id containing `:` is refused: the key's segments are `:`-separated, so the entries of entity
 * `org:1` (`<prefix>:org:1:<digest>`) would fall under entity `org`'s targeted pattern
 * (`<prefix>:org:*`), and invalidating `org` would delete them. Glob characters are fine: stored as they
 * are, escaped in patterns.
 * @throws {CacheValidationError} for an empty id, an id containing `:`, or one of another type.
 */
export function entityText(entityId: unknown): string | null {
  if (entityId === null || entityId === undefined) return null;
  if (typeof entityId === 'string' || typeof entityId === 'number' || typeof entityId === 'bigint') {
    const text = String(entityId);
    if (text === '') throw new CacheValidationError('An entity id must not be empty');
    if (text.includes(':')) {
      throw new CacheValidationError(
        "An entity id must not contain ':' (it separates key segments: invalidating entity 'a' would also delete the entries of 'a:1'); map such ids to ':'-free text, e.g. replace ':' with another character",
      );
    }
    return text;
  }
  throw new CacheValidationError(`An entity id must be a string, number or bigint, got ${typeof entityId}`);
}

/** What `invalidationPatterns` deletes. */
export interface InvalidateOptions {
  /** The entity whose entries are cleared under each of `targetedPatterns`. */
  entityId?: string | number | bigint | null;
  /** Key prefixes whose entries of `entityId` are cleared: `<deploymentId>:<pattern>:<entityId>:*`. */
  targetedPatterns?: readonly string[];
  /** Key prefixes cleared entirely: `<deploymentId>:<pattern>*`. */
  broadPatterns?: readonly string[];
}

/**
 * The `flushByPattern` globs (below the client's namespace) of an invalidation.
 * @throws {CacheValidationError} for `targetedPatterns` without an `entityId`, or non-string patterns.
 */
export function invalidationPatterns(deploymentId: string | null, options: InvalidateOptions): string[] {
  const base = deploymentId === null ? '' : escapeGlob(deploymentSegment(deploymentId));
  const entity = entityText(options.entityId);
  const targeted = options.targetedPatterns ?? [];
  const broad = options.broadPatterns ?? [];
  for (const p of [...targeted, ...broad]) {
    if (typeof p !== 'string' || p === '')
      throw new CacheValidationError('Invalidation patterns must be non-empty strings');
  }
  if (targeted.length > 0 && entity === null) {
    throw new CacheValidationError('`targetedPatterns` need an `entityId`');
  }
  return [
    ...targeted.map((p) => `${base}${p}:${escapeGlob(entity as string)}:*`),
    ...broad.map((p) => `${base}${p}*`),
  ];
}

const DEPLOYMENT_RE = /^[A-Za-z0-9_.-]+$/;

/**
 * The deployment id of a client: the `deploymentId` option, else env `PRESS_DEPLOYMENT_ID`; `null` when
 * neither is set (or empty).
 * @throws {CacheValidationError} for an id with characters other than ASCII letters, digits, `_ - .`.
 */
export function resolveDeploymentId(
  option: string | null | undefined,
  env: Readonly<Record<string, string | undefined>>,
): string | null {
  const id = option === undefined ? env.PRESS_DEPLOYMENT_ID : option;
  if (id === null || id === undefined || id === '') return null;
  if (typeof id !== 'string' || !DEPLOYMENT_RE.test(id) || id.length > 256) {
    throw new CacheValidationError(
      "The `deploymentId` option (or PRESS_DEPLOYMENT_ID) must be ASCII letters, digits, '_', '-' or '.'",
    );
  }
  return id;
}
