/**
 * The Peak platform session: the API token, the stage and the platform base URL the client asks for
 * cache credentials (see {@link fetchCredentials} in `platform.ts`).
 *
 * @module
 */

import { type InspectOptions, inspect } from 'node:util';
import { CacheConnectionError, CacheValidationError } from './errors.js';

/** Environment variables a {@link Session} reads, by name. */
export type SessionEnv = Readonly<Record<string, string | undefined>>;

/** Options of {@link Session}. Every field is optional; the environment fills the gaps. */
export interface SessionOptions {
  /**
   * The Peak platform API token, sent as the `Authorization` header when fetching cache credentials.
   * Never logged, inspected or serialised.
   *
   * @default env `API_KEY`, else none (fetching credentials then fails with a `CacheConnectionError`)
   */
  authToken?: string | undefined;
  /**
   * The Peak stage (letters, digits and `-` only). Selects the platform base URL: `prod` ->
   * `https://service.peak.ai`, `latest` -> `https://service.dev.peak.ai`, any other stage `s` ->
   * `https://service.<s>.peak.ai`.
   *
   * @default env `STAGE`, else `'prod'`
   */
  stage?: string | undefined;
  /**
   * The platform base URL (`http:` or `https:`), overriding the one derived from the stage, e.g. to
   * point at a proxy or a local test server. A trailing `/` is removed.
   *
   * @default env `PEAK_PLATFORM_URL`, else derived from {@link SessionOptions.stage}
   */
  baseUrl?: string | undefined;
  /**
   * The base URL of Peak's Press API (`http:` or `https:`), where the deployment id of cached functions
   * is resolved (see docs/cached-functions.md), overriding the one derived from the stage as Python's
   * `get_base_domain(stage, "press")` derives it: `prod` -> `https://press.peak.ai`, `latest` ->
   * `https://press.dev.peak.ai`, any other stage `s` -> `https://press.<s>.peak.ai`. A trailing `/` is
   * removed.
   *
   * @default env `PEAK_PRESS_URL`, else derived from {@link SessionOptions.stage}
   */
  pressUrl?: string | undefined;
  /**
   * Where to read `API_KEY`, `STAGE`, `PEAK_PLATFORM_URL` and `PEAK_PRESS_URL` from. Read once, at
   * construction.
   *
   * @default `process.env`
   */
  env?: SessionEnv | undefined;
}

const STAGE_PATTERN = /^[A-Za-z0-9-]+$/;
const REDACTED = '[redacted]';
const MISSING_TOKEN = 'No Peak API token: pass `new Session({ authToken })` or set API_KEY';

/**
 * The base URL of a Peak API `subdomain` on a stage, as Python's `peak.helpers.get_base_domain` builds it:
 * `prod` has no stage segment, `latest` is `dev`, any other stage maps to its own host.
 */
function baseUrlForStage(stage: string, subdomain: 'service' | 'press'): string {
  if (stage === 'prod') return `https://${subdomain}.peak.ai`;
  if (stage === 'latest') return `https://${subdomain}.dev.peak.ai`;
  return `https://${subdomain}.${stage}.peak.ai`;
}

/** A non-empty env value, or `undefined` for an unset or empty variable. */
function envValue(env: SessionEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

function validateStage(stage: unknown, source: string): string {
  if (typeof stage !== 'string' || !STAGE_PATTERN.test(stage)) {
    throw new CacheValidationError(
      `${source} must be a Peak stage of letters, digits and '-' only, e.g. 'prod'; got ${describe(stage)}`,
    );
  }
  return stage;
}

function validateBaseUrl(value: unknown, source: string): string {
  if (typeof value !== 'string' || value === '') {
    throw new CacheValidationError(`${source} must be an http(s) URL string; got ${describe(value)}`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch (err) {
    throw new CacheValidationError(`${source} is not a valid URL: ${describe(value)}`, { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CacheValidationError(`${source} must use http: or https:, not ${url.protocol}`);
  }
  if (url.username !== '' || url.password !== '') {
    // The base URL shows up in error messages; credentials belong in `authToken`.
    throw new CacheValidationError(`${source} must not contain credentials; pass the token as authToken`);
  }
  if (url.search !== '' || url.hash !== '') {
    throw new CacheValidationError(
      `${source} must not have a query or fragment: ${url.origin}${url.pathname}`,
    );
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}

function validateToken(value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    // Never echo the value: it may be a (mistyped) secret.
    throw new CacheValidationError(`option \`authToken\` must be a non-empty string (got a ${typeof value})`);
  }
  return value;
}

/** A short, safe description of an invalid non-secret option value. */
function describe(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
  if (value === null) return 'null';
  return typeof value;
}

/**
 * A Peak platform session: the API token (secret), the stage and the platform base URL.
 * The environment is read once, at construction.
 *
 * The token is kept in a private field: `util.inspect`, `console.log` and `JSON.stringify` show
 * `authToken: '[redacted]'`; only {@link Session.authorizationHeader} returns it, for the request.
 *
 * @example
 * ```ts
 * const session = new Session({ authToken: process.env.MY_TOKEN, stage: 'test' });
 * session.baseUrl; // 'https://service.test.peak.ai'
 * ```
 */
export class Session {
  /** The Peak stage, e.g. `'prod'`. */
  readonly stage: string;
  /** The platform base URL, without a trailing `/`, e.g. `'https://service.peak.ai'`. */
  readonly baseUrl: string;
  /** The Press API base URL, without a trailing `/`, e.g. `'https://press.peak.ai'`. */
  readonly pressUrl: string;
  readonly #authToken: string | undefined;

  /**
   * @param options - token, stage, base URL and the environment to fall back on; see {@link SessionOptions}.
   * @throws {CacheValidationError} for an invalid stage, base URL or token (option or environment variable).
   */
  constructor(options: SessionOptions = {}) {
    const env: SessionEnv = options.env ?? process.env;

    if (options.authToken !== undefined) this.#authToken = validateToken(options.authToken);
    else this.#authToken = envValue(env, 'API_KEY');

    if (options.stage !== undefined) this.stage = validateStage(options.stage, 'option `stage`');
    else {
      const fromEnv = envValue(env, 'STAGE');
      this.stage = fromEnv === undefined ? 'prod' : validateStage(fromEnv, 'env STAGE');
    }

    if (options.baseUrl !== undefined) this.baseUrl = validateBaseUrl(options.baseUrl, 'option `baseUrl`');
    else {
      const fromEnv = envValue(env, 'PEAK_PLATFORM_URL');
      this.baseUrl =
        fromEnv === undefined
          ? baseUrlForStage(this.stage, 'service')
          : validateBaseUrl(fromEnv, 'env PEAK_PLATFORM_URL');
    }

    if (options.pressUrl !== undefined)
      this.pressUrl = validateBaseUrl(options.pressUrl, 'option `pressUrl`');
    else {
      const fromEnv = envValue(env, 'PEAK_PRESS_URL');
      this.pressUrl =
        fromEnv === undefined
          ? baseUrlForStage(this.stage, 'press')
          : validateBaseUrl(fromEnv, 'env PEAK_PRESS_URL');
    }
  }

  /** Whether a token is configured (without revealing it). */
  get hasAuthToken(): boolean {
    return this.#authToken !== undefined;
  }

  /**
   * The value of the `Authorization` header for a platform request: the raw token, as Peak expects.
   * Use it for the request only; never log it.
   *
   * @throws {CacheConnectionError} when no token was given and `API_KEY` is not set.
   */
  authorizationHeader(): string {
    if (this.#authToken === undefined) throw new CacheConnectionError(MISSING_TOKEN);
    return this.#authToken;
  }

  /** A JSON-safe view of the session, with the token redacted. */
  toJSON(): {
    /** The platform stage. */
    stage: string;
    /** The platform API base URL. */
    baseUrl: string;
    /** The Press API base URL. */
    pressUrl: string;
    /** `'[redacted]'` when a token is set, else `undefined`. */
    authToken: string | undefined;
  } {
    return {
      stage: this.stage,
      baseUrl: this.baseUrl,
      pressUrl: this.pressUrl,
      authToken: this.#authToken === undefined ? undefined : REDACTED,
    };
  }

  /** `util.inspect` / `console.log` view, with the token redacted. */
  [inspect.custom](depth: number, options: InspectOptions): string {
    if (depth < 0) return '[Session]';
    return `Session ${inspect(this.toJSON(), options)}`;
  }
}
