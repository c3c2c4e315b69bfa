/**
 * Peak's Press API, for the one thing the cache needs from it: the deployment id of cached functions,
 * resolved as Peak's Python SDK resolves it (`peak/decorators/utils.py`, `get_deployment_id_for_cache`):
 * `GET <press>/v1/blocks/deployments/<PRESS_DEPLOYMENT_ID>` with the session's token as the
 * `Authorization` header (Python's `Block.describe_deployment`, subdomain `press`); the parent's `id`
 * when the deployment has a parent, else the deployment's own id.
 *
 * @module
 */
import { resolveDeploymentId } from './cached/keys.js';
import { CacheAuthError, CacheConnectionError, CacheError, CacheTimeoutError } from './errors.js';
import { isTimeout, networkReason } from './platform.js';
import type { Session } from './session.js';

/** Path of the block deployments endpoint, relative to {@link Session.pressUrl}. */
export const DEPLOYMENTS_PATH = '/v1/blocks/deployments';

const OPERATION = 'Resolving the deployment id of cached functions';

/**
 * Resolutions of this process, by Press URL and deployment id: one request each, shared by concurrent
 * callers (Python caches the answer for the process too: `lru_cache`). A failed request is forgotten
 * when it settles, so the next call asks again.
 */
const resolutions = new Map<string, Promise<string>>();

function pressError(problem: string, cause?: unknown): CacheConnectionError {
  return new CacheConnectionError(`${OPERATION} failed: ${problem}`, cause === undefined ? {} : { cause });
}

/** The id the cache uses for a deployment reply: the parent's `id` when there is a parent, else `own`. */
export function deploymentIdFromReply(body: unknown, own: string): string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw pressError('the Press reply is not a JSON object');
  }
  const parent = (body as { parent?: unknown }).parent;
  // Python: `if parent and parent.get("id")` -- a missing, null or id-less parent means "no parent".
  if (typeof parent !== 'object' || parent === null) return own;
  const id = (parent as { id?: unknown }).id;
  if (id === undefined || id === null || id === '') return own;
  try {
    if (typeof id !== 'string') throw new TypeError(typeof id);
    return resolveDeploymentId(id, {}) as string;
  } catch (err) {
    throw pressError(
      "the Press reply's parent id cannot be part of a key (expected ASCII letters, digits, '_', '-' or '.')",
      err,
    );
  }
}

async function fetchDeploymentId(session: Session, deploymentId: string, timeoutMs: number): Promise<string> {
  const authorization = session.authorizationHeader();
  const url = `${session.pressUrl}${DEPLOYMENTS_PATH}/${encodeURIComponent(deploymentId)}`;
  const signal = AbortSignal.timeout(timeoutMs);
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, {
      method: 'GET',
      headers: { Authorization: authorization, Accept: 'application/json' },
      signal,
    });
    if (!response.ok) {
      await response.body?.cancel().catch(() => {});
      const status = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
      if (response.status === 401 || response.status === 403) {
        throw new CacheAuthError(
          `${OPERATION} failed: Press at ${session.pressUrl} rejected the API token (${status}); check API_KEY or the session's authToken and the stage (${session.stage})`,
        );
      }
      throw pressError(`Press at ${session.pressUrl} answered ${status} for deployment ${deploymentId}`);
    }
    text = await response.text();
  } catch (err) {
    if (err instanceof CacheError) throw err;
    if (isTimeout(err, signal)) {
      throw new CacheTimeoutError(
        `${OPERATION} failed: Press at ${session.pressUrl} did not answer within ${timeoutMs} ms`,
        { cause: err },
      );
    }
    throw pressError(`could not reach Press at ${session.pressUrl}: ${networkReason(err)}`, err);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    // The SyntaxError quotes the reply: left out (a reply is not expected to hold secrets, but may).
    throw pressError(`the Press reply is not valid JSON (${text.length} characters)`);
  }
  return deploymentIdFromReply(body, deploymentId);
}

/**
 * The deployment id cached functions use for `deploymentId` in platform mode, as Python resolves it
 * (see the module documentation). One request per Press URL and deployment id in this process; callers
 * asking while it runs share it; a failure is not remembered (the next call asks again).
 *
 * @param session - the token (sent as `Authorization`, never in a message) and {@link Session.pressUrl}.
 * @param deploymentId - `PRESS_DEPLOYMENT_ID`.
 * @param timeoutMs - the time allowed for the whole request, in milliseconds.
 * @throws {CacheConnectionError} (a {@link CacheTimeoutError} for a timeout, a {@link CacheAuthError} for
 *   HTTP 401/403) when Press cannot be reached, answers an error, or the reply is malformed; the
 *   message names the operation and the Press URL.
 */
export function resolvePressDeploymentId(
  session: Session,
  deploymentId: string,
  timeoutMs: number,
): Promise<string> {
  const id = `${session.pressUrl}\u0000${deploymentId}`;
  const known = resolutions.get(id);
  if (known !== undefined) return known;
  const request = fetchDeploymentId(session, deploymentId, timeoutMs);
  resolutions.set(id, request);
  request.catch(() => {
    if (resolutions.get(id) === request) resolutions.delete(id);
  });
  return request;
}
