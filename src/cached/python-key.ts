/**
 * Keys of `cacheResult(fn, { keyStyle: 'python' })`: the key Peak's Python `cache_result` builds for the
 * same call (peak-sdk `peak/decorators/utils.py`, `generate_cache_key_with_entity_id` and
 * `encode_data`), so a TypeScript service and a Python job share cached results both ways:
 *
 * ```
 * [<deploymentId>:]<keyPrefix>:[<entity>:]<base64 of json.dumps({"args": [...], "kwargs": {...}}, sort_keys=True)>
 * ```
 *
 * - `args` are the call's positional arguments, `kwargs` its keyword arguments: with `kwargs: 'last'`,
 *   a last argument that is a plain object (or `undefined`) is the keyword arguments and the arguments
 *   before it are positional; otherwise every argument is positional and `kwargs` is `{}`. Trailing
 *   `undefined` arguments are left out (a parameter not passed, as in a Python call).
 * - The JSON is Python's `json.dumps(..., sort_keys=True)` byte for byte (`, ` and `: `, non-ASCII as
 *   `\uXXXX`, floats as `repr()`, `bigint` as an int, members sorted by name at every level); base64 is
 *   the standard alphabet with padding (`base64.b64encode`).
 * - The entity (Python's `entity_id_param`): the keyword argument of that name when truthy, else the
 *   first positional argument; left out when falsy in Python's sense (`null`, `undefined`, `false`, `0`,
 *   `''`, `[]`, `{}`). Written as Python's `str()` writes it (`True`, `1.5`, `1e-05`, `nan`).
 *
 * @module
 */

import { pythonNumber } from '../codec/python-number.js';
import { toPythonJsonSorted } from '../codec.js';
import { CacheValidationError } from '../errors.js';
import { deploymentSegment, entityText } from './keys.js';

/** The options of `cacheResult` for Python's key layout (part of `CacheResultOptions`). */
export interface PythonKeyOptions {
  /**
   * `'python'`: the key Peak's Python `cache_result` builds for the same arguments
   * (`[<deploymentId>:]<keyPrefix>:[<entity>:]<base64 of json.dumps({"args": [...], "kwargs": {...}}, sort_keys=True)>`),
   * and values stored with the client's codec, so a Python service's cached results are hits here and
   * the reverse (see docs/cached-functions.md). Arguments must be JSON data. As in Python, the key has
   * no function identity: give each function its own `keyPrefix`. Cannot be combined with `entityId`,
   * `key` or `codec: 'typed'`.
   * `'digest'`: this library's own key (a SHA-256 digest of the function and its arguments).
   * @default 'digest'
   */
  keyStyle?: 'digest' | 'python';
  /**
   * With `keyStyle: 'python'`, which arguments are Python's keyword arguments: `'last'` - a last
   * argument that is a plain object (or `undefined`) is `kwargs` (`fn(id, { page: 2 })` is Python's
   * `fn(id, page=2)`), the arguments before it are `args`; `'none'` - every argument is positional
   * (`kwargs` is `{}`). Trailing `undefined` arguments are left out either way.
   * @default 'none'
   */
  kwargs?: 'last' | 'none';
  /**
   * With `keyStyle: 'python'`, Python's `entity_id_param`: the entity segment is the keyword argument of
   * that name when truthy, else the first positional argument; none when falsy in Python's sense
   * (`null`, `undefined`, `false`, `0`, `''`, `[]`, `{}`). Written as Python's `str()` writes it.
   * @default none (no entity segment)
   */
  entityParam?: string;
}

/** How a call's arguments map to Python's `args` and `kwargs` (see the module documentation). */
export interface PythonCallStyle {
  /** `'last'`: a trailing plain-object argument is `kwargs`. `'none'`: every argument is positional. */
  readonly kwargs: 'last' | 'none';
  /** Python's `entity_id_param`, or `undefined` for no entity segment. */
  readonly entityParam: string | undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Python's `args` and `kwargs` of a call. */
export function pythonCall(
  args: readonly unknown[],
  kwargs: PythonCallStyle['kwargs'],
): { args: unknown[]; kwargs: Record<string, unknown> } {
  let end = args.length;
  while (end > 0 && args[end - 1] === undefined) end--;
  if (kwargs === 'last' && end > 0 && isPlainObject(args[end - 1])) {
    return { args: args.slice(0, end - 1), kwargs: args[end - 1] as Record<string, unknown> };
  }
  return { args: args.slice(0, end), kwargs: {} };
}

/** Whether Python would find `value` truthy (`if not entity_id`), for the values a call can hold. */
function pythonTruthy(value: unknown): boolean {
  if (typeof value === 'number') return value !== 0; // NaN is truthy in Python
  if (typeof value === 'bigint') return value !== 0n;
  if (Array.isArray(value)) return value.length > 0;
  if (isPlainObject(value)) return Object.keys(value).length > 0;
  return Boolean(value);
}

/** `str(value)` as Python writes a scalar entity id. */
function pythonStr(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'boolean':
      return value ? 'True' : 'False';
    case 'bigint':
      return value.toString();
    case 'number':
      if (Number.isNaN(value)) return 'nan';
      if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
      return pythonNumber(value);
  }
  throw new CacheValidationError(
    `cacheResult (keyStyle 'python'): the entity id must be a string, number, bigint or boolean, got ${Array.isArray(value) ? 'an array' : typeof value}`,
  );
}

/** The entity segment's text of a call, or `null` (Python's rule: see the module documentation). */
export function pythonEntity(
  args: readonly unknown[],
  kwargs: Readonly<Record<string, unknown>>,
  entityParam: string | undefined,
): string | null {
  if (entityParam === undefined) return null;
  let entity = Object.hasOwn(kwargs, entityParam) ? kwargs[entityParam] : undefined;
  if (!pythonTruthy(entity)) entity = args[0];
  if (!pythonTruthy(entity)) return null;
  return entityText(pythonStr(entity));
}

/**
 * Python's `encode_data({"args": args, "kwargs": kwargs})`: base64 of the sorted-keys JSON.
 * @throws {CacheValidationError} naming cacheResult when an argument has no JSON form.
 */
export function encodePythonArgs(
  args: readonly unknown[],
  kwargs: Readonly<Record<string, unknown>>,
): string {
  let json: string;
  try {
    json = toPythonJsonSorted({ args, kwargs });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new CacheValidationError(
      `cacheResult (keyStyle 'python'): the arguments cannot be part of Python's key (${reason}); pass JSON data, or use the default key style`,
      { cause: err },
    );
  }
  // ensure_ascii: the JSON is ASCII, so UTF-8 and Latin-1 bytes are the same.
  return Buffer.from(json, 'latin1').toString('base64');
}

/**
 * The key (below the client's namespace) of one call in Python's layout:
 * `[<deploymentId>:]<keyPrefix>:[<entity>:]<encode_data>`.
 * @throws {CacheValidationError} for arguments without a JSON form or an unusable entity id.
 */
export function pythonResultKey(
  deploymentId: string | null,
  keyPrefix: string,
  callArgs: readonly unknown[],
  style: PythonCallStyle,
): string {
  const { args, kwargs } = pythonCall(callArgs, style.kwargs);
  const entity = pythonEntity(args, kwargs, style.entityParam);
  const entitySegment = entity === null ? '' : `${entity}:`;
  return `${deploymentSegment(deploymentId)}${keyPrefix}:${entitySegment}${encodePythonArgs(args, kwargs)}`;
}

/**
 * The Python call style of `cacheResult` options, or `undefined` for the default key style.
 * @throws {CacheValidationError} for an unknown `keyStyle`, a bad `kwargs` or `entityParam`, or options
 *   the Python layout cannot honour (`entityId`, `key`, `codec: 'typed'`).
 */
export function pythonCallStyle(options: {
  keyStyle?: unknown;
  kwargs?: unknown;
  entityParam?: unknown;
  entityId?: unknown;
  key?: unknown;
  codec?: unknown;
}): PythonCallStyle | undefined {
  const { keyStyle, kwargs, entityParam } = options;
  if (keyStyle === undefined || keyStyle === 'digest') {
    if (kwargs !== undefined || entityParam !== undefined) {
      throw new CacheValidationError(
        "cacheResult: the `kwargs` and `entityParam` options need `keyStyle: 'python'`",
      );
    }
    return undefined;
  }
  if (keyStyle !== 'python') {
    throw new CacheValidationError("cacheResult: the `keyStyle` option must be 'digest' or 'python'");
  }
  if (kwargs !== undefined && kwargs !== 'last' && kwargs !== 'none') {
    throw new CacheValidationError("cacheResult: the `kwargs` option must be 'last' or 'none'");
  }
  if (entityParam !== undefined && (typeof entityParam !== 'string' || entityParam === '')) {
    throw new CacheValidationError('cacheResult: the `entityParam` option must be a non-empty string');
  }
  for (const name of ['entityId', 'key'] as const) {
    if (options[name] !== undefined) {
      throw new CacheValidationError(
        `cacheResult: the \`${name}\` option cannot be combined with keyStyle 'python' (the key is Python's; use \`entityParam\`)`,
      );
    }
  }
  if (options.codec === 'typed') {
    throw new CacheValidationError(
      "cacheResult: keyStyle 'python' stores values with the client's codec (so Python reads them): drop `codec: 'typed'`",
    );
  }
  return { kwargs: kwargs ?? 'none', entityParam };
}
