/**
 * Where the `<deploymentId>` segment of cached functions' keys comes from, resolved lazily (at the first
 * cached call or `invalidate`, never at construction):
 *
 * 1. The client option `deploymentId`: used as it is, no network.
 * 2. Direct mode (no session): env `PRESS_DEPLOYMENT_ID` as it is, no network.
 * 3. Platform mode (a `Session`: the `session` option, or env `API_KEY`): Python's resolution through
 *    Press (see `press.ts`): the parent deployment's id when there is one, else `PRESS_DEPLOYMENT_ID`.
 *
 * Without any of them there is no deployment segment.
 *
 * @module
 */
import { resolvePressDeploymentId } from '../press.js';
import type { Session } from '../session.js';
import { resolveDeploymentId } from './keys.js';

/**
 * The deployment id: the value once known (so a call that needs it adds no `await`), a promise while
 * Press is asked. A rejected promise is a failed resolution; the next call asks again.
 */
export type DeploymentIdHook = () => string | null | Promise<string | null>;

/**
 * The deployment id hook of a client.
 *
 * @param option - the client's `deploymentId` option (`undefined` when not given).
 * @param env - where `PRESS_DEPLOYMENT_ID` is read (the client's `env` option, else `process.env`).
 * @param session - the platform session, or `undefined` in direct mode.
 * @param timeoutMs - time allowed for the Press request, in milliseconds.
 * @throws {CacheValidationError} for an invalid `deploymentId` option or `PRESS_DEPLOYMENT_ID`.
 */
export function deploymentIdHook(
  option: string | null | undefined,
  env: Readonly<Record<string, string | undefined>>,
  session: Session | undefined,
  timeoutMs: number,
): DeploymentIdHook {
  const configured = resolveDeploymentId(option, env);
  if (option !== undefined || session === undefined || configured === null) return () => configured;
  let known: string | undefined;
  return () => {
    if (known !== undefined) return known;
    return resolvePressDeploymentId(session, configured, timeoutMs).then((id) => {
      known = id;
      return id;
    });
  };
}
