/**
 * Test helper: a real Redis Cluster (3 primaries, 3 replicas) of `redis-server` processes on free loopback
 * ports, created with `redis-cli --cluster create` and torn down by the tests (also when start-up fails).
 * Never touches the machine's shared Redis on 6379.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, redisCli } from './redis-server.js';

/** Options for {@link startRedisCluster}. */
export interface RedisClusterOptions {
  /** `cluster-node-timeout` in milliseconds: how long before a silent node is failed over. */
  nodeTimeoutMs?: number;
  /** Number of primaries (each gets one replica). */
  primaries?: number;
  /** `requirepass` (and `masterauth`) of every node; none by default. */
  password?: string;
}

/** A running test cluster. */
export interface RedisCluster {
  /** `redis://127.0.0.1:<port>` of the first node (a seed). */
  readonly url: string;
  /** Ports of every node, primaries and replicas, in start order. */
  readonly ports: readonly number[];
  /** The configured `cluster-node-timeout`. */
  readonly nodeTimeoutMs: number;
  /** Run `redis-cli` against one node (no redirects); returns trimmed stdout. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** Run `redis-cli -c` (follows MOVED/ASK) against a live node. */
  clusterCli(...args: string[]): Promise<string>;
  /** Ports of the primaries that currently serve slots, as a live node (or the node at `viewFrom`) sees them. */
  primaries(viewFrom?: number): Promise<number[]>;
  /** Which port serves `key` now (`CLUSTER KEYSLOT` + `CLUSTER NODES`). */
  portOf(key: string): Promise<number>;
  /** The current slot map, as a live node sees it: slot -> port of the primary serving it. */
  slotOwners(): Promise<(slot: number) => number | undefined>;
  /** Every key matching `match`, SCANned on every primary (deduplicated, sorted). */
  scanAll(match?: string): Promise<string[]>;
  /** Keys matching `match` on one node. */
  scanNode(port: number, match?: string): Promise<string[]>;
  /** Raw stored string at `key` (via `redis-cli -c`), `null` when missing. */
  rawGet(key: string): Promise<string | null>;
  /**
   * Send a signal to one node's process. The signal is sent synchronously, before the returned promise
   * first yields (the soak relies on it); with SIGKILL or SIGTERM the promise waits for the exit.
   */
  kill(port: number, signal?: NodeJS.Signals): Promise<void>;
  /**
   * Start a stopped node again with its cluster config (it rejoins the cluster: a primary that was failed
   * over comes back as a replica of its replacement); resolves once it answers PING.
   */
  restart(port: number): Promise<void>;
  /** Whether the node's process is running (not killed; a frozen one counts as running). */
  running(port: number): boolean;
  /** Wait until every live node reports `cluster_state:ok` with all slots covered. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Stop every node and remove the data directory. Idempotent. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every child started by this helper, killed on process exit so a crashed test leaves nothing behind. */
const allChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  allChildren.add(child);
  child.once('exit', () => allChildren.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of allChildren) c.kill('SIGKILL');
    });
  }
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > end) {
      throw new Error(`redis cluster: timed out waiting for ${what}`, { cause: lastError });
    }
    await sleep(100);
  }
}

/** Distinct free loopback ports. */
async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

/** Start a cluster of `2 * primaries` nodes. Call `stop()` in `afterAll`. */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2000;
  const password = options.password;
  const auth = password === undefined ? [] : ['--requirepass', password, '--masterauth', password];
  const count = 2 * (options.primaries ?? 3);
  const dir = mkdtempSync(join(tmpdir(), 'peak-cache-cluster-'));
  const all = await freePorts(2 * count);
  const ports = all.slice(0, count);
  const busPorts = all.slice(count);
  const children = new Map<number, ChildProcess>();

  const spawnNode = (port: number, busPort: number) => {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--cluster-port',
        String(busPort),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        String(nodeTimeoutMs),
        '--save',
        '',
        '--appendonly',
        'no',
        // Replicas sync at once (the default waits 5 s for more replicas to share a diskless transfer).
        '--repl-diskless-sync-delay',
        '0',
        '--dir',
        dir,
        '--dbfilename',
        `dump-${port}.rdb`,
        '--logfile',
        join(dir, `redis-${port}.log`),
        ...auth,
      ],
      { stdio: 'ignore' },
    );
    track(child);
    children.set(port, child);
  };

  const cli = (port: number, ...args: string[]) => redisCli(port, password, args);
  const running = (child: ChildProcess | undefined): child is ChildProcess =>
    child !== undefined && child.exitCode === null && child.signalCode === null;
  const alive = () => ports.filter((p) => running(children.get(p)));
  const anyAlive = () => {
    const port = alive()[0];
    if (port === undefined) throw new Error('redis cluster: no node is alive');
    return port;
  };

  const primaries = async (viewFrom?: number): Promise<number[]> => {
    const nodes = await cli(viewFrom ?? anyAlive(), 'CLUSTER', 'NODES');
    const out: number[] = [];
    for (const line of nodes.split('\n')) {
      const fields = line.trim().split(' ');
      const flags = fields[2]?.split(',') ?? [];
      const port = Number(fields[1]?.split('@')[0]?.split(':')[1]);
      // Primaries serving slots: flag `master`, not failed, with at least one slot range.
      if (flags.includes('master') && !flags.includes('fail') && fields.length > 8) out.push(port);
    }
    return out.sort((a, b) => a - b);
  };

  const slotOwners = async (): Promise<(slot: number) => number | undefined> => {
    const owners = new Array<number | undefined>(16384);
    const nodes = await cli(anyAlive(), 'CLUSTER', 'NODES');
    for (const line of nodes.split('\n')) {
      const fields = line.trim().split(' ');
      const flags = fields[2]?.split(',') ?? [];
      if (!flags.includes('master') || flags.includes('fail')) continue;
      const port = Number(fields[1]?.split('@')[0]?.split(':')[1]);
      for (const range of fields.slice(8)) {
        if (range.startsWith('[')) continue; // a slot being migrated or imported
        const [from, to = from] = range.split('-').map(Number);
        if (from === undefined || to === undefined) continue;
        for (let slot = from; slot <= to; slot++) owners[slot] = port;
      }
    }
    return (slot) => owners[slot];
  };

  const scanNode = async (port: number, match = '*'): Promise<string[]> => {
    const out = await cli(port, '--scan', '--pattern', match);
    return out === '' ? [] : out.split('\n');
  };

  const waitHealthy = async (timeoutMs = 30_000) => {
    await waitFor('cluster_state:ok on every node', timeoutMs, async () => {
      for (const port of alive()) {
        const info = parseInfo(await cli(port, 'CLUSTER', 'INFO'));
        if (info.get('cluster_state') !== 'ok' || info.get('cluster_slots_ok') !== '16384') return false;
      }
      return true;
    });
  };

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(
      [...children.values()].map(async (child) => {
        if (!running(child)) return;
        const exited = once(child, 'exit');
        child.kill('SIGCONT');
        child.kill('SIGKILL');
        await exited;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    for (const [i, port] of ports.entries()) spawnNode(port, busPorts[i] as number);
    await waitFor('every node to answer PING', 15_000, async () => {
      for (const port of ports) if ((await cli(port, 'PING')) !== 'PONG') return false;
      return true;
    });
    await redisCli(ports[0] as number, password, [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '1',
      '--cluster-yes',
    ]);
    await waitHealthy();
    await waitFor('every node to know every other node', 30_000, async () => {
      for (const port of ports) {
        const info = parseInfo(await cli(port, 'CLUSTER', 'INFO'));
        if (info.get('cluster_known_nodes') !== String(count)) return false;
      }
      return true;
    });
    // Replicas must be in sync, or they will not be eligible for a failover.
    await waitFor('every replica to be in sync', 30_000, async () => {
      let replicas = 0;
      for (const port of ports) {
        const info = parseInfo(await cli(port, 'INFO', 'replication'));
        if (info.get('role') === 'slave') {
          if (info.get('master_link_status') !== 'up') return false;
          replicas++;
        }
      }
      return replicas === count / 2;
    });
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    url: `redis://127.0.0.1:${ports[0]}`,
    ports,
    nodeTimeoutMs,
    cli,
    clusterCli: (...args) => redisCli(anyAlive(), password, ['-c', ...args]),
    primaries,
    async portOf(key) {
      const slot = Number(await cli(anyAlive(), 'CLUSTER', 'KEYSLOT', key));
      const port = (await slotOwners())(slot);
      if (port === undefined) throw new Error(`redis cluster: no primary serves slot ${slot}`);
      return port;
    },
    slotOwners,
    async scanAll(match = '*') {
      const keys = new Set<string>();
      for (const port of await primaries()) for (const key of await scanNode(port, match)) keys.add(key);
      return [...keys].sort();
    },
    scanNode,
    async rawGet(key) {
      const out = await redisCli(anyAlive(), password, ['-c', '--raw', 'GET', key]);
      return out === '' ? null : out;
    },
    async kill(port, signal = 'SIGKILL') {
      const child = children.get(port);
      if (!running(child)) return;
      if (signal === 'SIGKILL' || signal === 'SIGTERM') {
        const exited = once(child, 'exit');
        child.kill(signal);
        await exited;
      } else {
        child.kill(signal);
      }
    },
    async restart(port) {
      if (running(children.get(port))) return;
      const i = ports.indexOf(port);
      if (i < 0) throw new Error(`redis cluster: ${port} is not a node of this cluster`);
      spawnNode(port, busPorts[i] as number);
      await waitFor(`${port} to answer PING`, 15_000, async () => (await cli(port, 'PING')) === 'PONG');
    },
    running: (port) => running(children.get(port)),
    waitHealthy,
    stop,
  };
}
