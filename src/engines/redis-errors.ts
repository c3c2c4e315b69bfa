/**
 * Maps node-redis failures to peak-cache errors, for the Redis and Redis Cluster engines. Messages say
 * what went wrong and where (host:port), never a password, a key's value or a URL with credentials.
 *
 * @module
 */
import {
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  ErrorReply,
  ReconnectStrategyError,
  SocketTimeoutError,
  TimeoutError,
} from '@redis/client';
import { CacheAuthError, CacheConnectionError, CacheError, CacheTimeoutError } from '../errors.js';

/** Where the engine connects, for messages: `host:port`, never credentials. */
export interface ErrorContext {
  /** `host:port` (or a list of them for a cluster). */
  readonly target: string;
  /** The configured reply timeout, in milliseconds. */
  readonly timeoutMs: number;
  /**
   * A single-server connection (not cluster mode): a cluster's redirect or slot error then means the
   * server is a cluster node, and the error says to set `cluster: true`.
   */
  readonly standalone?: boolean;
}

const AUTH_REPLY = /^(WRONGPASS|NOAUTH)\b/;
const UNAVAILABLE_REPLY = /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN)\b/;
/** Replies only a Redis Cluster node sends: a client not in cluster mode is talking to a cluster. */
const CLUSTER_REPLY = /^(MOVED|ASK|CROSSSLOT|CLUSTERDOWN)\b/;

/** Whether `err` (or its cause) is the server rejecting our credentials. */
export function isAuthFailure(err: unknown): boolean {
  if (err instanceof CacheAuthError) return true;
  return err instanceof Error && AUTH_REPLY.test(err.message);
}

/**
 * Whether `err` (a server error reply, or a {@link CacheError} wrapping one) starts with the error code
 * `code`, e.g. `NOPERM` (an ACL refusal) or `NOSCRIPT` (a script not cached on that server).
 */
export function isReplyCode(err: unknown, code: string): boolean {
  const reply = err instanceof ErrorReply ? err : err instanceof CacheError ? err.cause : undefined;
  return reply instanceof ErrorReply && reply.message.startsWith(code);
}

/**
 * A call refused because `maxQueueLength` calls already wait on the connection (node-redis's queue, or the
 * `get`s of a coalesced batch: see `get-batch.ts`).
 */
export function queueFullError(ctx: ErrorContext, cause?: unknown): CacheConnectionError {
  return new CacheConnectionError(`too many commands waiting for ${ctx.target} (the queue is full)`, {
    cause,
  });
}

/** Turn any node-redis failure into a {@link CacheError} subclass whose message has no operation name. */
export function toCacheError(err: unknown, ctx: ErrorContext): CacheError {
  if (err instanceof CacheError) return err;
  if (err instanceof ReconnectStrategyError) return toCacheError(err.originalError, ctx);
  if (err instanceof ErrorReply) {
    const reply = err.message.split('\n')[0] ?? '';
    if (AUTH_REPLY.test(reply)) {
      return new CacheAuthError(`${ctx.target} rejected the credentials (${reply.split(' ')[0]})`, {
        cause: err,
      });
    }
    if (ctx.standalone === true && CLUSTER_REPLY.test(reply)) {
      return new CacheError(
        `${ctx.target} is a Redis Cluster node (${reply.split(' ')[0]}): set connectionConfig.cluster: true (or env PEAK_CACHE_CLUSTER=1)`,
        { cause: err },
      );
    }
    if (reply.startsWith('OOM')) {
      return new CacheError(`${ctx.target} is out of memory and refuses writes (${reply})`, { cause: err });
    }
    if (UNAVAILABLE_REPLY.test(reply)) {
      return new CacheConnectionError(`${ctx.target} is not available (${reply})`, { cause: err });
    }
    return new CacheError(`${ctx.target} replied with an error: ${reply}`, { cause: err });
  }
  if (err instanceof ConnectionTimeoutError) {
    return new CacheTimeoutError(`could not connect to ${ctx.target} within ${ctx.timeoutMs} ms`, {
      cause: err,
    });
  }
  if (err instanceof SocketTimeoutError || err instanceof TimeoutError) {
    return new CacheTimeoutError(`${ctx.target} did not reply within ${ctx.timeoutMs} ms`, { cause: err });
  }
  if (err instanceof ClientOfflineError) {
    return new CacheConnectionError(`not connected to ${ctx.target} (reconnecting)`, { cause: err });
  }
  if (err instanceof ClientClosedError) {
    return new CacheConnectionError(`the connection to ${ctx.target} is closed`, { cause: err });
  }
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string') {
      const lost = code === 'ECONNRESET' || code === 'EPIPE';
      return new CacheConnectionError(
        lost
          ? `the connection to ${ctx.target} was lost (${code})`
          : `could not connect to ${ctx.target} (${code})`,
        { cause: err },
      );
    }
    if (err.message === 'The queue is full') return queueFullError(ctx, err);
    return new CacheConnectionError(`connection to ${ctx.target} failed: ${err.message.split('\n')[0]}`, {
      cause: err,
    });
  }
  return new CacheError(`unexpected failure talking to ${ctx.target}`, { cause: err });
}
