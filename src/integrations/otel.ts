/**
 * `peak-cache/otel`: OpenTelemetry spans and metrics for every peak-cache operation, built on the
 * `peak-cache:operation` tracing channel (so it sees every `CacheClient` in the process, whichever
 * copy of peak-cache, ESM or CommonJS, created it). Needs `@opentelemetry/api` (an optional peer
 * dependency of peak-cache) and an OpenTelemetry SDK set up by the application.
 *
 * Spans follow the OpenTelemetry database semantic conventions for Redis: a `CLIENT` span named after
 * the operation (`get`, `mset`, `flushTenant`, ...) with `db.system.name` (and the older `db.system`)
 * `redis`, `db.operation.name`, `server.address`, `server.port` and `db.namespace` (the database index)
 * for a single server, `error.type` on failures, and peak-cache's own `peak_cache.tenant`,
 * `peak_cache.keys`, `peak_cache.hits` and `peak_cache.misses`. Never values, key names or credentials.
 *
 * Metrics: the `db.client.operation.duration` histogram (seconds), and the counters
 * `peak_cache.client.hits`, `peak_cache.client.misses` (keys, for `get` and `mget`) and
 * `peak_cache.client.errors`.
 *
 * @example
 * ```ts
 * import { instrumentPeakCache } from 'peak-cache/otel';
 *
 * // After the OpenTelemetry SDK is started (it registers the global tracer and meter providers):
 * const instrumentation = instrumentPeakCache();
 * // ... later, to stop:
 * instrumentation.disable();
 * ```
 *
 * @module
 */

import { tracingChannel } from 'node:diagnostics_channel';
import {
  type Attributes,
  type Counter,
  type Histogram,
  type MeterProvider,
  metrics,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import { OPERATION_CHANNEL, type OperationContext } from '../diagnostics.js';

/** Instrumentation scope name of the tracer and the meter. */
export const INSTRUMENTATION_NAME = 'peak-cache';

/**
 * Bucket boundaries (seconds) of `db.client.operation.duration`, as the semantic conventions advise.
 */
export const DURATION_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];

/** Options of {@link PeakCacheInstrumentation}. */
export interface PeakCacheInstrumentationOptions {
  /** Where spans go. @defaultValue the global tracer provider (`trace.getTracerProvider()`) */
  tracerProvider?: TracerProvider;
  /**
   * Where metrics go. @defaultValue the global meter provider (`metrics.getMeterProvider()`), read when
   * the instrumentation is constructed: start the SDK first
   */
  meterProvider?: MeterProvider;
  /** Create spans. @defaultValue true */
  traces?: boolean;
  /** Record metrics. @defaultValue true */
  metrics?: boolean;
}

/** The open span, start time and start attributes of one operation. */
interface Pending {
  readonly span: Span | undefined;
  readonly startedAt: number;
  /** {@link baseAttributes} at `start`; recomputed at the end only when the server was not yet known. */
  readonly attributes: Attributes;
  readonly serverKnown: boolean;
}

/** Semantic-convention attributes shared by an operation's span and metrics. */
function baseAttributes(ctx: OperationContext): Attributes {
  const server = ctx.server;
  const system = server?.system ?? 'redis';
  const attributes: Attributes = {
    'db.system.name': system,
    'db.system': system,
    'db.operation.name': ctx.operation,
  };
  if (server?.address !== undefined) attributes['server.address'] = server.address;
  if (server?.port !== undefined) attributes['server.port'] = server.port;
  if (server?.database !== undefined) attributes['db.namespace'] = String(server.database);
  return attributes;
}

/** `error.type`: the error's class name (`CacheTimeoutError`, ...), else `_OTHER`. */
function errorType(err: unknown): string {
  return err instanceof Error && err.name !== '' ? err.name : '_OTHER';
}

/**
 * Subscribes to peak-cache's tracing channel and turns each operation into a span and metric points.
 * Construct it, then {@link PeakCacheInstrumentation.enable | enable} it (or use
 * {@link instrumentPeakCache}). Its subscribers never throw into the cache client: a failure inside
 * OpenTelemetry is swallowed.
 */
export class PeakCacheInstrumentation {
  readonly #tracer: Tracer | undefined;
  readonly #duration: Histogram | undefined;
  readonly #hits: Counter | undefined;
  readonly #misses: Counter | undefined;
  readonly #errors: Counter | undefined;
  readonly #pending = new WeakMap<OperationContext, Pending>();
  readonly #channels = tracingChannel<unknown, OperationContext>(OPERATION_CHANNEL);
  #enabled = false;
  /** Operations started while enabled and not yet ended. */
  #inFlight = 0;
  #listeningToEnds = false;

  /** @param options - see {@link PeakCacheInstrumentationOptions}. */
  constructor(options: PeakCacheInstrumentationOptions = {}) {
    if (options.traces ?? true) {
      this.#tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(INSTRUMENTATION_NAME);
    }
    if (options.metrics ?? true) {
      const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(INSTRUMENTATION_NAME);
      this.#duration = meter.createHistogram('db.client.operation.duration', {
        description: 'Duration of peak-cache operations.',
        unit: 's',
        advice: { explicitBucketBoundaries: [...DURATION_BUCKETS] },
      });
      this.#hits = meter.createCounter('peak_cache.client.hits', {
        description: 'Keys found by peak-cache reads (get, mget).',
        unit: '{key}',
      });
      this.#misses = meter.createCounter('peak_cache.client.misses', {
        description: 'Keys not found by peak-cache reads (get, mget).',
        unit: '{key}',
      });
      this.#errors = meter.createCounter('peak_cache.client.errors', {
        description: 'peak-cache operations that failed.',
        unit: '{error}',
      });
    }
  }

  /** Whether the instrumentation is subscribed. */
  get enabled(): boolean {
    return this.#enabled;
  }

  /** Start creating spans and metrics for operations that start from now on. Idempotent. */
  enable(): void {
    if (this.#enabled) return;
    this.#enabled = true;
    this.#channels.start.subscribe(this.#onStart);
    if (!this.#listeningToEnds) {
      this.#listeningToEnds = true;
      this.#channels.asyncEnd.subscribe(this.#onAsyncEnd);
    }
  }

  /**
   * Stop recording operations that start from now on. Operations in flight still end their spans and
   * record their metrics; then the instrumentation leaves the channel entirely. Idempotent.
   */
  disable(): void {
    if (!this.#enabled) return;
    this.#enabled = false;
    this.#channels.start.unsubscribe(this.#onStart);
    this.#stopListeningWhenIdle();
  }

  #stopListeningWhenIdle(): void {
    if (this.#enabled || this.#inFlight > 0 || !this.#listeningToEnds) return;
    this.#listeningToEnds = false;
    this.#channels.asyncEnd.unsubscribe(this.#onAsyncEnd);
  }

  readonly #onStart = (message: unknown): void => {
    try {
      const ctx = message as OperationContext;
      const attributes = baseAttributes(ctx);
      const span = this.#tracer?.startSpan(ctx.operation, { kind: SpanKind.CLIENT, attributes });
      const serverKnown = ctx.server !== undefined;
      this.#pending.set(ctx, { span, startedAt: performance.now(), attributes, serverKnown });
      this.#inFlight++;
    } catch {
      // Never let a telemetry failure reach the cache call.
    }
  };

  readonly #onAsyncEnd = (message: unknown): void => {
    try {
      const ctx = message as OperationContext;
      const pending = this.#pending.get(ctx);
      if (pending === undefined) return;
      this.#pending.delete(ctx);
      this.#inFlight--;
      this.#stopListeningWhenIdle();
      const seconds = (performance.now() - pending.startedAt) / 1000;
      const failed = ctx.error !== undefined;
      const learned = !pending.serverKnown && ctx.server !== undefined;
      let attributes = pending.attributes;
      if (learned || failed) attributes = baseAttributes(ctx);
      if (failed) attributes['error.type'] = errorType(ctx.error);
      this.#finishSpan(pending.span, ctx, learned || failed ? attributes : undefined);
      this.#duration?.record(seconds, attributes);
      if (failed) this.#errors?.add(1, attributes);
      if (ctx.hits !== undefined && ctx.hits > 0) this.#hits?.add(ctx.hits, attributes);
      if (ctx.misses !== undefined && ctx.misses > 0) this.#misses?.add(ctx.misses, attributes);
    } catch {
      // Never let a telemetry failure reach the cache call.
    }
  };

  /** End `span`, adding what is known only at the end (`changed`: attributes that differ from start). */
  #finishSpan(span: Span | undefined, ctx: OperationContext, changed: Attributes | undefined): void {
    if (span === undefined) return;
    // The server is learned on the first connection; error.type only on failure.
    if (changed !== undefined) span.setAttributes(changed);
    if (ctx.tenant !== undefined) span.setAttribute('peak_cache.tenant', ctx.tenant);
    span.setAttribute('peak_cache.keys', ctx.keys);
    if (ctx.hits !== undefined) span.setAttribute('peak_cache.hits', ctx.hits);
    if (ctx.misses !== undefined) span.setAttribute('peak_cache.misses', ctx.misses);
    if (ctx.error !== undefined) {
      const err = ctx.error;
      if (err instanceof Error) span.recordException(err);
      span.setStatus({
        code: SpanStatusCode.ERROR,
        ...(err instanceof Error ? { message: err.message } : {}),
      });
    }
    span.end();
  }
}

/**
 * Create a {@link PeakCacheInstrumentation} and enable it.
 * @param options - see {@link PeakCacheInstrumentationOptions}.
 */
export function instrumentPeakCache(options: PeakCacheInstrumentationOptions = {}): PeakCacheInstrumentation {
  const instrumentation = new PeakCacheInstrumentation(options);
  instrumentation.enable();
  return instrumentation;
}
