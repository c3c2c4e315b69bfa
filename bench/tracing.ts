/**
 * `BENCH_TRACE`: measure peak-cache while something listens to its tracing channel (issue 12).
 * A `node:diagnostics_channel` subscriber is process-wide, so it is attached once for the whole run
 * (every peak-cache contender is then traced) and the cost shows as the change of peak-cache's ratio to
 * raw node-redis between a run with and a run without it. Subscribing and unsubscribing around each
 * contender's slice would not do: every change swaps the channels' prototypes and deoptimizes the
 * untraced contender's code too.
 *
 * - `BENCH_TRACE=subscriber`: a subscriber on all five events, counting operations, hits and errors
 *   (what a metrics subscriber does).
 * - `BENCH_TRACE=otel`: `peak-cache/otel` on the OpenTelemetry SDK: spans to a batch processor whose
 *   exporter drops them, metrics into a reader that is never collected.
 *
 * @module
 */
import { tracingChannel } from 'node:diagnostics_channel';
import { OPERATION_CHANNEL, type OperationContext } from '../src/index.ts';

/** Attach the tracing `mode` names; returns a description for the log, or `undefined` for none. */
export async function attachTracing(mode: string | undefined): Promise<string | undefined> {
  if (mode === undefined || mode === '') return undefined;
  if (mode === 'subscriber') {
    const seen = { operations: 0, hits: 0, errors: 0 };
    tracingChannel<unknown, OperationContext>(OPERATION_CHANNEL).subscribe({
      start: () => {},
      end: () => {},
      asyncStart: () => {},
      asyncEnd: (message) => {
        seen.operations++;
        seen.hits += message.hits ?? 0;
      },
      error: () => {
        seen.errors++;
      },
    });
    return 'a diagnostics_channel subscriber on every event of peak-cache:operation';
  }
  if (mode === 'otel') {
    const { instrumentPeakCache } = await import('../src/integrations/otel.ts');
    const { BasicTracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
    const { MeterProvider, MetricReader } = await import('@opentelemetry/sdk-metrics');
    class IdleReader extends MetricReader {
      protected override async onForceFlush(): Promise<void> {}
      protected override async onShutdown(): Promise<void> {}
    }
    const dropping = {
      export: (_spans: unknown[], done: (result: { code: 0 }) => void) => done({ code: 0 }),
      shutdown: async () => {},
    };
    instrumentPeakCache({
      tracerProvider: new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropping)] }),
      meterProvider: new MeterProvider({ readers: [new IdleReader()] }),
    });
    return 'peak-cache/otel on the OpenTelemetry SDK (spans dropped by the exporter, metrics never collected)';
  }
  throw new Error(`BENCH_TRACE must be subscriber or otel, got ${mode}`);
}
