/**
 * The `peak-cache` binary, run as a subprocess (the built `dist/cli.js`) against real redis-servers.
 * Every subprocess gets an explicit environment (no PEAK_* / API_KEY from the parent) and a closed stdin.
 *
 * Other test runs rebuild `dist/` (tsup cleans it first), so the tests run a private copy of the built
 * files, under `.tmp/` inside the project so that `@redis/client` still resolves from `node_modules`.
 */
import { execFile, execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheClient } from '../src/index.js';
import { freePort, type RedisServer, startRedis } from './helpers/redis-server.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
let CLI = join(DIST, 'cli.js');
let copyDir: string | undefined;
const COMMANDS = [
  'set',
  'get',
  'mget',
  'mset',
  'delete',
  'exists',
  'expire',
  'ttl',
  'ping',
  'flush-pattern',
  'flush-tenant',
];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Newest modification time of any file under `dir`. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Run `file args` with exactly `env` (plus PATH), stdin closed, killed after `timeoutMs`. */
function exec(file: string, args: string[], env: Record<string, string>, timeoutMs = 15_000): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, timeout: timeoutMs, cwd: ROOT },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        resolve({ code, stdout, stderr, ms: Date.now() - started });
      },
    );
    child.stdin?.end();
  });
}

const cli = (args: string[], env: Record<string, string> = {}) => exec(process.execPath, [CLI, ...args], env);

/** Run the CLI, expect exit 0 (the message shows stderr otherwise), and return its stdout. */
async function ok(args: string[], env: Record<string, string> = {}): Promise<string> {
  const run = await cli(args, env);
  expect(run.code, `peak-cache ${args.join(' ')}: ${run.stderr}`).toBe(0);
  return run.stdout;
}

/** Usage and runtime errors: nothing on stdout, exactly one `peak-cache: ...` line on stderr. */
function expectOneErrorLine(run: Run): string {
  expect(run.stdout).toBe('');
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^peak-cache: \S/);
  return lines[0] ?? '';
}

let server: RedisServer;
let tenantSeq = 0;
/** A fresh tenant and the environment that points the CLI at the test server with it. */
function fresh(): { tenant: string; env: Record<string, string> } {
  const tenant = `cli${++tenantSeq}`;
  return { tenant, env: { PEAK_CACHE_URL: server.url, PEAK_CACHE_TENANT: tenant } };
}

/** Build `dist/` when it is missing or older than `src/`, and copy the built JS to a private directory. */
async function privateBuild(): Promise<void> {
  const built = join(DIST, 'cli.js');
  for (let attempt = 1; ; attempt++) {
    if (!existsSync(built) || statSync(built).mtimeMs < newestMtime(join(ROOT, 'src'))) {
      execFileSync('npx', ['tsup'], { cwd: ROOT, stdio: 'ignore' });
    }
    mkdirSync(join(ROOT, '.tmp'), { recursive: true });
    const dir = mkdtempSync(join(ROOT, '.tmp', 'cli-test-'));
    try {
      cpSync(DIST, dir, { recursive: true, filter: (src) => src === DIST || /\.c?js$/.test(src) });
      execFileSync(process.execPath, [join(dir, 'cli.js'), '--help'], { stdio: 'ignore' });
      copyDir = dir;
      CLI = join(dir, 'cli.js');
      return;
    } catch (err) {
      // dist/ was being rebuilt by another run while we copied it: try again.
      rmSync(dir, { recursive: true, force: true });
      if (attempt === 3) throw err;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

beforeAll(async () => {
  await privateBuild();
  server = await startRedis();
});

afterAll(async () => {
  await server?.stop();
  if (copyDir !== undefined) rmSync(copyDir, { recursive: true, force: true });
});

describe('commands', () => {
  it('set then get an object, a string and a number (peak codec: numbers read back as strings)', async () => {
    const { env } = fresh();
    expect(await cli(['set', '--key', 'user:1', '--value', '{"name":"Ada"}'], env)).toMatchObject({
      code: 0,
      stdout: 'true\n',
      stderr: '',
    });
    expect(await cli(['get', '--key', 'user:1'], env)).toMatchObject({ code: 0, stdout: '{"name":"Ada"}\n' });
    await ok(['set', '--key', 'greeting', '--value', 'hello world'], env);
    expect(await ok(['get', '--key', 'greeting'], env)).toBe('"hello world"\n');
    await ok(['set', '--key', 'n', '--value', '42'], env);
    expect(await ok(['get', '--key', 'n'], env)).toBe('"42"\n');
    await ok(['set', '--key', 'neg', '--value=-5'], env);
    expect(await ok(['get', '--key', 'neg'], env)).toBe('"-5"\n');
  });

  it('get of a missing key: null, or --default parsed as JSON, else as a string', async () => {
    const { env } = fresh();
    expect(await cli(['get', '--key', 'missing'], env)).toMatchObject({ code: 0, stdout: 'null\n' });
    expect(await ok(['get', '--key', 'missing', '--default', '{"a":[1,2]}'], env)).toBe('{"a":[1,2]}\n');
    expect(await ok(['get', '--key', 'missing', '--default', '3'], env)).toBe('3\n');
    expect(await ok(['get', '--key', 'missing', '--default', 'none'], env)).toBe('"none"\n');
    await ok(['set', '--key', 'present', '--value', '[1,null]'], env);
    expect(await ok(['get', '--key', 'present', '--default', 'none'], env)).toBe('[1,null]\n');
  });

  it('set --ttl, ttl, expire', async () => {
    const { tenant, env } = fresh();
    await ok(['set', '--key', 'k', '--value', 'v', '--ttl', '100'], env);
    expect(Number(await server.cli('TTL', `${tenant}:k`))).toBeGreaterThan(90);
    const ttl = await cli(['ttl', '--key', 'k'], env);
    expect(ttl.code).toBe(0);
    expect(Number(ttl.stdout)).toBeGreaterThan(90);
    expect(ttl.stdout).toMatch(/^\d+\n$/);

    await ok(['set', '--key', 'forever', '--value', 'v'], env);
    expect(await ok(['ttl', '--key', 'forever'], env)).toBe('-1\n');
    const missing = await cli(['ttl', '--key', 'nope'], env);
    expect(missing, JSON.stringify(missing)).toMatchObject({ code: 0, stdout: '-2\n' });
    expect(await cli(['expire', '--key', 'forever', '--ttl', '50'], env)).toMatchObject({
      code: 0,
      stdout: 'true\n',
    });
    expect(Number(await ok(['ttl', '--key', 'forever'], env))).toBeGreaterThan(40);
    expect(await cli(['expire', '--key', 'nope', '--ttl', '50'], env)).toMatchObject({
      code: 0,
      stdout: 'false\n',
    });
  });

  it('mset (with --ttl) and mget, with misses in order', async () => {
    const { tenant, env } = fresh();
    expect(await ok(['mset', '--mapping', '{"a":{"n":1},"b":"x","c":[1,2]}', '--ttl', '60'], env)).toBe(
      'true\n',
    );
    expect(Number(await server.cli('TTL', `${tenant}:b`))).toBeGreaterThan(50);
    expect(await ok(['mget', '--keys', 'a, b ,missing,c'], env)).toBe('[{"n":1},"x",null,[1,2]]\n');
    expect(await cli(['mset', '--mapping', '{}'], env)).toMatchObject({ code: 0, stdout: 'true\n' });
  });

  it('exists and delete count keys', async () => {
    const { env } = fresh();
    await ok(['mset', '--mapping', '{"a":1,"b":2,"c":3}'], env);
    expect(await ok(['exists', '--keys', 'a,b,zz'], env)).toBe('2\n');
    expect(await cli(['delete', '--keys', 'a,b,zz'], env)).toMatchObject({ code: 0, stdout: '2\n' });
    expect(await ok(['exists', '--keys', 'a,b,c'], env)).toBe('1\n');
  });

  it('ping', async () => {
    const { env } = fresh();
    expect(await cli(['ping'], env)).toMatchObject({ code: 0, stdout: 'true\n', stderr: '' });
  });

  it('--prefix namespaces keys as <tenant>:<prefix>:<key>; --url/--tenant flags work without env', async () => {
    const { tenant } = fresh();
    const flags = ['--url', server.url, '--tenant', tenant];
    await ok(['set', '--prefix', 'pricing', '--key', 'k', '--value', 'v', ...flags]);
    expect(await server.cli('--raw', 'GET', `${tenant}:pricing:k`)).toBe('v');
    expect(await ok(['get', '--key', 'k', ...flags])).toBe('null\n');
    expect(await ok(['--prefix', 'pricing', 'get', '--key', 'k', ...flags])).toBe('"v"\n');
  });

  it('flush-pattern and flush-tenant delete without prompting when not on a terminal', async () => {
    const { tenant, env } = fresh();
    const other = fresh();
    await ok(['mset', '--prefix', 'p', '--mapping', '{"s:1":1,"s:2":2,"t:1":3}'], env);
    await ok(['mset', '--mapping', '{"s:1":1,"x":2}'], env);
    await ok(['set', '--key', 's:1', '--value', 'keep'], other.env);

    const byPattern = await cli(['flush-pattern', '--prefix', 'p', '--pattern', 's:*'], env);
    expect(byPattern).toMatchObject({ code: 0, stdout: '2\n', stderr: '' });
    expect(await server.cli('EXISTS', `${tenant}:p:t:1`, `${tenant}:s:1`)).toBe('2');

    const all = await cli(['flush-tenant'], env);
    expect(all).toMatchObject({ code: 0, stdout: '3\n', stderr: '' });
    expect(await server.cli('--scan', '--pattern', `${tenant}:*`)).toBe('');
    expect(await ok(['get', '--key', 's:1'], other.env)).toBe('"keep"\n');
  });

  it('--debug prints debug lines (key names) on stderr, the JSON result still alone on stdout', async () => {
    const { tenant, env } = fresh();
    const run = await cli(['set', '--key', 'k', '--value', 'secret-value', '--debug'], env);
    expect(run).toMatchObject({ code: 0, stdout: 'true\n' });
    expect(run.stderr).toContain(`peak-cache: debug: set "${tenant}:k"`);
    expect(run.stderr).not.toContain('secret-value');
  });
});

describe('interoperability with the library', () => {
  it('a value written by the CLI is read by CacheClient, and the reverse', async () => {
    const { tenant, env } = fresh();
    const client = new CacheClient({
      connectionConfig: { url: server.url, tenant },
      additionalPrefix: 'shared',
      env: {},
    });
    try {
      await ok(
        ['set', '--prefix', 'shared', '--key', 'from-cli', '--value', '{"name":"Ada","n":[1,2]}'],
        env,
      );
      expect(await client.get('from-cli')).toEqual({ name: 'Ada', n: [1, 2] });

      await client.set('from-lib', { city: 'Zürich' });
      await client.set('plain', 'text');
      expect(await ok(['mget', '--prefix', 'shared', '--keys', 'from-lib,plain'], env)).toBe(
        '[{"city":"Zürich"},"text"]\n',
      );
    } finally {
      await client.close();
    }
  });
});

describe('usage errors: exit 2, one line on stderr, nothing on stdout', () => {
  const env = () => fresh().env;

  it.each([
    ['bad JSON in --mapping', ['mset', '--mapping', '{not json'], /--mapping is not valid JSON/],
    ['a --mapping that is not an object', ['mset', '--mapping', '[1,2]'], /--mapping must be a JSON object/],
    ['a missing required option', ['get'], /get needs --key/],
    ['a missing required option (expire --ttl)', ['expire', '--key', 'k'], /expire needs --ttl/],
    ['an unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
    ['no command', [], /no command given/],
    ['an unknown option', ['get', '--key', 'k', '--nope'], /unknown option --nope/],
    ['an option of another command', ['get', '--key', 'k', '--ttl', '5'], /get does not take --ttl/],
    ['a bad number', ['set', '--key', 'k', '--value', 'v', '--ttl', 'ten'], /--ttl must be a whole number/],
    ['a zero ttl', ['expire', '--key', 'k', '--ttl', '0'], /--ttl must be a whole number/],
    ['a bad --timeout', ['ping', '--timeout', '1.5'], /--timeout must be a whole number/],
    ['an empty --keys item', ['mget', '--keys', 'a,,b'], /--keys must be a comma-separated list/],
    ['an option without its value', ['get', '--key'], /--key needs a value/],
    ['an option given twice', ['get', '--key', 'a', '--key', 'b'], /--key is given more than once/],
    ['an invalid --prefix', ['get', '--key', 'k', '--prefix', 'a b'], /Invalid additional prefix "a b"/],
    [
      'an invalid --tenant',
      ['get', '--key', 'k', '--url', 'memory://', '--tenant', 'a*'],
      /Invalid tenant "a\*"/,
    ],
  ])('%s', async (_name, args, message) => {
    const run = await cli(args, env());
    expect(run.code).toBe(2);
    expect(expectOneErrorLine(run)).toMatch(message);
  });
});

describe('connection errors: exit 3', () => {
  it('an unreachable server: a clear message within a few seconds', async () => {
    const port = await freePort();
    const run = await cli([
      'get',
      '--key',
      'k',
      '--url',
      `redis://127.0.0.1:${port}`,
      '--tenant',
      't',
      '--timeout',
      '1000',
    ]);
    expect(run.code).toBe(3);
    expect(expectOneErrorLine(run)).toMatch(new RegExp(`could not connect to 127\\.0\\.0\\.1:${port}`));
    expect(run.ms).toBeLessThan(5000);
  });

  it('a server that does not answer: --timeout bounds the wait', async () => {
    const stalled = await startRedis();
    stalled.pause();
    try {
      const run = await cli(['ping', '--url', stalled.url, '--tenant', 't', '--timeout', '1000']);
      expect(run.code).toBe(3);
      expect(expectOneErrorLine(run)).toMatch(/within 1000 ms/);
      expect(run.ms).toBeLessThan(5000);
    } finally {
      await stalled.stop(true);
    }
  });

  it('nothing configured: the ways to configure', async () => {
    const run = await cli(['ping']);
    expect(run.code).toBe(3);
    expect(expectOneErrorLine(run)).toMatch(
      /No cache is configured\. Use one of: .*PEAK_CACHE_URL and PEAK_CACHE_TENANT.*API_KEY.*On the command line: --url and --tenant$/,
    );
  });

  it('a URL without a tenant', async () => {
    const run = await cli(['ping', '--url', server.url]);
    expect(run.code).toBe(3);
    expect(expectOneErrorLine(run)).toMatch(
      /A tenant is required with connectionConfig.url: set connectionConfig.tenant or PEAK_CACHE_TENANT\. On the command line: --url and --tenant$/,
    );
  });

  describe('secrets never appear on stderr', () => {
    let secured: RedisServer;
    beforeAll(async () => {
      secured = await startRedis({ password: 'correct-horse-battery' });
    });
    afterAll(async () => {
      await secured?.stop();
    });

    it('the right password works', async () => {
      const run = await cli(['ping', '--url', secured.url, '--tenant', 't']);
      expect(run).toMatchObject({ code: 0, stdout: 'true\n' });
    });

    it.each([
      ['--url', false],
      ['--url with --debug', true],
      ['PEAK_CACHE_URL', false],
    ])('a wrong password in %s', async (how, debug) => {
      const password = 'wrong-Secret-pw/42';
      const url = `redis://default:${encodeURIComponent(password)}@127.0.0.1:${secured.port}`;
      const args = ['set', '--key', 'k', '--value', 'v', ...(debug ? ['--debug'] : [])];
      const run = how.startsWith('--url')
        ? await cli([...args, '--url', url, '--tenant', 't'])
        : await cli(args, { PEAK_CACHE_URL: url, PEAK_CACHE_TENANT: 't' });
      expect(run.code).toBe(3);
      if (!debug) expect(expectOneErrorLine(run)).toMatch(/rejected the credentials/);
      for (const secret of [password, encodeURIComponent(password), url, 'correct-horse-battery']) {
        expect(run.stderr).not.toContain(secret);
        expect(run.stdout).not.toContain(secret);
      }
    });

    it('the platform API token', async () => {
      const token = 'tok-very-secret-123';
      const port = await freePort();
      const run = await cli(['ping', '--timeout', '1000', '--debug'], {
        API_KEY: token,
        PEAK_PLATFORM_URL: `http://127.0.0.1:${port}`,
      });
      expect(run.code).toBe(3);
      expect(run.stderr).toMatch(/Peak platform/);
      expect(run.stderr).not.toContain(token);
    });
  });
});

describe('--version', () => {
  it.each([['--version'], ['get', '--version']])('%s prints the package version, exit 0', async (...args) => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const run = await cli(args);
    expect(run).toMatchObject({ code: 0, stderr: '', stdout: `${version}\n` });
  });
});

describe('--help', () => {
  it.each(['--help', '-h'])('program %s: the commands and an example, exit 0', async (flag) => {
    const run = await cli([flag]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    for (const command of COMMANDS) expect(run.stdout).toContain(`  ${command} `);
    expect(run.stdout).toMatch(/Example:\n {2}\$ /);
  });

  it.each(COMMANDS)('%s --help: usage and an example, exit 0 (no connection needed)', async (command) => {
    const run = await cli([command, '--help']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toContain(`Usage: peak-cache ${command}`);
    expect(run.stdout).toMatch(new RegExp(`Examples?:\\n {2}\\$ peak-cache ${command}`));
    expect(await ok(['help', command])).toBe(run.stdout);
  });
});

/** `script` gives the CLI a pseudo-terminal on stdin and stderr, to test the confirmation prompt. */
const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!hasScript)('on a terminal', () => {
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  /** Run the CLI under `script` with `answer` typed at the terminal. */
  function onTerminal(args: string[], env: Record<string, string>, answer: string): Promise<Run> {
    const command = [process.execPath, CLI, ...args].map(quote).join(' ');
    return exec('sh', ['-c', `printf ${quote(answer)} | script -qec ${quote(command)} /dev/null`], env);
  }

  it('flush-tenant asks for confirmation; anything but y keeps the keys', async () => {
    const { tenant, env } = fresh();
    await ok(['mset', '--mapping', '{"a":1,"b":2}'], env);
    const declined = await onTerminal(['flush-tenant'], env, 'n\n');
    expect(declined.stdout).toContain(`Delete every key of tenant ${tenant}? [y/N]`);
    expect(declined.stdout).toContain('not confirmed; nothing was deleted');
    expect(declined.code).toBe(1);
    expect(await server.cli('EXISTS', `${tenant}:a`, `${tenant}:b`)).toBe('2');

    const confirmed = await onTerminal(['flush-tenant'], env, 'y\n');
    expect(confirmed.code).toBe(0);
    expect(confirmed.stdout).toMatch(/deleted 2 keys so far/);
    expect(await server.cli('EXISTS', `${tenant}:a`, `${tenant}:b`)).toBe('0');
  });

  it('flush-pattern names the pattern; --yes skips the question', async () => {
    const { tenant, env } = fresh();
    await ok(['mset', '--mapping', '{"s:1":1,"s:2":2}'], env);
    const declined = await onTerminal(['flush-pattern', '--pattern', 's:*'], env, '\n');
    expect(declined.stdout).toContain(`Delete every key of tenant ${tenant} matching "s:*"? [y/N]`);
    expect(declined.code).toBe(1);

    const yes = await onTerminal(['flush-pattern', '--pattern', 's:*', '--yes'], env, '');
    expect(yes.code).toBe(0);
    expect(yes.stdout).not.toContain('[y/N]');
    const lines = yes.stdout.replaceAll('\x1b[2K', '').split(/\r?\n|\r/);
    expect(lines).toContain('2');
    expect(await server.cli('--scan', '--pattern', `${tenant}:*`)).toBe('');
  });
});
