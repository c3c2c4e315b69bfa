#!/usr/bin/env node
/**
 * The `peak-cache` command: read and write the Peak multi-tenant cache from a shell.
 * `peak-cache --help` lists the commands; `docs/cli.md` documents them.
 *
 * The program lives in `./cli/` (`args.ts`: parsing; `commands.ts`: the command table and help;
 * `main.ts`: running a command). This entry point only wires it to the process and sets the exit code;
 * the process then exits by itself once the client is closed.
 *
 * @module
 */
import { main } from './cli/main.js';

// A closed pipe (`peak-cache mget ... | head -c 10`) is not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
});

void main(process.argv.slice(2), {
  env: process.env,
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
}).then((code) => {
  process.exitCode = code;
});
