/**
 * Soak statistics and output: counters, latency histograms, incidents (hangs, wrong values, foreign
 * errors, secret leaks), memory samples, the pass/fail verdict, the human-readable report and the final
 * JSON summary line.
 *
 * Nothing here grows with the number of operations: latencies go to fixed-size log histograms, and at
 * most {@link MAX_EXAMPLES} examples are kept per incident kind, so the soak's own bookkeeping does not
 * show up as a memory leak of the library.
 *
 * @module
 */

/** Heap growth that fails the run: more than this ratio... */
export const HEAP_GROWTH_RATIO = 0.5;
/** ...and more than this many bytes, between the median of the 2nd and of the 4th quarter of the run. */
export const HEAP_GROWTH_BYTES = 20 * 1024 * 1024;
/** Fewest memory samples for the memory verdict (fewer: the check is skipped and says so). */
export const MIN_MEMORY_SAMPLES = 8;
/** Examples kept per incident kind; the counts stay exact. */
export const MAX_EXAMPLES = 10;
/** Distinct messages kept per error code. */
const MAX_MESSAGES_PER_CODE = 8;

const BUCKETS_PER_DOUBLING = 32;
/** Smallest latency the histogram resolves (10 µs); everything below lands in bucket 0. */
const MIN_MS = 0.01;
const BUCKET_COUNT = BUCKETS_PER_DOUBLING * 24; // 10 µs .. ~46 h

/**
 * Latency histogram with log-spaced buckets (about 2% wide): constant memory whatever the number of
 * samples; percentiles are accurate to one bucket.
 */
export class Histogram {
  readonly #buckets = new Float64Array(BUCKET_COUNT);
  #count = 0;
  #max = 0;

  /** Add one latency, in milliseconds. */
  record(ms: number): void {
    const index =
      ms <= MIN_MS ? 0 : Math.min(BUCKET_COUNT - 1, Math.ceil(Math.log2(ms / MIN_MS) * BUCKETS_PER_DOUBLING));
    this.#buckets[index] = (this.#buckets[index] ?? 0) + 1;
    this.#count++;
    if (ms > this.#max) this.#max = ms;
  }

  /** Merge another histogram into this one. */
  add(other: Histogram): void {
    for (let i = 0; i < BUCKET_COUNT; i++)
      this.#buckets[i] = (this.#buckets[i] ?? 0) + (other.#buckets[i] ?? 0);
    this.#count += other.#count;
    this.#max = Math.max(this.#max, other.#max);
  }

  /** Number of latencies recorded. */
  get count(): number {
    return this.#count;
  }

  /** Largest latency recorded, in milliseconds. */
  get max(): number {
    return this.#max;
  }

  /**
   * The `p`-th percentile (0 < p <= 100) in milliseconds: the upper edge of the bucket holding it, capped
   * at the maximum seen; `0` when empty.
   */
  percentile(p: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.ceil((p / 100) * this.#count);
    let seen = 0;
    for (let i = 0; i < BUCKET_COUNT; i++) {
      seen += this.#buckets[i] ?? 0;
      if (seen >= rank) return Math.min(this.#max, MIN_MS * 2 ** (i / BUCKETS_PER_DOUBLING));
    }
    return this.#max;
  }
}

/** Counters of one operation kind. */
export interface OpStats {
  ok: number;
  failed: number;
  /** Latencies of successful calls only. */
  readonly latency: Histogram;
}

/** One notable event (a hang, a wrong value...), kept as an example. */
export interface Incident {
  /** Seconds since the start of the workload. */
  readonly at: number;
  readonly op: string;
  readonly caller: number;
  readonly detail: string;
}

/** Incident kinds: each is counted exactly, with up to {@link MAX_EXAMPLES} examples. */
export type IncidentKind =
  | 'hang'
  | 'wrongValue'
  | 'nonCacheError'
  | 'unexpectedValidationError'
  | 'secretLeak'
  | 'calmError'
  | 'slowFailure'
  | 'authProbeAccepted'
  | 'unhandledRejection';

/** Incident kinds that fail the run. */
export const FAILING_INCIDENTS: readonly IncidentKind[] = [
  'hang',
  'wrongValue',
  'nonCacheError',
  'unexpectedValidationError',
  'secretLeak',
  'authProbeAccepted',
  'unhandledRejection',
];

/**
 * A server restart or freeze (on a cluster: a primary killed and failed over, frozen, or its client
 * connections killed), and how the clients came back.
 */
export interface Disruption {
  readonly kind: 'restart' | 'freeze' | 'failover' | 'conn-kill';
  /** Seconds since the start of the workload. */
  readonly at: number;
  /** How long the server was down or frozen, in milliseconds. */
  outageMs: number;
  /**
   * From the server answering again (on a cluster: every slot served again) to every tenant client having
   * completed a call (on a cluster: a call on the disrupted primary's slots); `null`: not within the
   * recovery limit (fails the run); `undefined`: the run ended first (not measured).
   */
  recoveryMs: number | null | undefined;
  /** Failed calls from the start of the disruption until recovery. */
  errors: number;
}

/** One memory sample. */
export interface MemorySample {
  /** Seconds since the start of the workload. */
  readonly at: number;
  readonly heapUsed: number;
  readonly rss: number;
}

/** Collects everything the soak measures. */
export class SoakStats {
  /** `performance.now()` at the start of the workload. */
  startedAt = performance.now();
  /** Set when the workload ended: `performance.now()`. */
  endedAt: number | undefined;
  readonly ops = new Map<string, OpStats>();
  readonly errorsByCode = new Map<string, number>();
  /** How long failed calls took, by error code (a fail-fast error should be quick). */
  readonly errorLatency = new Map<string, Histogram>();
  readonly #messages = new Map<string, Map<string, number>>();
  readonly incidents = new Map<IncidentKind, { count: number; examples: Incident[] }>();
  readonly disruptions: Disruption[] = [];
  readonly memory: MemorySample[] = [];
  /** Outcomes of the wrong-password probe, by error code (or `accepted`). */
  readonly authProbe = new Map<string, number>();
  /** Warnings the library emitted through its logger. */
  warnings = 0;
  /** Key checks made against the model (reads, counts, TTLs) and how many were skipped (epoch changed). */
  checks = { exact: 0, skipped: 0 };
  /** Whether heap samples were taken after `global.gc()`. */
  gcExposed = false;
  /** A failure of the soak itself (not of the library). */
  fatal: string | undefined;

  /** Seconds since the start of the workload. */
  elapsed(now = performance.now()): number {
    return (now - this.startedAt) / 1000;
  }

  #op(op: string): OpStats {
    let stats = this.ops.get(op);
    if (!stats) {
      stats = { ok: 0, failed: 0, latency: new Histogram() };
      this.ops.set(op, stats);
    }
    return stats;
  }

  /** Count a successful call of `op` that took `ms`. */
  success(op: string, ms: number): void {
    const stats = this.#op(op);
    stats.ok++;
    stats.latency.record(ms);
  }

  /**
   * Count a failed call of `op`, by error code (`code` of the error, or `non-CacheError`), keeping the
   * first few distinct messages of each code.
   */
  failure(op: string, code: string, message: string, ms: number): void {
    this.#op(op).failed++;
    this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1);
    let latency = this.errorLatency.get(code);
    if (!latency) {
      latency = new Histogram();
      this.errorLatency.set(code, latency);
    }
    latency.record(ms);
    let messages = this.#messages.get(code);
    if (!messages) {
      messages = new Map();
      this.#messages.set(code, messages);
    }
    // Grouped without the leading "<operation> failed: " (operations are counted separately).
    const reason = message.replace(/^\w+ failed: /, '');
    const text = reason.length > 300 ? `${reason.slice(0, 300)}...` : reason;
    if (messages.has(text) || messages.size < MAX_MESSAGES_PER_CODE)
      messages.set(text, (messages.get(text) ?? 0) + 1);
    else messages.set('(other messages)', (messages.get('(other messages)') ?? 0) + 1);
  }

  /** Record an incident; kept as an example while fewer than {@link MAX_EXAMPLES} are stored. */
  incident(kind: IncidentKind, op: string, caller: number, detail: string): void {
    let entry = this.incidents.get(kind);
    if (!entry) {
      entry = { count: 0, examples: [] };
      this.incidents.set(kind, entry);
    }
    entry.count++;
    if (entry.examples.length < MAX_EXAMPLES)
      entry.examples.push({ at: round(this.elapsed(), 2), op, caller, detail });
  }

  /** Number of incidents of `kind`. */
  count(kind: IncidentKind): number {
    return this.incidents.get(kind)?.count ?? 0;
  }

  /** Distinct error messages seen per code, with their counts. */
  messages(): Map<string, Map<string, number>> {
    return this.#messages;
  }

  /** Totals over every operation. */
  totals(): { ok: number; failed: number; latency: Histogram } {
    const latency = new Histogram();
    let ok = 0;
    let failed = 0;
    for (const stats of this.ops.values()) {
      ok += stats.ok;
      failed += stats.failed;
      latency.add(stats.latency);
    }
    return { ok, failed, latency };
  }
}

/**
 * Sample `heapUsed` and RSS every `everyMs` into `stats.memory`, after a full `global.gc()` when the
 * process runs with `--expose-gc` (else plain samples, noisier).
 * @returns a function that stops sampling.
 */
export function startMemorySampler(stats: SoakStats, everyMs: number): () => void {
  const gc = globalThis.gc;
  stats.gcExposed = typeof gc === 'function';
  const sample = () => {
    gc?.();
    const { heapUsed, rss } = process.memoryUsage();
    stats.memory.push({ at: round(stats.elapsed(), 2), heapUsed, rss });
  };
  const timer = setInterval(sample, everyMs);
  return () => clearInterval(timer);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return 0;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Memory growth between the 2nd and the 4th quarter of the run. */
export interface MemoryGrowth {
  readonly samples: number;
  /** Median heapUsed / RSS of the samples of the 2nd quarter of the run, in bytes. */
  readonly heapQ2: number;
  readonly rssQ2: number;
  /** Median heapUsed / RSS of the samples of the last quarter of the run, in bytes. */
  readonly heapQ4: number;
  readonly rssQ4: number;
  /** heapQ4 - heapQ2, in bytes. */
  readonly heapGrowth: number;
  /** heapQ4 / heapQ2 - 1. */
  readonly heapGrowthRatio: number;
  readonly rssGrowth: number;
  readonly rssGrowthRatio: number;
  /** The heap grew by more than {@link HEAP_GROWTH_RATIO} and more than {@link HEAP_GROWTH_BYTES}. */
  readonly leaking: boolean;
}

/**
 * Compare the median memory of the last quarter of the samples with that of the second quarter (the
 * first quarter is warm-up). Only heapUsed decides {@link MemoryGrowth.leaking}; RSS is reported (it
 * follows the allocator, not the program, and is too noisy to fail on).
 * @returns `undefined` with fewer than {@link MIN_MEMORY_SAMPLES} samples.
 */
export function memoryGrowth(samples: readonly MemorySample[]): MemoryGrowth | undefined {
  if (samples.length < MIN_MEMORY_SAMPLES) return undefined;
  const quarter = Math.floor(samples.length / 4);
  const q2 = samples.slice(quarter, 2 * quarter);
  const q4 = samples.slice(samples.length - quarter);
  const heapQ2 = median(q2.map((s) => s.heapUsed));
  const heapQ4 = median(q4.map((s) => s.heapUsed));
  const rssQ2 = median(q2.map((s) => s.rss));
  const rssQ4 = median(q4.map((s) => s.rss));
  const heapGrowth = heapQ4 - heapQ2;
  const heapGrowthRatio = heapQ2 > 0 ? heapQ4 / heapQ2 - 1 : 0;
  return {
    samples: samples.length,
    heapQ2,
    heapQ4,
    rssQ2,
    rssQ4,
    heapGrowth,
    heapGrowthRatio,
    rssGrowth: rssQ4 - rssQ2,
    rssGrowthRatio: rssQ2 > 0 ? rssQ4 / rssQ2 - 1 : 0,
    leaking: heapGrowthRatio > HEAP_GROWTH_RATIO && heapGrowth > HEAP_GROWTH_BYTES,
  };
}

/** Pass or fail, with the reasons. */
export interface Verdict {
  readonly passed: boolean;
  readonly failures: readonly string[];
  readonly memory: MemoryGrowth | undefined;
}

/**
 * Decide the run: it fails when a call hung, a value read back wrong, a non-`CacheError` was thrown, a
 * `CacheValidationError` hit valid input, a password appeared in an error, the wrong-password probe was
 * accepted, a client did not recover after a disruption, the heap kept growing (see
 * {@link memoryGrowth}), no call succeeded at all, or the soak itself failed.
 */
export function verdict(stats: SoakStats): Verdict {
  const failures: string[] = [];
  const labels: Record<IncidentKind, string> = {
    hang: 'call(s) hung',
    wrongValue: 'wrong value(s) or count(s) read back',
    nonCacheError: 'non-CacheError(s) thrown',
    unexpectedValidationError: 'CacheValidationError(s) on valid input',
    secretLeak: 'error(s) or warning(s) containing a password',
    calmError: '',
    slowFailure: '',
    authProbeAccepted: 'call(s) with a wrong password accepted',
    unhandledRejection: 'unhandled promise rejection(s)',
  };
  for (const kind of FAILING_INCIDENTS) {
    const n = stats.count(kind);
    if (n > 0) failures.push(`${n} ${labels[kind]}`);
  }
  const unrecovered = stats.disruptions.filter((d) => d.recoveryMs === null);
  if (unrecovered.length > 0)
    failures.push(`${unrecovered.length} disruption(s) some client never recovered from`);
  if (stats.totals().ok === 0) failures.push('no call succeeded');
  const memory = memoryGrowth(stats.memory);
  if (memory?.leaking) {
    failures.push(
      `heap kept growing: ${mb(memory.heapQ2)} -> ${mb(memory.heapQ4)} (+${pct(memory.heapGrowthRatio)}, limit +${pct(HEAP_GROWTH_RATIO)} and +${mb(HEAP_GROWTH_BYTES)})`,
    );
  }
  if (stats.fatal !== undefined) failures.push(`the soak itself failed: ${stats.fatal}`);
  return { passed: failures.length === 0, failures, memory };
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function pct(ratio: number): string {
  return `${(ratio * 100).toFixed(1)}%`;
}

function ms(value: number): string {
  return value >= 100 ? `${value.toFixed(0)} ms` : `${value.toFixed(2)} ms`;
}

/** What the report says about the configuration. */
export type ReportConfig = Readonly<Record<string, string | number | boolean>>;

/**
 * The human-readable report: configuration, operations, errors by code (with sample messages),
 * latency, disruptions, memory, incidents and the verdict.
 */
export function formatReport(stats: SoakStats, config: ReportConfig, result: Verdict): string {
  const lines: string[] = [];
  const duration = stats.elapsed(stats.endedAt);
  const totals = stats.totals();
  const all = totals.ok + totals.failed;
  lines.push('', '=== peak-cache soak ===');
  lines.push(
    `config: ${Object.entries(config)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  );
  lines.push(
    `duration: ${duration.toFixed(1)} s; operations: ${all} (${(all / Math.max(duration, 0.001)).toFixed(0)}/s), ok ${totals.ok}, failed ${totals.failed}`,
  );
  lines.push(
    `latency of successful calls: p50 ${ms(totals.latency.percentile(50))}, p99 ${ms(totals.latency.percentile(99))}, max ${ms(totals.latency.max)}`,
  );
  lines.push('', 'operation          ok     failed       p50        p99        max');
  for (const [op, s] of [...stats.ops.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(
      `${op.padEnd(14)} ${String(s.ok).padStart(8)} ${String(s.failed).padStart(8)} ${ms(s.latency.percentile(50)).padStart(10)} ${ms(s.latency.percentile(99)).padStart(10)} ${ms(s.latency.max).padStart(10)}`,
    );
  }
  lines.push('', 'errors by code:');
  if (stats.errorsByCode.size === 0) lines.push('  (none)');
  for (const [code, n] of [...stats.errorsByCode.entries()].sort((a, b) => b[1] - a[1])) {
    const latency = stats.errorLatency.get(code);
    lines.push(
      `  ${code}: ${n}${latency ? ` (took p50 ${ms(latency.percentile(50))}, p99 ${ms(latency.percentile(99))}, max ${ms(latency.max)})` : ''}`,
    );
    const messages = [...(stats.messages().get(code)?.entries() ?? [])].sort((a, b) => b[1] - a[1]);
    for (const [message, count] of messages) lines.push(`      ${String(count).padStart(7)} x ${message}`);
  }
  lines.push(
    '',
    `model checks: ${stats.checks.exact} exact, ${stats.checks.skipped} skipped (a restart overlapped)`,
  );
  if (stats.authProbe.size > 0) {
    lines.push(
      `wrong-password probe: ${[...stats.authProbe.entries()].map(([k, v]) => `${k} ${v}`).join(', ')}`,
    );
  }
  lines.push(`library warnings: ${stats.warnings}`);
  const kinds = new Map<string, number>();
  for (const d of stats.disruptions) kinds.set(d.kind, (kinds.get(d.kind) ?? 0) + 1);
  lines.push('', `disruptions: ${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ') || 'none'}`);
  if (stats.disruptions.length === 0) lines.push('  (none)');
  for (const d of stats.disruptions) {
    lines.push(
      `  ${d.at.toFixed(1).padStart(6)} s  ${d.kind.padEnd(9)} outage ${ms(d.outageMs).padStart(8)}  recovered ${d.recoveryMs === null ? 'NEVER' : d.recoveryMs === undefined ? '(run ended first)' : `after ${ms(d.recoveryMs)}`}  errors ${d.errors}`,
    );
  }
  const mem = result.memory;
  lines.push(
    '',
    `memory (${stats.memory.length} samples${stats.gcExposed ? ', after global.gc()' : ', no --expose-gc: plain samples'}):`,
  );
  if (mem) {
    lines.push(
      `  heapUsed median Q2 ${mb(mem.heapQ2)} -> Q4 ${mb(mem.heapQ4)} (${mem.heapGrowth >= 0 ? '+' : ''}${mb(mem.heapGrowth)}, ${pct(mem.heapGrowthRatio)}); fails above +${pct(HEAP_GROWTH_RATIO)} and +${mb(HEAP_GROWTH_BYTES)}`,
    );
    lines.push(
      `  rss      median Q2 ${mb(mem.rssQ2)} -> Q4 ${mb(mem.rssQ4)} (${mem.rssGrowth >= 0 ? '+' : ''}${mb(mem.rssGrowth)}, ${pct(mem.rssGrowthRatio)}); informational`,
    );
  } else {
    lines.push(`  fewer than ${MIN_MEMORY_SAMPLES} samples: memory not judged`);
  }
  for (const [kind, entry] of stats.incidents) {
    lines.push('', `${kind}: ${entry.count}${FAILING_INCIDENTS.includes(kind) ? ' (FAILS the run)' : ''}`);
    for (const e of entry.examples)
      lines.push(`  ${e.at.toFixed(2)} s caller ${e.caller} ${e.op}: ${e.detail}`);
  }
  lines.push('');
  if (result.passed) lines.push('PASS');
  else for (const f of result.failures) lines.push(`FAIL: ${f}`);
  return lines.join('\n');
}

/** The final one-line JSON summary (machine-readable). */
export function summaryJson(stats: SoakStats, config: ReportConfig, result: Verdict): string {
  const totals = stats.totals();
  const incidents: Record<string, number> = {};
  for (const [kind, entry] of stats.incidents) incidents[kind] = entry.count;
  const mem = result.memory;
  return JSON.stringify({
    soak: 'peak-cache',
    passed: result.passed,
    failures: result.failures,
    config,
    seconds: round(stats.elapsed(stats.endedAt), 1),
    operations: totals.ok + totals.failed,
    ok: totals.ok,
    failed: totals.failed,
    errorsByCode: Object.fromEntries(stats.errorsByCode),
    latencyMs: {
      p50: round(totals.latency.percentile(50), 3),
      p99: round(totals.latency.percentile(99), 3),
      max: round(totals.latency.max, 1),
    },
    incidents,
    checks: stats.checks,
    disruptions: stats.disruptions.map((d) => ({
      kind: d.kind,
      at: d.at,
      outageMs: Math.round(d.outageMs),
      recoveryMs: d.recoveryMs === null || d.recoveryMs === undefined ? null : Math.round(d.recoveryMs),
      recovered: d.recoveryMs === undefined ? 'not measured' : d.recoveryMs !== null,
      errors: d.errors,
    })),
    authProbe: Object.fromEntries(stats.authProbe),
    memory: mem
      ? {
          samples: mem.samples,
          gc: stats.gcExposed,
          heapQ2: mem.heapQ2,
          heapQ4: mem.heapQ4,
          heapGrowthRatio: round(mem.heapGrowthRatio, 4),
          rssQ2: mem.rssQ2,
          rssQ4: mem.rssQ4,
          rssGrowthRatio: round(mem.rssGrowthRatio, 4),
          leaking: mem.leaking,
        }
      : null,
  });
}
