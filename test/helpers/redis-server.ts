/**
 * Test helper: real `redis-server` processes on free loopback ports, started and stopped by the tests.
 * Never touches the machine's shared Redis on 6379.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A free TCP port on 127.0.0.1 (the OS picks it; the socket is closed before returning). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** Options for {@link startRedis}. */
export interface RedisServerOptions {
  /** Port to listen on; a free one when omitted. */
  port?: number;
  /** `requirepass` for the default user. */
  password?: string;
  /** Extra `redis-server` arguments, e.g. `['--maxmemory', '1mb']`. */
  args?: string[];
}

/** A running test server. */
export interface RedisServer {
  readonly port: number;
  readonly host: '127.0.0.1';
  /** `redis://[:password@]127.0.0.1:port` */
  readonly url: string;
  readonly dir: string;
  /** Run a command through `redis-cli` (useful for seeding and counters); returns trimmed stdout. */
  cli(...args: string[]): Promise<string>;
  /** Every key matching a glob (`redis-cli --scan`), as the server stores it. */
  scanKeys(match?: string): Promise<string[]>;
  /** The raw stored string at `key` (`null` when missing or empty). */
  rawGet(key: string): Promise<string | null>;
  /** SIGSTOP the process: it stops answering but keeps its sockets. */
  pause(): void;
  /** SIGCONT after {@link pause}. */
  resume(): void;
  /** Stop it (SIGKILL when `hard`), waiting for exit. */
  stop(hard?: boolean): Promise<void>;
  /** Start it again on the same port (after {@link stop}). */
  restart(): Promise<void>;
}

async function waitForPort(port: number, child: ChildProcess, deadlineMs: number): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`redis-server on port ${port} did not start`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Run `redis-cli` against a port and return its trimmed stdout. */
export async function redisCli(port: number, password: string | undefined, args: string[]): Promise<string> {
  const auth = password === undefined ? [] : ['--no-auth-warning', '-a', password];
  const child = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...auth, ...args]);
  // Chunks are joined as bytes and decoded once: decoding each chunk on its own garbled a multi-byte
  // character split across two chunks (a key `ünï` read back as another key). And 'close', not 'exit':
  // output may still be in the pipe when the process exits.
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`redis-cli ${args.join(' ')} failed: ${Buffer.concat(err).toString()}`);
  return Buffer.concat(out).toString().trim();
}

/** Start a standalone `redis-server` on a free loopback port. Call `stop()` in `afterAll`. */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'peak-cache-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--logfile',
    join(dir, 'redis.log'),
    ...(options.password === undefined ? [] : ['--requirepass', options.password]),
    ...(options.args ?? []),
  ];
  let child: ChildProcess | undefined;
  // Last resort: never leave a server behind when the process exits without stopping it.
  const killNow = (): void => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const launch = async () => {
    mkdirSync(dir, { recursive: true });
    const started = spawn('redis-server', args, { stdio: 'ignore' });
    child = started;
    process.once('exit', killNow);
    try {
      await waitForPort(port, started, 10_000);
    } catch (err) {
      killNow();
      throw err;
    }
  };
  await launch();
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`;
  return {
    port,
    host: '127.0.0.1',
    url: `redis://${auth}127.0.0.1:${port}`,
    dir,
    cli: (...cliArgs) => redisCli(port, options.password, cliArgs),
    async scanKeys(match = '*') {
      const out = await redisCli(port, options.password, ['--scan', '--pattern', match]);
      return out === '' ? [] : out.split('\n');
    },
    async rawGet(key) {
      const out = await redisCli(port, options.password, ['--raw', 'GET', key]);
      return out === '' ? null : out;
    },
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    async stop(hard = false) {
      const c = child;
      child = undefined;
      process.off('exit', killNow);
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      c.kill('SIGCONT');
      const exited = once(c, 'exit');
      c.kill(hard ? 'SIGKILL' : 'SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      if (!hard) rmSync(dir, { recursive: true, force: true });
    },
    restart: launch,
  };
}
