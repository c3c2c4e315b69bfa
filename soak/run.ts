/**
 * `npm run soak`: the soak test of peak-cache against a real `redis-server` that this script starts on a
 * free loopback port (never 6379), kills and restarts, and stops. See `--help` for the options; the
 * workload and its checks are in `workload.ts`, the statistics, verdict and output in `report.ts`.
 *
 * Exit code: 0 when the run passed, 1 when it failed (a hung call, a wrong value, a non-CacheError, a
 * password in an error, a client that never recovered, the heap growing, or the soak itself failing),
 * 2 for bad arguments. The last line of stdout is a JSON summary.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { type RedisCluster, startRedisCluster } from '../test/helpers/redis-cluster.js';
import { type RedisServer, startRedis } from '../test/helpers/redis-server.js';
import {
  formatReport,
  HEAP_GROWTH_BYTES,
  HEAP_GROWTH_RATIO,
  type ReportConfig,
  SoakStats,
  summaryJson,
  verdict,
} from './report.js';
import { hangLimitMs, runWorkload, schedule, type WorkloadConfig } from './workload.js';

/** One numeric option: its flag, environment variable, default, and whether 0 is allowed. */
interface NumericOption {
  readonly key: keyof WorkloadConfig;
  readonly flag: string;
  readonly env: string;
  readonly fallback: number;
  readonly zeroOk: boolean;
  readonly help: string;
}

/** `cluster-node-timeout` of the soak's cluster: a killed primary is failed over after about this long. */
const CLUSTER_NODE_TIMEOUT_MS = 3000;

const OPTIONS: readonly NumericOption[] = [
  {
    key: 'seconds',
    flag: 'seconds',
    env: 'SOAK_SECONDS',
    fallback: 60,
    zeroOk: false,
    help: 'duration of the workload, in seconds',
  },
  {
    key: 'callers',
    flag: 'callers',
    env: 'SOAK_CALLERS',
    fallback: 64,
    zeroOk: false,
    help: 'concurrent async callers',
  },
  {
    key: 'tenants',
    flag: 'tenants',
    env: 'SOAK_TENANTS',
    fallback: 4,
    zeroOk: false,
    help: 'tenants (one client each)',
  },
  {
    key: 'keysPerCaller',
    flag: 'keys',
    env: 'SOAK_KEYS',
    fallback: 8,
    zeroOk: false,
    help: 'keys owned by each caller',
  },
  {
    key: 'timeoutMs',
    flag: 'timeout-ms',
    env: 'SOAK_TIMEOUT_MS',
    fallback: 1000,
    zeroOk: false,
    help: 'connectionConfig.timeoutMs',
  },
  {
    key: 'connectTimeoutMs',
    flag: 'connect-timeout-ms',
    env: 'SOAK_CONNECT_TIMEOUT_MS',
    fallback: 1000,
    zeroOk: false,
    help: 'connectionConfig.connectTimeoutMs',
  },
  {
    key: 'restartEverySec',
    flag: 'restart-every',
    env: 'SOAK_RESTART_EVERY',
    fallback: 15,
    zeroOk: true,
    help: 'SIGKILL + restart the server every N s (0: never)',
  },
  {
    key: 'downMs',
    flag: 'down-ms',
    env: 'SOAK_DOWN_MS',
    fallback: 500,
    zeroOk: true,
    help: 'how long the server stays down at a restart',
  },
  {
    key: 'freezeEverySec',
    flag: 'freeze-every',
    env: 'SOAK_FREEZE_EVERY',
    fallback: 30,
    zeroOk: true,
    help: 'SIGSTOP the server every N s, half a restart period off (0: never)',
  },
  {
    key: 'freezeMs',
    flag: 'freeze-ms',
    env: 'SOAK_FREEZE_MS',
    fallback: 1500,
    zeroOk: false,
    help: 'how long a freeze lasts',
  },
  {
    key: 'authProbeEverySec',
    flag: 'auth-probe-every',
    env: 'SOAK_AUTH_PROBE_EVERY',
    fallback: 2,
    zeroOk: true,
    help: 'try a wrong password every N s (0: never)',
  },
  {
    key: 'connKillEverySec',
    flag: 'conn-kill-every',
    env: 'SOAK_CONN_KILL_EVERY',
    fallback: 10,
    zeroOk: true,
    help: 'with --cluster: CLIENT KILL the clients of a primary every N s (0: never)',
  },
  {
    key: 'seed',
    flag: 'seed',
    env: 'SOAK_SEED',
    fallback: -1,
    zeroOk: true,
    help: 'seed of the random choices (default: random, printed)',
  },
  {
    key: 'progressEverySec',
    flag: 'progress',
    env: 'SOAK_PROGRESS',
    fallback: 5,
    zeroOk: true,
    help: 'progress line every N s (0: none)',
  },
];

function usage(): string {
  const lines = [
    'Usage: npm run soak -- [options]    (node --expose-gc --import tsx soak/run.ts [options])',
    '',
    'Starts redis-server (with a password) on a free loopback port, runs concurrent callers doing',
    'set/get/mget/mset/delete/exists/expire/ttl/flushByPattern on a few tenants, kills and restarts (and',
    'freezes) the server now and then, and checks every call. Options (or their environment variables):',
    '',
  ];
  for (const o of OPTIONS) {
    lines.push(
      `  --${o.flag.padEnd(20)} ${o.env.padEnd(24)} ${o.help} [${o.fallback === -1 ? 'random' : o.fallback}]`,
    );
  }
  lines.push(
    `  --${'cluster'.padEnd(20)} ${'SOAK_CLUSTER=1'.padEnd(24)} run on a 3+3 Redis Cluster: primaries are killed (failovers), frozen, their connections killed`,
    '  --help',
    '',
    'Fails (exit 1) when: a call takes longer than timeoutMs + connectTimeoutMs + 1 s (hung); a value, count,',
    'expire result or TTL read back is impossible given what the caller wrote (checked exactly between',
    'restarts); a non-CacheError is thrown; a CacheValidationError hits valid input; a password appears in an',
    'error (message or inspected with causes) or a warning; a wrong password is accepted; a client does not',
    'complete a call within 15 s after the server is back; or the heap grows between the 2nd and the last',
    `quarter of the run (medians) by more than ${HEAP_GROWTH_RATIO * 100}% AND more than ${HEAP_GROWTH_BYTES / 1048576} MB (samples after`,
    'global.gc() with --expose-gc, as `npm run soak` does). The last line of stdout is a JSON summary.',
  );
  return lines.join('\n');
}

/**
 * Parse the command line and environment into a {@link WorkloadConfig}: flags win over environment
 * variables, which win over defaults.
 * @throws {Error} with a message for the user on a bad or unknown option.
 */
export function parseConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): (WorkloadConfig & { readonly cluster: boolean }) | 'help' {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      help: { type: 'boolean', short: 'h' },
      cluster: { type: 'boolean' },
      ...Object.fromEntries(OPTIONS.map((o) => [o.flag, { type: 'string' as const }])),
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) return 'help';
  if (positionals.length > 0) throw new Error(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const config: Record<string, number> = {};
  for (const o of OPTIONS) {
    const raw = (values as Record<string, unknown>)[o.flag] ?? env[o.env];
    if (raw === undefined || raw === '') {
      config[o.key] = o.key === 'seed' ? randomBytes(4).readUInt32BE() : o.fallback;
      continue;
    }
    const n = Number(raw);
    const fractional = o.key.endsWith('Sec') || o.key === 'seconds';
    if (!Number.isFinite(n) || n < 0 || (n === 0 && !o.zeroOk) || (!fractional && !Number.isInteger(n))) {
      throw new Error(
        `--${o.flag} (${o.env}) must be a ${o.zeroOk ? 'non-negative' : 'positive'} ${fractional ? 'number' : 'integer'}, got ${JSON.stringify(raw)}`,
      );
    }
    config[o.key] = n;
  }
  const cluster = values.cluster === true || ['1', 'true', 'yes', 'on'].includes(env.SOAK_CLUSTER ?? '');
  return { ...(config as unknown as WorkloadConfig), cluster };
}

/** Kill the server on a sudden exit, checking the pid still is our redis-server on our port. */
function killServerSync(pidFile: string, port: number): void {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1) return;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (cmdline.includes('redis-server') && cmdline.includes(`:${port}`)) process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

async function main(): Promise<number> {
  let config: WorkloadConfig & { readonly cluster: boolean };
  try {
    const parsed = parseConfig(process.argv.slice(2), process.env);
    if (parsed === 'help') {
      console.log(usage());
      return 0;
    }
    config = parsed;
  } catch (err) {
    console.error(`soak: ${err instanceof Error ? err.message : String(err)}\n\n${usage()}`);
    return 2;
  }

  // A last resort: the workload bounds every call, so this only fires if the soak itself is stuck. It is
  // not unref'd: the process cannot end silently with the run unfinished. main() ends with process.exit().
  setTimeout(
    () => {
      console.error('soak: did not finish in time; exiting');
      console.log(
        JSON.stringify({ soak: 'peak-cache', passed: false, failures: ['the soak did not finish in time'] }),
      );
      process.exit(1);
    },
    (config.seconds + 120) * 1000,
  );

  const stats = new SoakStats();
  const controller = new AbortController();
  const password = `soak-pw-${randomBytes(12).toString('hex')}`;
  const pidDir = mkdtempSync(join(tmpdir(), 'peak-cache-soak-'));
  const pidFile = join(pidDir, 'redis.pid');
  let server: RedisServer | undefined;
  let cluster: RedisCluster | undefined;
  let serverRunning = false;

  // Whatever happens (an exception, a second Ctrl-C), do not leave a redis-server behind.
  process.on('exit', () => {
    if (server && serverRunning) killServerSync(pidFile, server.port);
    rmSync(pidDir, { recursive: true, force: true });
  });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) process.exit(130);
    console.error(`soak: ${signal}: stopping (again to exit at once)`);
    stats.fatal = `interrupted by ${signal}`;
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A library must never leave a promise without an owner: any unhandled rejection fails the run.
  process.on('unhandledRejection', (reason) => {
    const text = reason instanceof Error ? `${reason.name}: ${reason.message}` : String(reason);
    stats.incident('unhandledRejection', 'process', -1, text.split(password).join('<password>'));
  });

  const limit = hangLimitMs(config);
  const reportConfig: ReportConfig = {
    seconds: config.seconds,
    callers: config.callers,
    tenants: config.tenants,
    keysPerCaller: config.keysPerCaller,
    timeoutMs: config.timeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    hangLimitMs: limit,
    restartEverySec: config.restartEverySec,
    downMs: config.downMs,
    freezeEverySec: config.freezeEverySec,
    freezeMs: config.freezeMs,
    authProbeEverySec: config.authProbeEverySec,
    seed: config.seed,
    exposeGc: typeof globalThis.gc === 'function',
    cluster: config.cluster,
  };

  try {
    let target: RedisServer | { url: string; port: number };
    if (config.cluster) {
      cluster = await startRedisCluster({ password, nodeTimeoutMs: CLUSTER_NODE_TIMEOUT_MS });
      const seed = cluster.ports[0] as number;
      target = { url: `redis://:${password}@127.0.0.1:${seed}`, port: seed };
      console.log(
        `soak: Redis Cluster of 3 primaries + 3 replicas on 127.0.0.1:${cluster.ports.join(',')} (password-protected, cluster-node-timeout ${CLUSTER_NODE_TIMEOUT_MS} ms); ${config.callers} callers on ${config.tenants} tenants for ${config.seconds} s; seed ${config.seed}`,
      );
    } else {
      server = await startRedis({ password, args: ['--pidfile', pidFile] });
      serverRunning = true;
      target = server;
      console.log(
        `soak: redis-server on 127.0.0.1:${server.port} (password-protected); ${config.callers} callers on ${config.tenants} tenants for ${config.seconds} s; seed ${config.seed}`,
      );
    }
    const planned = schedule(config, config.cluster).map((e) => `${e.kind} at ${(e.at / 1000).toFixed(1)} s`);
    console.log(`soak: disruptions planned: ${planned.length > 0 ? planned.join(', ') : 'none'}`);
    await runWorkload({
      server: target,
      ...(cluster ? { cluster } : {}),
      password,
      config,
      stats,
      signal: controller.signal,
      log: (line) => console.log(line),
      onServerRunning: (running) => {
        serverRunning = running;
      },
    });
  } catch (err) {
    stats.fatal = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  } finally {
    await cluster?.stop().catch(() => undefined);
    if (server && serverRunning) {
      const stopped = await Promise.race([
        server.stop().then(() => true),
        sleep(10_000, false, { ref: false }),
      ]).catch(() => false);
      if (stopped) serverRunning = false; // else the exit handler kills it
    }
  }

  const result = verdict(stats);
  console.log(formatReport(stats, reportConfig, result));
  console.log(summaryJson(stats, reportConfig, result));
  return result.passed ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('soak: unexpected failure', err);
    process.exit(1);
  },
);
