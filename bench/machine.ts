/**
 * What the benchmark ran on: processor, cores, memory, OS, Node, Redis and library versions.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

/** The machine and software of a run. */
export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryBytes: number;
  readonly os: string;
  readonly node: string;
  readonly redis: string;
  /** ISO date and time the run started. */
  readonly date: string;
  /** Installed versions of the compared packages. */
  readonly packages: Readonly<Record<string, string>>;
}

const PACKAGES = ['@redis/client', 'ioredis', 'keyv', '@keyv/redis', 'cache-manager', 'bentocache'] as const;

function installedVersion(name: string): string {
  try {
    const url = new URL(`../node_modules/${name}/package.json`, import.meta.url);
    return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

function peakVersion(): string {
  try {
    const url = new URL('../package.json', import.meta.url);
    return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * Describe this machine.
 * @param redisVersion - `redis-server --version` output.
 * @param startedAt - when the run started.
 */
export function describeMachine(redisVersion: string, startedAt: Date): MachineInfo {
  const cpus = os.cpus();
  const packages: Record<string, string> = { 'peak-cache': peakVersion() };
  for (const name of PACKAGES) packages[name] = installedVersion(name);
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryBytes: os.totalmem(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    redis: /v=(\S+)/.exec(redisVersion)?.[1] ?? redisVersion,
    date: startedAt.toISOString(),
    packages,
  };
}
