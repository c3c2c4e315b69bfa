/**
 * The `peak-cache` CLI program: parse, build the client, confirm destructive commands on a terminal,
 * run, print JSON, map errors to exit codes. Never prints a secret: messages are redacted against the
 * URL's password and the API token before they are written.
 *
 * @module
 */
import { createInterface } from 'node:readline';
import { CacheClient } from '../client.js';
import { toCompactPythonJson } from '../codec.js';
import { CacheConnectionError, CacheError, CacheValidationError } from '../errors.js';
import type { CacheLogger } from '../logger.js';
import type { CacheClientOptions, ConnectionConfig } from '../options.js';
import { type OptionValues, parseCommandLine, parsePositiveInteger, UsageError } from './args.js';
import { type CommandSpec, checkOptions, commandHelp, findCommand, programHelp } from './commands.js';
import { packageVersion } from './version.js';

/** Exit codes of the CLI. */
export const EXIT = { ok: 0, error: 1, usage: 2, connection: 3 } as const;

/** The streams and environment the CLI runs with (the real process ones by default). */
export interface CliIo {
  /** Environment: `PEAK_CACHE_URL`, `PEAK_CACHE_TENANT`, `API_KEY`, `STAGE`, `PEAK_PLATFORM_URL`. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Where the confirmation answer is read from. */
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  /** JSON results. */
  readonly stdout: NodeJS.WritableStream;
  /** Errors, debug lines, the confirmation prompt and progress. */
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

const MIN_SECRET_LENGTH = 4;

/** Secrets that must never be printed: URLs with credentials, their passwords, the API token. */
function secretsOf(values: OptionValues, env: CliIo['env']): string[] {
  const secrets = new Set<string>();
  for (const url of [values.url, env.PEAK_CACHE_URL]) {
    if (url === undefined || url === '') continue;
    try {
      const { password } = new URL(url);
      if (password === '') continue;
      secrets.add(url);
      secrets.add(password);
      secrets.add(decodeURIComponent(password));
    } catch {
      secrets.add(url); // unparsable: hide it whole
    }
  }
  if (env.API_KEY !== undefined) secrets.add(env.API_KEY);
  return [...secrets].filter((s) => s.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
}

function connectionConfig(values: OptionValues, timeoutMs: number | undefined): ConnectionConfig {
  const config: ConnectionConfig = {};
  if (values.url !== undefined) config.url = values.url;
  if (values.tenant !== undefined) config.tenant = values.tenant;
  if (timeoutMs !== undefined) {
    config.timeoutMs = timeoutMs;
    config.connectTimeoutMs = timeoutMs;
  }
  return config;
}

/**
 * The client for `options`. Configuration errors keep the library's message (one source of truth for
 * the connection order), with the command-line spelling added.
 */
function openClient(options: CacheClientOptions): CacheClient {
  try {
    return new CacheClient(options);
  } catch (err) {
    if (!(err instanceof CacheConnectionError)) throw err;
    throw new CacheConnectionError(`${err.message}. On the command line: --url and --tenant`, {
      cause: err.cause,
    });
  }
}

function confirmationQuestion(spec: CommandSpec, values: OptionValues, tenant: string): string {
  const who = `tenant ${tenant}`;
  if (spec.name === 'flush-tenant') return `Delete every key of ${who}? [y/N] `;
  const where = values.prefix ? ` under prefix ${values.prefix}` : '';
  return `Delete every key of ${who}${where} matching ${JSON.stringify(values.pattern)}? [y/N] `;
}

/** Ask on the terminal; resolves `true` only for y / yes. Ctrl-C and Ctrl-D count as no. */
function confirm(io: CliIo, question: string): Promise<boolean> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: io.stdin, output: io.stderr, terminal: true });
    let answered = false;
    const finish = (answer: string) => {
      if (answered) return;
      answered = true;
      rl.close();
      resolve(/^y(es)?$/i.test(answer.trim()));
    };
    rl.on('SIGINT', () => {
      io.stderr.write('\n');
      finish('');
    });
    rl.on('close', () => finish(''));
    rl.question(question, finish);
  });
}

function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError || err instanceof CacheValidationError) return EXIT.usage;
  if (err instanceof CacheConnectionError) return EXIT.connection;
  return EXIT.error;
}

/**
 * Run the CLI with `argv` (the arguments after the script name).
 * @returns the process exit code: 0 success, 1 cache error, 2 usage error, 3 connection error.
 */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const redactWith = (secrets: readonly string[]) => (text: string) =>
    secrets.reduce((out, secret) => out.split(secret).join('***'), text);
  let redact = redactWith(secretsOf({}, io.env));
  const line = (text: string) => io.stderr.write(`peak-cache: ${redact(text).replace(/\s*\n\s*/g, ' ')}\n`);
  let client: CacheClient | undefined;
  let debug = false;
  try {
    const { command, operands, values } = parseCommandLine(argv);
    redact = redactWith(secretsOf(values, io.env));
    debug = values.debug === true;

    if (values.version) {
      io.stdout.write(`${packageVersion()}\n`);
      return EXIT.ok;
    }
    if (command === 'help' || (command === undefined && values.help)) {
      const topic = operands[0] ?? (command === 'help' ? undefined : command);
      const spec = topic === undefined ? undefined : findCommand(topic);
      if (topic !== undefined && spec === undefined) throw new UsageError(`unknown command '${topic}'`);
      io.stdout.write(spec === undefined ? programHelp() : commandHelp(spec));
      return EXIT.ok;
    }
    if (command === undefined) throw new UsageError('no command given (run peak-cache --help)');
    const spec = findCommand(command);
    if (spec === undefined) throw new UsageError(`unknown command '${command}' (run peak-cache --help)`);
    if (operands.length > 0) throw new UsageError(`unexpected argument '${operands[0]}'`);
    if (values.help) {
      io.stdout.write(commandHelp(spec));
      return EXIT.ok;
    }
    checkOptions(spec, values);
    for (const name of ['url', 'tenant'] as const) {
      if (values[name] === '') throw new UsageError(`--${name} must not be empty`);
    }
    const timeoutMs =
      values.timeout === undefined
        ? undefined
        : parsePositiveInteger(values.timeout, '--timeout', 'milliseconds');
    const action = spec.prepare(values);

    const logger: CacheLogger = {
      debug: (message) => line(`debug: ${message}`),
      warn: (message) => line(`warning: ${message.replace(/^peak-cache: /, '')}`),
    };
    const options: CacheClientOptions = {
      connectionConfig: connectionConfig(values, timeoutMs),
      debugLogs: debug,
      logger,
      env: io.env,
    };
    if (values.prefix !== undefined) options.additionalPrefix = values.prefix;
    client = openClient(options);
    if (debug)
      line(`debug: ${spec.name}: tenant ${await client.getTenant()}, prefix ${values.prefix ?? '(none)'}`);

    const onTerminal = io.stdin.isTTY === true && io.stderr.isTTY === true;
    if (spec.destructive && onTerminal && !values.yes) {
      if (!(await confirm(io, confirmationQuestion(spec, values, await client.getTenant())))) {
        line('not confirmed; nothing was deleted');
        return EXIT.error;
      }
    }
    const progress = spec.destructive && io.stderr.isTTY === true;
    let shown = false;
    const flush = progress
      ? {
          onProgress: (deleted: number) => {
            shown = true;
            io.stderr.write(`\r\x1b[2Kdeleted ${deleted} keys so far...`);
          },
        }
      : {};
    let result: unknown;
    try {
      result = await action(client, flush);
    } finally {
      if (shown) io.stderr.write('\r\x1b[2K');
    }
    // Python's numbers: a decoded value may hold a bigint (JSON.stringify throws) or NaN (it writes null).
    io.stdout.write(`${toCompactPythonJson(result)}\n`);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof UsageError || err instanceof CacheError) line(err.message);
    else line(`unexpected error: ${err instanceof Error ? err.message : String(err)}`);
    const cause = err instanceof Error ? err.cause : undefined;
    if (debug && cause instanceof Error && !(err as Error).message.endsWith(cause.message)) {
      line(`debug: cause: ${cause.name}: ${cause.message}`);
    }
    return exitCodeOf(err);
  } finally {
    await client?.close().catch(() => undefined);
  }
}
