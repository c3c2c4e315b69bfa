/**
 * Peak platform mode: ask the platform for the tenant's cache credentials and turn the reply into a
 * connection URL, exactly as Peak's Python client does.
 *
 * @module
 */

import { CacheAuthError, CacheConnectionError, CacheTimeoutError, CacheValidationError } from './errors.js';
import type { Session } from './session.js';

/** Path of the credentials endpoint, relative to {@link Session.baseUrl}. */
export const CREDENTIALS_PATH = '/connections/api/v1/connections/valkey-credentials';

/** What the platform says about the tenant's cache. */
export interface PlatformCredentials {
  /** `redis://` or `rediss://` connection URL, credentials included: treat as a secret. */
  url: string;
  /** The tenant name: the key prefix namespace. */
  tenant: string;
  /** The server engine, lower-cased, e.g. `'valkey'` or `'redis'`. */
  engine: string;
}

/**
 * The JSON reply of the credentials endpoint. Fields are `unknown` because the reply is untrusted;
 * {@link buildConnectionUrl} validates them.
 */
export interface CredentialsReply {
  /** Tenant name (required). */
  tenant?: unknown;
  /** `valkey` (default) or `redis`. */
  engine?: unknown;
  /** Complete connection URL; when present, the remaining fields are not used. */
  url?: unknown;
  /** Server host name or IP address. */
  host?: unknown;
  /** Server port, default 6379. */
  port?: unknown;
  /** ACL user name (engine `redis`; engine `valkey` uses the tenant name). */
  userId?: unknown;
  /** ACL password. */
  password?: unknown;
  [field: string]: unknown;
}

/** Options of {@link fetchCredentials}. */
export interface FetchCredentialsOptions {
  /** How long to wait for the whole reply, in milliseconds (a positive integer). */
  timeoutMs: number;
}

const DEFAULT_PORT = 6379;
const TLS_PORT = 6380;
const DEFAULT_ENGINE = 'valkey';

function replyError(problem: string): CacheConnectionError {
  return new CacheConnectionError(`Peak platform credentials reply ${problem}`);
}

function isPresent(value: unknown): boolean {
  return value !== undefined && value !== null;
}

function readTenant(reply: CredentialsReply): string {
  const { tenant } = reply;
  if (typeof tenant !== 'string' || tenant.trim() === '') throw replyError('has no `tenant`');
  return tenant;
}

function readEngine(reply: CredentialsReply): string {
  const { engine } = reply;
  if (!isPresent(engine)) return DEFAULT_ENGINE;
  if (typeof engine !== 'string' || engine.trim() === '') {
    throw replyError('has an invalid `engine` (expected a string such as "valkey" or "redis")');
  }
  return engine.trim().toLowerCase();
}

function readPort(reply: CredentialsReply): number {
  const { port } = reply;
  if (!isPresent(port)) return DEFAULT_PORT;
  const n = typeof port === 'string' && /^\d{1,5}$/.test(port.trim()) ? Number(port.trim()) : port;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw replyError('has an invalid `port` (expected an integer from 1 to 65535)');
  }
  return n;
}

/** The host as it goes into a URL authority: IPv6 addresses in brackets. */
function readHost(host: string): string {
  if (/[\s/?#@]/.test(host)) throw replyError('has an invalid `host`');
  if (host.includes(':') && !host.startsWith('[')) return `[${host}]`;
  return host;
}

/**
 * The connection URL described by a credentials reply, following the Python client's rules:
 *
 * - a `url` in the reply is used as is (it must be `redis://` or `rediss://`);
 * - otherwise the URL is `<scheme>://<user>:<password>@<host>:<port>` with `port` defaulting to 6379,
 *   scheme `rediss` when the port is 6380 or the engine is `valkey` (else `redis`), and user and
 *   password URL-encoded. For engine `valkey` the user is the tenant name, otherwise `userId`.
 *
 * Pure: no I/O. Error messages never contain the password.
 *
 * @param reply - the parsed JSON reply of the credentials endpoint.
 * @returns the connection URL (a secret: it holds the password).
 * @throws {CacheConnectionError} when `tenant` is missing, `host`/user/`password` are missing (all named),
 *   or `engine`, `port`, `host` or `url` is invalid.
 */
export function buildConnectionUrl(reply: CredentialsReply): string {
  const tenant = readTenant(reply);
  const engine = readEngine(reply);

  if (isPresent(reply.url)) {
    const { url } = reply;
    // No `cause` and no value in the message: the URL holds the password.
    if (typeof url !== 'string' || !/^rediss?:\/\/[^\s]+$/i.test(url.trim()) || !URL.canParse(url.trim())) {
      throw replyError('has an invalid `url` (expected a redis:// or rediss:// URL)');
    }
    return url.trim();
  }

  const valkey = engine === 'valkey';
  const { userId } = reply;
  const rawHost = typeof reply.host === 'string' ? reply.host.trim() : '';
  const user = valkey
    ? tenant
    : typeof userId === 'string' || typeof userId === 'number'
      ? String(userId)
      : '';
  const password = typeof reply.password === 'string' ? reply.password : '';
  const missing: string[] = [];
  if (rawHost === '') missing.push('`host`');
  if (user === '') missing.push('`userId`');
  if (password === '') missing.push('`password`');
  if (missing.length > 0) {
    throw replyError(
      `has no \`url\` and is missing ${missing.join(', ')} (needed to build the ${engine} connection URL)`,
    );
  }

  const host = readHost(rawHost);
  const port = readPort(reply);
  const scheme = port === TLS_PORT || valkey ? 'rediss' : 'redis';
  return `${scheme}://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}`;
}

/** Validates a parsed reply and extracts the credentials. */
function credentialsFromReply(body: unknown): PlatformCredentials {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    const kind = body === null ? 'null' : Array.isArray(body) ? 'an array' : `a ${typeof body}`;
    throw replyError(`is not a JSON object (got ${kind})`);
  }
  const reply = body as CredentialsReply;
  const url = buildConnectionUrl(reply);
  return { url, tenant: readTenant(reply), engine: readEngine(reply) };
}

/** Whether a `fetch` failure is the timeout of `signal` (`AbortSignal.timeout`). @internal */
export function isTimeout(err: unknown, signal: AbortSignal): boolean {
  return (
    (err instanceof Error && err.name === 'TimeoutError') ||
    (signal.aborted && signal.reason instanceof Error && signal.reason.name === 'TimeoutError')
  );
}

/**
 * A one-line reason for a network failure: undici wraps the socket error as `cause` of "fetch failed".
 * @internal
 */
export function networkReason(err: unknown): string {
  const inner = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  if (inner instanceof Error) {
    const code = (inner as { code?: unknown }).code;
    if (inner.message !== '') return inner.message;
    if (typeof code === 'string') return code;
  }
  return err instanceof Error && err.message !== '' ? err.message : String(err);
}

/**
 * `JSON.parse`'s `SyntaxError` quotes the text it failed on, which may hold the password: keep the
 * error, drop the quote.
 */
function redactedSyntaxError(err: unknown): Error {
  const message = err instanceof Error ? err.message : String(err);
  const safe = message
    .replace(/^Unexpected token '.+?', /s, 'Unexpected token, ')
    .replace(/, (?:\.\.\.)?".*"(?:\.\.\.)? is not valid JSON$/s, ' (text omitted) is not valid JSON');
  return new SyntaxError(
    safe.includes('"') ? 'reply is not valid JSON (details omitted: they may quote a secret)' : safe,
  );
}

/**
 * Fetches the tenant's cache credentials from the Peak platform:
 * `GET <session.baseUrl>/connections/api/v1/connections/valkey-credentials` with the session token as the
 * `Authorization` header.
 *
 * Error messages name the problem and the platform URL, never the token or the password; the
 * underlying error is kept as `cause` (JSON syntax errors with the quoted text removed).
 *
 * @param session - token and platform base URL.
 * @param options - `timeoutMs`: the time allowed for the whole request, reply body included.
 * @returns the connection URL (a secret), tenant and engine.
 * @throws {CacheValidationError} when `timeoutMs` is not a positive integer.
 * @throws {CacheConnectionError} when there is no token, the platform cannot be reached, answers a
 *   non-2xx status, or the reply is malformed or incomplete.
 * @throws {CacheAuthError} when the platform rejects the token (HTTP 401 or 403).
 * @throws {CacheTimeoutError} when the platform does not answer within `timeoutMs`.
 *
 * @example
 * ```ts
 * const { url, tenant } = await fetchCredentials(new Session(), { timeoutMs: 10_000 });
 * ```
 */
export async function fetchCredentials(
  session: Session,
  options: FetchCredentialsOptions,
): Promise<PlatformCredentials> {
  const { timeoutMs } = options;
  if (typeof timeoutMs !== 'number' || !Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
    throw new CacheValidationError(
      `option \`timeoutMs\` must be a positive integer number of milliseconds; got ${String(timeoutMs)}`,
    );
  }
  const authorization = session.authorizationHeader();
  const { baseUrl } = session;
  const signal = AbortSignal.timeout(timeoutMs);
  const timedOut = (cause: unknown) =>
    new CacheTimeoutError(`the Peak platform at ${baseUrl} did not answer within ${timeoutMs} ms`, { cause });

  let response: Response;
  try {
    response = await fetch(`${baseUrl}${CREDENTIALS_PATH}`, {
      method: 'GET',
      headers: { Authorization: authorization, Accept: 'application/json' },
      signal,
    });
  } catch (err) {
    if (isTimeout(err, signal)) throw timedOut(err);
    throw new CacheConnectionError(`could not reach the Peak platform at ${baseUrl}: ${networkReason(err)}`, {
      cause: err,
    });
  }

  if (!response.ok) {
    // Free the connection; the body of an error reply is not used (it might echo the request).
    await response.body?.cancel().catch(() => {});
    const status = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
    if (response.status === 401 || response.status === 403) {
      throw new CacheAuthError(
        `Peak platform rejected the API token (HTTP ${response.status}); check API_KEY or the authToken option and the stage (${session.stage})`,
      );
    }
    const hint = response.status === 404 ? ' (check the stage or the platform base URL)' : '';
    throw new CacheConnectionError(
      `Peak platform at ${baseUrl} answered ${status} to the cache credentials request${hint}`,
    );
  }

  let text: string;
  try {
    text = await response.text();
  } catch (err) {
    if (isTimeout(err, signal)) throw timedOut(err);
    throw new CacheConnectionError(
      `could not read the credentials reply of the Peak platform at ${baseUrl}: ${networkReason(err)}`,
      { cause: err },
    );
  }

  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new CacheConnectionError(
      `Peak platform credentials reply is not valid JSON (HTTP ${response.status}, ${text.length} characters)`,
      { cause: redactedSyntaxError(err) },
    );
  }
  return credentialsFromReply(body);
}
