/**
 * `peak-cache/otel` with the OpenTelemetry SDK's in-memory span exporter and metric reader, against a
 * real password-protected redis-server: one CLIENT span per operation with the database semantic
 * conventions, errors recorded, metrics recorded, and never a value or a password in any attribute.
 */
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CacheAuthError, TenantCaches } from '../src/index.js';
import {
  instrumentPeakCache,
  PeakCacheInstrumentation,
  type PeakCacheInstrumentationOptions,
} from '../src/integrations/otel.js';
import { ClientPool } from './helpers/clients.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

const PASSWORD = 'otel-secret-pw';
const VALUE = 'otel-secret-value';
const KEY = 'otel-key';

let server: RedisServer;
const pool = new ClientPool();
const spans = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
let metricExporter: InMemoryMetricExporter;
let reader: PeriodicExportingMetricReader;
let meterProvider: MeterProvider;
let instrumentation: PeakCacheInstrumentation | undefined;
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(async () => {
  context.setGlobalContextManager(contextManager.enable());
  server = await startRedis({ password: PASSWORD });
});

afterEach(async () => {
  instrumentation?.disable();
  instrumentation = undefined;
  spans.reset();
  await meterProvider?.shutdown();
});

afterAll(async () => {
  await pool.closeAll();
  await server?.stop();
  await tracerProvider.shutdown();
  context.disable();
});

function instrument(options: PeakCacheInstrumentationOptions = {}): void {
  metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  meterProvider = new MeterProvider({ readers: [reader] });
  instrumentation = instrumentPeakCache({ tracerProvider, meterProvider, ...options });
}

function client(tenant = 'otel', password = PASSWORD) {
  return pool.open({
    connectionConfig: { url: `redis://:${password}@127.0.0.1:${server.port}/3`, tenant },
    env: {},
  });
}

async function collectMetrics(): Promise<Map<string, MetricData>> {
  await reader.forceFlush();
  const byName = new Map<string, MetricData>();
  for (const resource of metricExporter.getMetrics()) {
    for (const scope of resource.scopeMetrics) {
      for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric);
    }
  }
  return byName;
}

function finished(): ReadableSpan[] {
  return spans.getFinishedSpans();
}

describe('peak-cache/otel spans', () => {
  it('creates one CLIENT span per operation with the Redis database conventions', async () => {
    instrument();
    const cache = client();
    await cache.set(KEY, VALUE, 60);
    await cache.get(KEY);
    await cache.get('missing');
    await cache.mget(KEY, 'missing');
    expect(finished().map((s) => s.name)).toEqual(['set', 'get', 'get', 'mget']);
    const [set, hit, miss, mget] = finished();
    expect(set?.kind).toBe(SpanKind.CLIENT);
    expect(set?.instrumentationScope.name).toBe('peak-cache');
    expect(set?.attributes).toEqual({
      'db.system.name': 'redis',
      'db.system': 'redis',
      'db.operation.name': 'set',
      'db.namespace': '3',
      'server.address': '127.0.0.1',
      'server.port': server.port,
      'peak_cache.tenant': 'otel',
      'peak_cache.keys': 1,
    });
    expect(set?.status.code).toBe(SpanStatusCode.UNSET);
    expect(hit?.attributes).toMatchObject({ 'peak_cache.hits': 1, 'peak_cache.misses': 0 });
    expect(miss?.attributes).toMatchObject({ 'peak_cache.hits': 0, 'peak_cache.misses': 1 });
    expect(mget?.attributes).toMatchObject({
      'db.operation.name': 'mget',
      'peak_cache.keys': 2,
      'peak_cache.hits': 1,
      'peak_cache.misses': 1,
    });
  });

  it('makes the span a child of the span active at the call', async () => {
    instrument();
    const cache = client();
    const tracer = tracerProvider.getTracer('test');
    await tracer.startActiveSpan('parent', async (parent) => {
      await cache.get(KEY);
      parent.end();
    });
    const get = finished().find((s) => s.name === 'get');
    const parent = finished().find((s) => s.name === 'parent');
    expect(get?.parentSpanContext?.spanId).toBe(parent?.spanContext().spanId);
    expect(get?.spanContext().traceId).toBe(parent?.spanContext().traceId);
  });

  it('makes one instant span of a near-cache hit (answered from memory), child of the active span, and counts it', async () => {
    const cache = pool.open({
      connectionConfig: { url: `redis://:${PASSWORD}@127.0.0.1:${server.port}/3`, tenant: 'otel-near' },
      env: {},
      nearCache: { maxEntries: 10 },
    });
    await cache.set(KEY, VALUE);
    await cache.get(KEY);
    await cache.get(KEY);
    const held = cache.stats().nearCache?.hits ?? 0;
    instrument();
    const tracer = tracerProvider.getTracer('test');
    await tracer.startActiveSpan('parent', async (parent) => {
      expect(await cache.get(KEY)).toBe(VALUE);
      parent.end();
    });
    expect(cache.stats().nearCache?.hits).toBe(held + 1);
    expect(finished().map((s) => s.name)).toEqual(['get', 'parent']);
    const [get, parent] = finished();
    expect(get?.kind).toBe(SpanKind.CLIENT);
    expect(get?.parentSpanContext?.spanId).toBe(parent?.spanContext().spanId);
    expect(get?.spanContext().traceId).toBe(parent?.spanContext().traceId);
    expect(get?.duration).toEqual([0, 0]);
    expect(get?.status.code).toBe(SpanStatusCode.UNSET);
    expect(get?.attributes).toEqual({
      'db.system.name': 'redis',
      'db.system': 'redis',
      'db.operation.name': 'get',
      'db.namespace': '3',
      'server.address': '127.0.0.1',
      'server.port': server.port,
      'peak_cache.tenant': 'otel-near',
      'peak_cache.keys': 1,
      'peak_cache.hits': 1,
      'peak_cache.misses': 0,
      'peak_cache.answered_from_memory': true,
    });
    const metrics = await collectMetrics();
    const ofGet = (name: string) =>
      metrics.get(name)?.dataPoints.filter((p) => p.attributes['db.operation.name'] === 'get') ?? [];
    expect(ofGet('peak_cache.client.hits').map((p) => p.value)).toEqual([1]);
    expect(ofGet('peak_cache.client.misses')).toEqual([]);
    const duration = ofGet('db.client.operation.duration').map(
      (p) => p.value as { count: number; sum: number },
    );
    expect(duration).toMatchObject([{ count: 1, sum: 0 }]);
  });

  it('a span of a network get has no answered_from_memory attribute', async () => {
    instrument();
    await client().get(KEY);
    expect(finished()).toHaveLength(1);
    expect(finished()[0]?.attributes).not.toHaveProperty('peak_cache.answered_from_memory');
  });

  it('records no answer from memory once disabled', async () => {
    const cache = pool.open({
      connectionConfig: { url: `redis://:${PASSWORD}@127.0.0.1:${server.port}/3`, tenant: 'otel-near-off' },
      env: {},
      nearCache: { maxEntries: 10 },
    });
    await cache.set(KEY, VALUE);
    await cache.get(KEY);
    await cache.get(KEY);
    instrument();
    const pending = cache.ping(); // keeps the instrumentation on the channel after disable
    instrumentation?.disable();
    expect(await cache.get(KEY)).toBe(VALUE);
    await pending;
    expect(finished().map((s) => s.name)).toEqual(['ping']);
  });

  it('records a failure: error status, error.type, the exception, and no password anywhere', async () => {
    instrument();
    const cache = client('otel', 'otel-wrong-pw');
    await expect(cache.get(KEY)).rejects.toBeInstanceOf(CacheAuthError);
    expect(finished()).toHaveLength(1);
    const [span] = finished();
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes['error.type']).toBe('CacheAuthError');
    expect(span?.events.map((e) => e.name)).toEqual(['exception']);
    expect(span?.events[0]?.attributes?.['exception.type']).toBe('ERR_CACHE_AUTH'); // the SDK prefers `code`
    expect(JSON.stringify([span?.attributes, span?.events, span?.status])).not.toContain('otel-wrong-pw');
  });

  it('never puts a value, a key name or the password in a span', async () => {
    instrument();
    const cache = client('otel-secrets');
    await cache.set(KEY, VALUE);
    await cache.mset({ [KEY]: VALUE }, 30);
    await cache.get(KEY);
    await cache.mget(KEY);
    await cache.exists(KEY);
    await cache.expire(KEY, 10);
    await cache.ttl(KEY);
    await cache.delete(KEY);
    await cache.flushTenant();
    await cache.ping();
    expect(finished()).toHaveLength(10);
    for (const span of finished()) {
      const text = JSON.stringify([span.name, span.attributes, span.events, span.status, span.links]);
      for (const secret of [VALUE, KEY, PASSWORD]) expect(text, span.name).not.toContain(secret);
    }
  });

  it('records nothing once disabled, and can be enabled again', async () => {
    instrument();
    const cache = client();
    instrumentation?.disable();
    await cache.get(KEY);
    expect(finished()).toHaveLength(0);
    instrumentation?.enable();
    await cache.get(KEY);
    expect(finished()).toHaveLength(1);
  });

  it('ends the spans of operations in flight when disabled', async () => {
    instrument();
    const cache = client();
    const pending = cache.get(KEY);
    instrumentation?.disable();
    await pending;
    expect(finished().map((s) => s.name)).toEqual(['get']);
  });

  it('creates spans only, or metrics only, when asked', async () => {
    instrument({ metrics: false });
    await client().get(KEY);
    expect(finished()).toHaveLength(1);
    expect((await collectMetrics()).size).toBe(0);
  });
});

describe('peak-cache/otel metrics', () => {
  it('records db.client.operation.duration in seconds, per operation', async () => {
    instrument({ traces: false });
    const cache = client();
    await cache.set(KEY, VALUE);
    await cache.get(KEY);
    await cache.get(KEY);
    expect(finished()).toHaveLength(0);
    const duration = (await collectMetrics()).get('db.client.operation.duration');
    expect(duration?.descriptor.unit).toBe('s');
    expect(duration?.dataPointType).toBe(DataPointType.HISTOGRAM);
    const points = duration?.dataPoints ?? [];
    const get = points.find((p) => p.attributes['db.operation.name'] === 'get');
    expect(get?.attributes).toEqual({
      'db.system.name': 'redis',
      'db.system': 'redis',
      'db.operation.name': 'get',
      'db.namespace': '3',
      'server.address': '127.0.0.1',
      'server.port': server.port,
    });
    const value = get?.value as { count: number; sum: number; buckets: { boundaries: number[] } };
    expect(value.count).toBe(2);
    expect(value.sum).toBeGreaterThan(0);
    expect(value.sum).toBeLessThan(10); // seconds, not milliseconds
    expect(value.buckets.boundaries).toEqual([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10]);
    expect(points.find((p) => p.attributes['db.operation.name'] === 'set')).toBeDefined();
  });

  it('counts hits and misses per key, and errors with error.type', async () => {
    instrument();
    const cache = client();
    await cache.set('h1', 1);
    await cache.set('h2', 2);
    await cache.get('h1');
    await cache.get('nope');
    await cache.mget('h1', 'h2', 'nope', 'nope2');
    const failing = client('otel', 'otel-wrong-pw-2');
    await expect(failing.ttl('x')).rejects.toBeInstanceOf(CacheAuthError);
    const metrics = await collectMetrics();
    const sum = (name: string, operation: string) =>
      (metrics.get(name)?.dataPoints ?? [])
        .filter((p) => p.attributes['db.operation.name'] === operation)
        .reduce((total, p) => total + (p.value as number), 0);
    expect(sum('peak_cache.client.hits', 'get')).toBe(1);
    expect(sum('peak_cache.client.misses', 'get')).toBe(1);
    expect(sum('peak_cache.client.hits', 'mget')).toBe(2);
    expect(sum('peak_cache.client.misses', 'mget')).toBe(2);
    expect(sum('peak_cache.client.errors', 'ttl')).toBe(1);
    const error = metrics.get('peak_cache.client.errors')?.dataPoints[0];
    expect(error?.attributes['error.type']).toBe('CacheAuthError');
    const failedDuration = metrics
      .get('db.client.operation.duration')
      ?.dataPoints.find((p) => p.attributes['db.operation.name'] === 'ttl');
    expect(failedDuration?.attributes['error.type']).toBe('CacheAuthError');
    expect(JSON.stringify([...metrics.values()])).not.toContain('otel-wrong-pw-2');
  });
});

describe('peak-cache/otel safety', () => {
  it('a failing tracer never reaches the cache call', async () => {
    const broken = {
      getTracer: () => {
        throw new Error('tracer provider exploded');
      },
    };
    // The provider is read at construction: a throwing getTracer surfaces there, not in cache calls.
    expect(() => new PeakCacheInstrumentation({ tracerProvider: broken, metrics: false })).toThrow();
    const exploding = {
      getTracer: () => ({
        startSpan: () => {
          throw new Error('startSpan exploded');
        },
        startActiveSpan: () => {
          throw new Error('unused');
        },
      }),
    };
    instrumentation = instrumentPeakCache({ tracerProvider: exploding, metrics: false });
    const cache = client();
    await cache.set(KEY, 'ok');
    expect(await cache.get(KEY)).toBe('ok');
  });

  it('sees operations when no SDK is registered, without failing (no-op API)', async () => {
    instrumentation = instrumentPeakCache({ tracerProvider: trace.getTracerProvider() });
    await client().get(KEY);
    expect(finished()).toHaveLength(0);
  });
});

describe('peak-cache/otel with TenantCaches views (issue 18)', () => {
  it('every span names its tenant; with tenantInMetrics every metric point does too', async () => {
    instrument({ tenantInMetrics: true });
    const caches = new TenantCaches({
      connectionConfig: { url: `redis://:${PASSWORD}@127.0.0.1:${server.port}/3` },
      env: {},
    });
    try {
      await caches.tenant('noisy').get('a');
      await caches.tenant('noisy').get('b');
      await caches.tenant('quiet').get('a');
      const tenants = finished().map((span) => span.attributes['peak_cache.tenant']);
      expect(tenants).toEqual(['noisy', 'noisy', 'quiet']);
      const points = (await collectMetrics()).get('db.client.operation.duration')?.dataPoints ?? [];
      const count = (tenant: string) =>
        points
          .filter((p) => p.attributes['peak_cache.tenant'] === tenant)
          .reduce((total, p) => total + (p.value as { count: number }).count, 0);
      expect(count('noisy')).toBe(2);
      expect(count('quiet')).toBe(1);
      expect(points.every((p) => p.attributes['peak_cache.tenant'] !== undefined)).toBe(true);
    } finally {
      await caches.close();
    }
  });
});
