/**
 * A worker process of the randomized concurrency test of cached functions (see
 * cached-worker-harness.ts): one `CacheClient` on the test server, running the parent's commands
 * (`getOrSet` with a scripted factory, `invalidate`, `delete`) concurrently as they arrive over IPC, and
 * appending every event to the shared history (cached-worker-protocol.ts) through a second, plain
 * connection.
 *
 * It installs no `unhandledRejection` handler: an unhandled rejection from the library kills it with
 * exit code 1, which the parent reports as a host crash. Every promise it creates has an owner.
 *
 * Start: `node --import tsx cached-worker.ts` with IPC and env `CONC_CONFIG` (a {@link WorkerConfig}).
 */
import { createClient } from '@redis/client';
import { CacheClient, CacheError, type GetOrSetOptions } from '../../src/index.js';
import {
  cachedKey,
  type EventBody,
  type FactorySpec,
  type FactoryValue,
  itemTag,
  LOG_SCRIPT,
  type WorkerCommand,
  type WorkerConfig,
  type WorkerMessage,
} from './cached-worker-protocol.js';

const config = JSON.parse(process.env.CONC_CONFIG as string) as WorkerConfig;
const cache = new CacheClient({
  connectionConfig: { url: config.url, tenant: config.tenant },
  deploymentId: null,
});
const history = createClient({ url: config.url });
history.on('error', () => {}); // a failure surfaces as the rejection of the command that met it (fail())

/** Append one event; resolves with its sequence number. */
async function log(body: EventBody): Promise<number> {
  const args = ['EVAL', LOG_SCRIPT, '2', config.clockKey, config.logKey, JSON.stringify(body)];
  return Number(await history.sendCommand(args));
}

function send(message: WorkerMessage): void {
  process.send?.(message);
}

const getOrSetOptions: GetOrSetOptions = {
  ttl: 600,
  lockTimeoutMs: config.lockTimeoutMs,
  lockTtlMs: config.lockTtlMs,
  // Only when the library has it (an unknown option is a validation error).
  ...(config.hardTimeoutMs > 0 ? ({ hardTimeoutMs: config.hardTimeoutMs } as GetOrSetOptions) : {}),
  ...(config.extraOptions as GetOrSetOptions),
};

/**
 * Longest a call may take: `hardTimeoutMs` when there is one; else the lock wait plus the longest
 * factory (a caller waits at most `lockTimeoutMs` for others, then runs its own). Plus slack.
 */
const boundMs =
  (config.hardTimeoutMs > 0 ? config.hardTimeoutMs : config.lockTimeoutMs + config.maxFactoryMs) +
  config.slackMs;

/** Calls that may still become overdue (their bound timer is running). */
const watched = new Set<string>();
/** The parent asked for `finish`: no new commands; tell it once {@link watched} is empty. */
let finishing = false;
/** The parent disconnected: the client is closing; late settlements are not recorded. */
let closing = false;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The factory of call `c`: logs its start (whose `v` versions its value) and its end. */
function factoryOf(
  c: string,
  k: number,
  spec: FactorySpec,
  onStart: () => void,
): () => Promise<FactoryValue> {
  return async () => {
    const v = await log({ e: 'fstart', c, w: config.worker, k });
    onStart();
    if (spec.kind === 'hang') return new Promise<never>(() => {});
    await sleep(spec.ms);
    await log({ e: 'fend', c, k, ok: spec.kind === 'ok' });
    if (spec.kind === 'fail') throw new Error(`factory failure of ${c}`);
    return { v, c, k };
  };
}

async function getOrSet(c: string, k: number, spec: FactorySpec): Promise<void> {
  watched.add(c); // before any await: a `finish` arriving meanwhile waits for this call
  await log({ e: 'call', c, w: config.worker, k, f: spec });
  // A call whose own factory hangs has no bound unless the library has a hard timeout.
  const unwatch = (): void => {
    clearTimeout(timer);
    watched.delete(c);
    maybeFinished();
  };
  const timer = setTimeout(() => {
    log({ e: 'overdue', c, w: config.worker, k, boundMs }).then(unwatch, fail);
  }, boundMs);
  const onFactoryStart = (): void => {
    if (spec.kind === 'hang' && config.hardTimeoutMs === 0) unwatch();
  };
  const t0 = performance.now();
  try {
    const value = (await cache.getOrSet(cachedKey(k), factoryOf(c, k, spec, onFactoryStart), {
      ...getOrSetOptions,
      tags: [itemTag(k)],
    })) as FactoryValue;
    if (!closing) await log({ e: 'cend', c, k, ms: performance.now() - t0, value });
  } catch (err) {
    const e = err as Error;
    const error = {
      name: e?.name ?? typeof err,
      message: String(e?.message),
      cacheError: err instanceof CacheError,
    };
    if (!closing) await log({ e: 'cend', c, k, ms: performance.now() - t0, err: error });
  } finally {
    if (watched.has(c)) unwatch();
  }
}

async function clear(command: { op: 'invalidate' | 'delete'; c: string; key: number }): Promise<void> {
  const { c, key: k } = command;
  watched.add(c); // `finish` waits for it (a hung one fails the run at the parent's finish timeout)
  try {
    await log({ e: 'istart', c, k, kind: command.op });
    try {
      // Issue 19: the key's tag ('remove': the entry's value is never served again, in any process, even
      // when its fill is still running) and the entity's Python-layout keys (deleted before it resolves).
      if (command.op === 'invalidate') {
        await Promise.all([
          cache.invalidateTags([itemTag(k)], { behavior: 'remove' }),
          cache.invalidate({ entityId: k, targetedPatterns: ['item'] }, { wait: true }),
        ]);
      } else await cache.delete(cachedKey(k));
      await log({ e: 'idone', c, k, ok: true });
    } catch (err) {
      await log({ e: 'idone', c, k, ok: false, err: String(err) });
    }
  } finally {
    watched.delete(c);
    maybeFinished();
  }
}

/** The history connection failed: the harness failed; exit loudly, not as an unhandled rejection. */
function fail(err: unknown): void {
  if (closing) return;
  console.error('cached-worker: history write failed', err);
  process.exit(3);
}

function maybeFinished(): void {
  if (finishing && watched.size === 0) {
    finishing = false;
    send({ type: 'finished' });
  }
}

function run(command: WorkerCommand): void {
  if (command.op === 'finish') {
    finishing = true;
    maybeFinished();
    return;
  }
  if (finishing) return;
  const done = command.op === 'getOrSet' ? getOrSet(command.c, command.key, command.factory) : clear(command);
  done.catch(fail);
}

/** A timer this much late means the process was starved (see the `stall` record). */
const STALL_MS = 150;
const TICK_MS = 50;

/** Record event-loop stalls: a starved owner cannot extend its lease in time (cached-worker-check.ts). */
function watchStalls(): void {
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const late = now - last - TICK_MS;
    last = now;
    if (late > STALL_MS)
      log({ e: 'stall', p: `${config.worker}.${config.gen}`, ms: late + TICK_MS }).catch(fail);
  }, TICK_MS);
  timer.unref();
}

async function main(): Promise<void> {
  await history.connect();
  await cache.ping();
  watchStalls();
  process.on('message', (m: WorkerCommand) => run(m));
  process.on('disconnect', () => {
    // The parent is done with this worker: close without waiting for hung factories.
    closing = true;
    void Promise.allSettled([cache.close(), history.close()]).then(() => process.exit(0));
  });
  send({ type: 'ready' });
}

main().catch((err: unknown) => {
  console.error('cached-worker: start failed', err);
  process.exit(2);
});
