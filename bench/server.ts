/**
 * The benchmark's own `redis-server`: the test helper's server (a free loopback port, no persistence,
 * a temporary directory, killed on process exit as a last resort), never the machine's Redis on 6379.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { startRedis } from '../test/helpers/redis-server.ts';

/** A running benchmark server. */
export interface BenchServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** `redis-server --version` output. */
  readonly version: string;
  /** Stop the server and remove its directory. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Start `redis-server` on a free port of 127.0.0.1.
 * @throws when `redis-server` is missing or does not start within 10 s.
 */
export async function startBenchServer(): Promise<BenchServer> {
  const version = execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim();
  const server = await startRedis();
  return { port: server.port, url: server.url, version, stop: () => server.stop() };
}
