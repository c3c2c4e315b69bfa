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
  /** SIGSTOP the process: it stops answering but keeps its sockets. */
  pause(): void;
  /** SIGCONT after {@link pause}. */
  resume(): void;
  /** Stop it (SIGKILL when `hard`), waiting for exit. */
  stop(hard?: boolean): Promise<void>;
  /** Start it again on the same port (after {@link stop}). */
  restart(): Promise<void>;
}

async function waitForPort(port: number, deadlineMs: number): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
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
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const [code] = (await once(child, 'exit')) as [number];
  if (code !== 0) throw new Error(`redis-cli ${args.join(' ')} failed: ${err}`);
  return out.trim();
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
  const launch = async () => {
    mkdirSync(dir, { recursive: true });
    child = spawn('redis-server', args, { stdio: 'ignore' });
    await waitForPort(port, 10_000);
  };
  await launch();
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`;
  return {
    port,
    host: '127.0.0.1',
    url: `redis://${auth}127.0.0.1:${port}`,
    dir,
    cli: (...cliArgs) => redisCli(port, options.password, cliArgs),
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    async stop(hard = false) {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null) return;
      c.kill('SIGCONT');
      const exited = once(c, 'exit');
      c.kill(hard ? 'SIGKILL' : 'SIGTERM');
      await exited;
      if (!hard) rmSync(dir, { recursive: true, force: true });
    },
    restart: launch,
  };
}
