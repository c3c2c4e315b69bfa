/**
 * The command table of the `peak-cache` CLI and its help texts. Each command checks and converts its
 * options up front (`prepare`, no I/O) and returns the action to run against a {@link CacheClient}.
 *
 * @module
 */
import type { CacheClient, FlushOptions } from '../client.js';
import {
  GLOBAL_OPTIONS,
  type OptionName,
  type OptionValues,
  parseJsonOrString,
  parseKeyList,
  parseMapping,
  parsePositiveInteger,
  UsageError,
} from './args.js';

/** The work of one command once its options are checked: its result is printed as JSON. */
export type Action = (client: CacheClient, flush: FlushOptions) => Promise<unknown>;

/** One CLI command. */
export interface CommandSpec {
  /** The command name, e.g. `get`. */
  readonly name: string;
  /** One line saying what it does. */
  readonly summary: string;
  /** What it prints on stdout. */
  readonly output: string;
  /** Its own options; `required` ones must be given. */
  readonly options: readonly { readonly name: OptionName; readonly required?: boolean }[];
  /** Example invocations (without `$ `). */
  readonly examples: readonly string[];
  /** Deletes keys: asks for confirmation on a terminal unless `--yes`, shows progress. */
  readonly destructive?: boolean;
  /** Check and convert the options; no I/O. @throws {UsageError} */
  prepare(values: OptionValues): Action;
}

/** Placeholder and description of every option, for help texts. */
const OPTION_HELP: Record<OptionName, readonly [placeholder: string, description: string]> = {
  key: ['K', 'the key, without tenant or prefix'],
  keys: ['K1,K2', 'comma-separated keys (items trimmed; a key cannot contain a comma)'],
  value: ['V', 'the value: JSON when it parses as JSON, else the text as a string'],
  default: ['V', 'printed when the key is missing (JSON when it parses, else a string); default null'],
  mapping: ['JSON', 'a JSON object of keys to values, e.g. \'{"a":1,"b":"x"}\''],
  ttl: ['N', 'expire after N seconds (a whole number > 0); default: no expiry'],
  pattern: ['P', 'Redis glob matched inside <tenant>:[<prefix>:], e.g. "session:*"'],
  yes: ['', 'do not ask for confirmation (never asked when not on a terminal)'],
  url: ['URL', 'redis://[user:password@]host:port, rediss://... or memory:// (env PEAK_CACHE_URL)'],
  tenant: ['T', 'the tenant, first segment of every key (env PEAK_CACHE_TENANT)'],
  prefix: ['P', 'additional prefix: keys are stored as <tenant>:<prefix>:<key>'],
  timeout: ['MS', 'connect and reply timeout in milliseconds (default 5000)'],
  debug: ['', 'print one debug line per operation on stderr (key names, never values)'],
  help: ['', 'show this help'],
  version: ['', 'print the version of peak-cache'],
};

const str = (values: OptionValues, name: OptionName): string => values[name] as string;
const ttlOf = (values: OptionValues): number | undefined =>
  values.ttl === undefined ? undefined : parsePositiveInteger(values.ttl, '--ttl', 'seconds');

/** Every command, in help order. */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'set',
    summary: 'store a value',
    output: 'true',
    options: [{ name: 'key', required: true }, { name: 'value', required: true }, { name: 'ttl' }],
    examples: [
      `peak-cache set --key user:1 --value '{"name":"Ada"}' --ttl 3600`,
      'peak-cache set --key greeting --value hello',
    ],
    prepare(values) {
      const key = str(values, 'key');
      const value = parseJsonOrString(str(values, 'value'));
      const ttl = ttlOf(values);
      return (client) => client.set(key, value, ttl);
    },
  },
  {
    name: 'get',
    summary: 'read a value',
    output: 'the value as JSON; null (or --default) when the key is missing',
    options: [{ name: 'key', required: true }, { name: 'default' }],
    examples: ['peak-cache get --key user:1', `peak-cache get --key user:2 --default '{}'`],
    prepare(values) {
      const key = str(values, 'key');
      if (values.default === undefined) return (client) => client.get(key);
      const fallback = parseJsonOrString(values.default);
      return (client) => client.get(key, fallback);
    },
  },
  {
    name: 'mget',
    summary: 'read several values',
    output: 'a JSON array of the values in order, null for missing keys',
    options: [{ name: 'keys', required: true }],
    examples: ['peak-cache mget --keys user:1,user:2'],
    prepare(values) {
      const keys = parseKeyList(str(values, 'keys'));
      return (client) => client.mget(...keys);
    },
  },
  {
    name: 'mset',
    summary: 'store several values at once',
    output: 'true',
    options: [{ name: 'mapping', required: true }, { name: 'ttl' }],
    examples: [`peak-cache mset --mapping '{"user:1":{"name":"Ada"},"user:2":"Bob"}' --ttl 600`],
    prepare(values) {
      const mapping = parseMapping(str(values, 'mapping'));
      const ttl = ttlOf(values);
      return (client) => client.mset(mapping, ttl);
    },
  },
  {
    name: 'delete',
    summary: 'delete keys',
    output: 'the number of keys deleted',
    options: [{ name: 'keys', required: true }],
    examples: ['peak-cache delete --keys user:1,user:2'],
    prepare(values) {
      const keys = parseKeyList(str(values, 'keys'));
      return (client) => client.delete(...keys);
    },
  },
  {
    name: 'exists',
    summary: 'count existing keys',
    output: 'the number of the keys that exist (repeats counted)',
    options: [{ name: 'keys', required: true }],
    examples: ['peak-cache exists --keys user:1,user:2'],
    prepare(values) {
      const keys = parseKeyList(str(values, 'keys'));
      return (client) => client.exists(...keys);
    },
  },
  {
    name: 'expire',
    summary: 'set the time to live of a key',
    output: 'true, or false when the key does not exist',
    options: [
      { name: 'key', required: true },
      { name: 'ttl', required: true },
    ],
    examples: ['peak-cache expire --key user:1 --ttl 60'],
    prepare(values) {
      const key = str(values, 'key');
      const ttl = parsePositiveInteger(str(values, 'ttl'), '--ttl', 'seconds');
      return (client) => client.expire(key, ttl);
    },
  },
  {
    name: 'ttl',
    summary: 'show the time to live of a key',
    output: 'seconds left; -1 when the key has no expiry, -2 when it does not exist',
    options: [{ name: 'key', required: true }],
    examples: ['peak-cache ttl --key user:1'],
    prepare(values) {
      const key = str(values, 'key');
      return (client) => client.ttl(key);
    },
  },
  {
    name: 'ping',
    summary: 'check that the cache answers',
    output: 'true (exit code 3 when the cache cannot be reached)',
    options: [],
    examples: ['peak-cache ping --url redis://127.0.0.1:6379 --tenant acme'],
    prepare: () => (client) => client.ping(),
  },
  {
    name: 'flush-pattern',
    summary: 'delete the keys matching a glob pattern',
    output: 'the number of keys deleted',
    options: [{ name: 'pattern', required: true }, { name: 'yes' }],
    examples: [
      "peak-cache flush-pattern --pattern 'session:*'",
      "peak-cache flush-pattern --prefix pricing --pattern '*' --yes",
    ],
    destructive: true,
    prepare(values) {
      const pattern = str(values, 'pattern');
      return (client, flush) => client.flushByPattern(pattern, flush);
    },
  },
  {
    name: 'flush-tenant',
    summary: 'delete every key of the tenant, whatever its prefix',
    output: 'the number of keys deleted',
    options: [{ name: 'yes' }],
    examples: ['peak-cache flush-tenant', 'peak-cache flush-tenant --tenant acme --yes'],
    destructive: true,
    prepare: () => (client, flush) => client.flushTenant(flush),
  },
];

/** The command named `name`, or `undefined`. */
export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/**
 * Check that only this command's options and global ones are given, and that required ones are.
 * @throws {UsageError}
 */
export function checkOptions(spec: CommandSpec, values: OptionValues): void {
  const allowed = new Set<string>([...GLOBAL_OPTIONS, ...spec.options.map((o) => o.name)]);
  for (const name of Object.keys(values)) {
    if (!allowed.has(name)) {
      throw new UsageError(`${spec.name} does not take --${name} (see peak-cache ${spec.name} --help)`);
    }
  }
  for (const option of spec.options) {
    if (option.required && values[option.name] === undefined) {
      throw new UsageError(`${spec.name} needs --${option.name} (see peak-cache ${spec.name} --help)`);
    }
  }
}

/** Width of the option column in help texts: the longest option of any list. */
const OPTION_WIDTH = 2 + Math.max(...Object.entries(OPTION_HELP).map(([n, [p]]) => n.length + p.length + 5));

function optionLines(names: readonly OptionName[]): string[] {
  const rows = names.map((name) => {
    const [placeholder, description] = OPTION_HELP[name];
    const short = name === 'help' ? '-h, ' : name === 'yes' ? '-y, ' : '';
    return [`${short}--${name}${placeholder === '' ? '' : ` ${placeholder}`}`, description] as const;
  });
  return rows.map(([left, description]) => `  ${left.padEnd(OPTION_WIDTH)}${description}`);
}

function synopsis(spec: CommandSpec): string {
  const parts = spec.options.map((o) => {
    const placeholder = OPTION_HELP[o.name][0];
    const text = `--${o.name}${placeholder === '' ? '' : ` ${placeholder}`}`;
    return o.required ? text : `[${text}]`;
  });
  return ['peak-cache', spec.name, ...parts, '[global options]'].join(' ');
}

const GLOBAL_HELP = [
  'Global options:',
  ...optionLines(GLOBAL_OPTIONS),
  '',
  'Connection: --url and --tenant, else env PEAK_CACHE_URL and PEAK_CACHE_TENANT, else the Peak',
  'platform with env API_KEY (and STAGE, PEAK_PLATFORM_URL).',
];

/** The help text of one command. */
export function commandHelp(spec: CommandSpec): string {
  const own = spec.options.map((o) => o.name);
  return [
    `peak-cache ${spec.name}: ${spec.summary}`,
    '',
    `Usage: ${synopsis(spec)}`,
    '',
    ...(own.length > 0 ? ['Options:', ...optionLines(own), ''] : []),
    ...GLOBAL_HELP,
    '',
    `Prints: ${spec.output}.`,
    '',
    spec.examples.length > 1 ? 'Examples:' : 'Example:',
    ...spec.examples.map((e) => `  $ ${e}`),
    '',
  ].join('\n');
}

/** The help text of the program. */
export function programHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'peak-cache: read and write the Peak multi-tenant cache (Redis / Valkey)',
    '',
    'Usage: peak-cache <command> [options]      peak-cache <command> --help',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    ...GLOBAL_HELP,
    '',
    'Output is one line of JSON on stdout; errors are one line on stderr. Exit codes: 0 success,',
    '1 cache error (or flush not confirmed), 2 usage error, 3 connection error.',
    '',
    'Example:',
    `  $ export PEAK_CACHE_URL=redis://127.0.0.1:6379 PEAK_CACHE_TENANT=acme`,
    `  $ peak-cache set --key user:1 --value '{"name":"Ada"}' --ttl 3600`,
    '  true',
    '  $ peak-cache get --key user:1',
    '  {"name":"Ada"}',
    '',
  ].join('\n');
}
