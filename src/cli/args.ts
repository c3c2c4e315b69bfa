/**
 * Command-line parsing of the `peak-cache` CLI: the option table, `node:util` `parseArgs` with
 * readable errors, and the value parsers (`--keys` lists, JSON-or-string values, numbers).
 * Everything here runs before any I/O; a bad command line throws {@link UsageError}.
 *
 * @module
 */
import { parseArgs } from 'node:util';
import { parsePythonJson } from '../codec/parse.js';

/** A mistake in the command line (exit code 2): unknown command or option, missing or bad value. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Every option the CLI knows, global and per command (`parseArgs` configuration). */
export const OPTIONS = {
  key: { type: 'string' },
  keys: { type: 'string' },
  value: { type: 'string' },
  default: { type: 'string' },
  mapping: { type: 'string' },
  ttl: { type: 'string' },
  pattern: { type: 'string' },
  yes: { type: 'boolean', short: 'y' },
  url: { type: 'string' },
  tenant: { type: 'string' },
  prefix: { type: 'string' },
  timeout: { type: 'string' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

/** The name of a CLI option, without the leading `--`. */
export type OptionName = keyof typeof OPTIONS;

/** Options every command accepts. */
export const GLOBAL_OPTIONS: readonly OptionName[] = [
  'url',
  'tenant',
  'prefix',
  'timeout',
  'debug',
  'help',
  'version',
];

/** Parsed option values: strings for valued options, `true` for flags; absent when not given. */
export type OptionValues = {
  [K in OptionName]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean;
};

/** A parsed command line. */
export interface CommandLine {
  /** The first positional argument, if any. */
  readonly command: string | undefined;
  /** The positional arguments after the command (only `help <command>` takes one). */
  readonly operands: readonly string[];
  /** The options given. */
  readonly values: OptionValues;
}

/** Turn a `parseArgs` error into a short, actionable usage message. */
function usageMessage(err: { code?: unknown; message: string }): string {
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    return `unknown option ${/Unknown option '([^']+)'/.exec(err.message)?.[1] ?? ''} (see peak-cache --help)`;
  }
  // "Option '--key <value>' argument missing", "Option '-h, --help' does not take an argument", ...
  const flag = /Option '(?:-\w, )?(-{1,2}[\w-]+)/.exec(err.message)?.[1] ?? 'an option';
  if (err.message.includes('argument missing')) return `${flag} needs a value`;
  if (err.message.includes('ambiguous')) {
    return `${flag} needs a value; to pass a value starting with '-', write ${flag}=<value>`;
  }
  if (err.message.includes('does not take an argument')) return `${flag} does not take a value`;
  return err.message.split('\n')[0] ?? 'invalid command line';
}

/**
 * Parse `argv` (without `node` and the script). Options may come before or after the command.
 * @throws {UsageError} for an unknown option, a missing value or an option given twice.
 */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    if (err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string') {
      throw new UsageError(usageMessage(err as NodeJS.ErrnoException));
    }
    throw err;
  }
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option') continue;
    if (seen.has(token.name)) throw new UsageError(`--${token.name} is given more than once`);
    seen.add(token.name);
  }
  const [command, ...operands] = parsed.positionals;
  return { command, operands, values: parsed.values as OptionValues };
}

function parse(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: true, tokens: true });
}

/**
 * Split a `--keys` comma list; items are trimmed.
 * @throws {UsageError} for an empty item (`a,,b`, a trailing comma, or an empty list).
 */
export function parseKeyList(text: string, option = '--keys'): string[] {
  const keys = text.split(',').map((item) => item.trim());
  if (keys.some((key) => key === '')) {
    throw new UsageError(`${option} must be a comma-separated list of non-empty keys, e.g. ${option} a,b`);
  }
  return keys;
}

/**
 * `text` parsed as JSON when it is valid JSON, else `text` itself (so `--value hello` is the string
 * `hello`). JSON as Python reads it: `NaN`/`Infinity` and integers beyond 2^53 (as `bigint`) are kept.
 */
export function parseJsonOrString(text: string): unknown {
  try {
    return parsePythonJson(text);
  } catch {
    return text;
  }
}

/**
 * Parse `--mapping`: it must be a JSON object (read as {@link parseJsonOrString} reads JSON).
 * @throws {UsageError} when it is not valid JSON or not an object.
 */
export function parseMapping(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = parsePythonJson(text);
  } catch (err) {
    const reason = err instanceof Error ? (err.message.split('\n')[0] ?? '') : '';
    throw new UsageError(`--mapping is not valid JSON (${reason}); expected an object such as '{"a":1}'`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw new UsageError(`--mapping must be a JSON object such as '{"a":1}', not ${kind}`);
  }
  return value as Record<string, unknown>;
}

/**
 * Parse a whole number greater than zero (`--ttl`, `--timeout`).
 * @throws {UsageError} for anything else (`abc`, `1.5`, `0`, `-1`).
 */
export function parsePositiveInteger(text: string, option: string, unit: string): number {
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new UsageError(
      `${option} must be a whole number of ${unit} greater than 0, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}
