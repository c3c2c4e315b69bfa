/**
 * The types of the values `get` and `mget` can return, per codec: what the codec's `decode` really
 * gives back, so that a type parameter cannot promise more (under the default `peak` codec, `42` stored
 * reads back as the string `'42'`, so `get<number>` does not compile).
 *
 * @module
 */
import type { Codec, CodecName } from './codec.js';

/** The `codec` option: a built-in codec's name or a custom codec. */
export type CodecOption = CodecName | Codec;

/** A JSON value as the `peak` codec decodes it (Python's `json.loads`): big integers are `bigint`s. */
export type PeakJsonValue = string | number | bigint | boolean | null | PeakJsonValue[] | PeakJsonObject;

/** A JSON object as the `peak` codec decodes it. */
export interface PeakJsonObject {
  [key: string]: PeakJsonValue;
}

/**
 * What the `peak` codec returns for a stored value: a JSON object or array (a value stored as one), or
 * else the string stored, raw (a number, a boolean, `null` stored at the top level read back as strings:
 * `'42'`, `'True'` from Python, `'true'` from TypeScript).
 */
export type PeakValue = string | PeakJsonObject | PeakJsonValue[];

/** A JSON value as the `json` codec decodes it (`JSON.parse`). */
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;

/** A JSON object as the `json` codec decodes it. */
export interface JsonObject {
  [key: string]: JsonValue;
}

/**
 * The types a `get`/`mget` type parameter may name under codec `C`: under `'peak'` a string or an
 * object type (arrays included), never a number, boolean or `null` (they read back as strings); under
 * `'json'` and custom codecs, anything.
 */
export type ReadableType<C extends CodecOption> = [C] extends ['peak'] ? string | object : unknown;

/**
 * The type `get`/`mget` return when no type parameter is given: {@link PeakValue} under `'peak'`,
 * {@link JsonValue} under `'json'`, `unknown` under a custom codec.
 */
export type DecodedValue<C extends CodecOption> = [C] extends ['peak']
  ? PeakValue
  : [C] extends ['json']
    ? JsonValue
    : unknown;

/**
 * Options of a cached function (`getOrSet`, `getOrSetMany`, `cacheResult`) that store its results in the
 * client's codec, so they resolve to that codec's round trip ({@link DecodedValue}: under `'peak'`, `42`
 * comes back as `'42'`, on a miss as on a hit) rather than to the factory's type: `codec: 'client'`, and
 * for `cacheResult` also `keyStyle: 'python'` (Python's key and codec).
 */
export type ClientCodecChoice =
  | {
      /** Store in the client's codec (see `GetOrSetOptions.codec`). */
      readonly codec: 'client';
    }
  | {
      /** Python's key layout, which stores in the client's codec (see `CacheResultOptions.keyStyle`). */
      readonly keyStyle: 'python';
    };

/**
 * Options of a cached function that keep the factory's result type: the default `codec: 'typed'` (it
 * round-trips every JavaScript value) under the default key style.
 */
export interface TypedCodecChoice {
  /** See `GetOrSetOptions.codec`. */
  readonly codec?: 'typed';
  /** See `CacheResultOptions.keyStyle`. */
  readonly keyStyle?: 'digest';
}
