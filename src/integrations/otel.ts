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
 * `peak_cache.client.hits`, `peak_cache.client.misses` (keys, for reads: `get`, `mget`, cached
 * functions) and `peak_cache.client.errors`.
 *
 * Operations answered from process memory (near-cache hits; their only event is `asyncEnd`, with
 * `memory: true`) are recorded too: an instant span (started and ended at the same moment, so its
 * duration is 0) with the same attributes plus `peak_cache.answered_from_memory: true` (the OpenTelemetry
 * semantic conventions define no cache-hit attribute), a child of the span active at the call (the
 * answer is synchronous, so that is the caller's); a `db.client.operation.duration` point of 0 seconds
 * (no I/O was done, and the call's start is not published; such points fall in the first bucket and
 * pull the mean down: read the network's latency from the higher percentiles, or filter the spans); and
 * their hits and misses in the counters.
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
import { OPERATION_CHANNEL, type OperationContext, type ServerInfo } from '../diagnostics.js';

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
  /**
   * Issue 18: give every metric point the `peak_cache.tenant` attribute too (spans always have it), so a
   * noisy tenant of a `TenantCaches` shows in the metrics. One series per tenant and operation: mind the
   * cardinality with many tenants. @defaultValue false
   */
  tenantInMetrics?: boolean;
}

/** The open span and start time of one operation. */
interface Pending {
  readonly span: Span | undefined;
  readonly startedAt: number;
  /** The series at `start`; looked up again at the end only when the server was not yet known. */
  readonly series: Series;
  readonly server: ServerInfo | undefined;
  /** The tenant at `start` (with `tenantInMetrics`, the series is looked up again when it changed). */
  readonly tenant: string | undefined;
}

/**
 * One metric series: an operation on one server. Its attributes are built once; hits, misses and errors
 * are summed here and reported by observable counters when the SDK collects, so each operation records
 * one histogram point and nothing else (the SDK hashes the attributes of every point it records).
 */
interface Series {
  readonly attributes: Attributes;
  hits: number;
  misses: number;
  /** Failures per `error.type`, with their attributes. */
  readonly errors: Map<string, { readonly attributes: Attributes; count: number }>;
}

/** Semantic-convention attributes shared by an operation's span and metrics. */
function baseAttributes(
  operation: string,
  server: ServerInfo | undefined,
  tenant: string | undefined,
): Attributes {
  const system = server?.system ?? 'redis';
  const attributes: Attributes = {
    'db.system.name': system,
    'db.system': system,
    'db.operation.name': operation,
  };
  if (server?.address !== undefined) attributes['server.address'] = server.address;
  if (server?.port !== undefined) attributes['server.port'] = server.port;
  if (server?.database !== undefined) attributes['db.namespace'] = String(server.database);
  if (tenant !== undefined) attributes['peak_cache.tenant'] = tenant;
  return attributes;
}

/** `error.type`: the error's class name (`CacheTimeoutError`, ...), else `_OTHER`. */
function errorType(err: unknown): string {
  return err instanceof Error && err.name !== '' ? err.name : '_OTHER';
}

/** Stands for "server not known yet" in the series cache. */
const UNKNOWN_SERVER: ServerInfo = { system: 'redis', cluster: false };

/**
 * Subscribes to peak-cache's tracing channel and turns each operation into a span and metric points.
 * Construct it, then {@link PeakCacheInstrumentation.enable | enable} it (or use
 * {@link instrumentPeakCache}). Its subscribers never throw into the cache client: a failure inside
 * OpenTelemetry is swallowed.
 */
export class PeakCacheInstrumentation {
  readonly #tracer: Tracer | undefined;
  readonly #duration: Histogram | undefined;
  readonly #pending = new WeakMap<OperationContext, Pending>();
  /** Series per server (one {@link ServerInfo} per connection) and operation. */
  readonly #seriesByServer = new WeakMap<ServerInfo, Map<string, Series>>();
  /** Series per attribute set, what the observable counters report (one per server and operation). */
  readonly #series = new Map<string, Series>();
  readonly #channels = tracingChannel<unknown, OperationContext>(OPERATION_CHANNEL);
  #enabled = false;
  /** Operations started while enabled and not yet ended. */
  #inFlight = 0;
  #listeningToEnds = false;
  readonly #tenantInMetrics: boolean;

  /** @param options - see {@link PeakCacheInstrumentationOptions}. */
  constructor(options: PeakCacheInstrumentationOptions = {}) {
    this.#tenantInMetrics = options.tenantInMetrics ?? false;
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
      const hits = meter.createObservableCounter('peak_cache.client.hits', {
        description: 'Keys found by peak-cache reads (get, mget).',
        unit: '{key}',
      });
      const misses = meter.createObservableCounter('peak_cache.client.misses', {
        description: 'Keys not found by peak-cache reads (get, mget).',
        unit: '{key}',
      });
      const errors = meter.createObservableCounter('peak_cache.client.errors', {
        description: 'peak-cache operations that failed.',
        unit: '{error}',
      });
      meter.addBatchObservableCallback(
        (result) => {
          for (const series of this.#series.values()) {
            if (series.hits > 0) result.observe(hits, series.hits, series.attributes);
            if (series.misses > 0) result.observe(misses, series.misses, series.attributes);
            for (const failed of series.errors.values()) {
              result.observe(errors, failed.count, failed.attributes);
            }
          }
        },
        [hits, misses, errors],
      );
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

  /** The series of `operation` on `server`, created on first use. */
  #seriesOf(operation: string, server: ServerInfo | undefined, ctxTenant: string | undefined): Series {
    const tenant = this.#tenantInMetrics ? ctxTenant : undefined;
    const name = tenant === undefined ? operation : `${operation}\u0000${tenant}`;
    const key = server ?? UNKNOWN_SERVER;
    let byOperation = this.#seriesByServer.get(key);
    if (byOperation === undefined) {
      byOperation = new Map();
      this.#seriesByServer.set(key, byOperation);
    }
    let series = byOperation.get(name);
    if (series === undefined) {
      const attributes = baseAttributes(operation, server, tenant);
      // Connections to the same server share one series (a reconnect makes a new ServerInfo).
      const id = JSON.stringify(attributes);
      series = this.#series.get(id);
      if (series === undefined) {
        series = { attributes, hits: 0, misses: 0, errors: new Map() };
        this.#series.set(id, series);
      }
      byOperation.set(name, series);
    }
    return series;
  }

  readonly #onStart = (message: unknown): void => {
    try {
      const ctx = message as OperationContext;
      const series = this.#seriesOf(ctx.operation, ctx.server, ctx.tenant);
      const span = this.#tracer?.startSpan(ctx.operation, {
        kind: SpanKind.CLIENT,
        attributes: series.attributes,
      });
      this.#pending.set(ctx, {
        span,
        startedAt: performance.now(),
        series,
        server: ctx.server,
        tenant: ctx.tenant,
      });
      this.#inFlight++;
    } catch {
      // Never let a telemetry failure reach the cache call.
    }
  };

  readonly #onAsyncEnd = (message: unknown): void => {
    try {
      const ctx = message as OperationContext;
      const pending = this.#pending.get(ctx);
      if (pending === undefined) {
        // An answer from memory has no `start`; others without a pending start began while disabled.
        if (ctx.memory === true && this.#enabled) this.#answered(ctx);
        return;
      }
      this.#pending.delete(ctx);
      this.#inFlight--;
      this.#stopListeningWhenIdle();
      const seconds = (performance.now() - pending.startedAt) / 1000;
      // The server is learned on the first connection: the span gets its attributes at the end.
      const learned =
        pending.server !== ctx.server || (this.#tenantInMetrics && pending.tenant !== ctx.tenant);
      const series = learned ? this.#seriesOf(ctx.operation, ctx.server, ctx.tenant) : pending.series;
      let attributes = series.attributes;
      if (ctx.error !== undefined) {
        const type = errorType(ctx.error);
        let failed = series.errors.get(type);
        if (failed === undefined) {
          failed = { attributes: { ...series.attributes, 'error.type': type }, count: 0 };
          series.errors.set(type, failed);
        }
        failed.count++;
        attributes = failed.attributes;
      }
      if (ctx.hits !== undefined) series.hits += ctx.hits;
      if (ctx.misses !== undefined) series.misses += ctx.misses;
      this.#duration?.record(seconds, attributes);
      this.#finishSpan(pending.span, ctx, learned || ctx.error !== undefined ? attributes : undefined);
    } catch {
      // Never let a telemetry failure reach the cache call.
    }
  };

  /**
   * An operation answered from memory (`asyncEnd` only, complete context): its hits and misses, a
   * duration of 0 and an instant span, a child of the active context (the caller's: the answer is
   * synchronous).
   */
  #answered(ctx: OperationContext): void {
    const series = this.#seriesOf(ctx.operation, ctx.server, ctx.tenant);
    if (ctx.hits !== undefined) series.hits += ctx.hits;
    if (ctx.misses !== undefined) series.misses += ctx.misses;
    this.#duration?.record(0, series.attributes);
    if (this.#tracer === undefined) return;
    // A performance timestamp: the SDK reads it on the same clock as the spans it times itself.
    const at = performance.now();
    const span = this.#tracer.startSpan(ctx.operation, {
      kind: SpanKind.CLIENT,
      attributes: series.attributes,
      startTime: at,
    });
    span.setAttribute('peak_cache.answered_from_memory', true);
    this.#finishSpan(span, ctx, undefined, at);
  }

  /**
   * End `span` (at `endTime`, else now), adding what is known only at the end (`changed`: attributes
   * that differ from start).
   */
  #finishSpan(
    span: Span | undefined,
    ctx: OperationContext,
    changed: Attributes | undefined,
    endTime?: number,
  ): void {
    if (span === undefined) return;
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
    span.end(endTime);
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
