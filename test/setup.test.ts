/**
 * Proof that test/setup.ts (the project's `setupFiles`) fails a run on an unhandled rejection or an
 * uncaught exception: a child Vitest runs deliberately bad test files (written under `.tmp/`, outside the
 * project's `include`) with the project's own config, and its JSON report is read back.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

const BAD_FILES: Record<string, string> = {
  'rejection.bad.ts': `
import { expect, it } from 'vitest';
it('leaks a rejection', async () => {
  Promise.reject(new Error('leaked-in-test'));
  await new Promise((r) => setTimeout(r, 20));
  expect(1).toBe(1);
});
it('is clean', () => {
  expect(1).toBe(1);
});
`,
  'exception.bad.ts': `
import { expect, it } from 'vitest';
it('throws from a timer', async () => {
  setTimeout(() => {
    throw new Error('thrown-from-timer');
  }, 1);
  await new Promise((r) => setTimeout(r, 20));
  expect(1).toBe(1);
});
`,
  'after-all.bad.ts': `
import { afterAll, expect, it } from 'vitest';
afterAll(() => {
  Promise.reject(new Error('leaked-in-afterAll'));
});
it('passes', () => {
  expect(1).toBe(1);
});
`,
  'clean.bad.ts': `
import { expect, it } from 'vitest';
it('handles its rejection', async () => {
  const p = Promise.reject(new Error('handled'));
  await expect(p).rejects.toThrow('handled');
});
`,
};

interface Report {
  testResults: {
    name: string;
    message: string;
    assertionResults: { title: string; status: string; failureMessages: string[] }[];
  }[];
}

interface Run {
  code: number;
  report: Report;
  output: string;
}

let dir: string;
/** The control run (no setup file) and the run with it, started together. */
let runs: Promise<[Run, Run]>;

beforeAll(() => {
  mkdirSync(join(ROOT, '.tmp'), { recursive: true });
  dir = mkdtempSync(join(ROOT, '.tmp', 'setup-guard-'));
  for (const [name, text] of Object.entries(BAD_FILES)) writeFileSync(join(dir, name), text);
  runs = Promise.all([runVitest(false), runVitest(true)]);
  // Owned by the tests below; this keeps a failed start from being an unhandled rejection meanwhile.
  runs.catch(() => {});
});
afterAll(async () => {
  await runs?.catch(() => {});
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * Run the bad files with the project's vitest.config.ts, only `include` replaced; `withSetup: false` also
 * drops `setupFiles` (the control run). Vitest's own reporting of unhandled errors is switched off
 * (`dangerouslyIgnoreUnhandledErrors`), so a failing run is the setup file's doing.
 */
async function runVitest(withSetup: boolean): Promise<Run> {
  const config = join(dir, `vitest.${withSetup ? 'with' : 'without'}.config.mts`);
  writeFileSync(
    config,
    `import base from ${JSON.stringify(join(ROOT, 'vitest.config.ts'))};
const test = { ...base.test, include: [${JSON.stringify(`${dir}/*.bad.ts`)}], typecheck: { enabled: false },
  dangerouslyIgnoreUnhandledErrors: true${withSetup ? '' : ', setupFiles: []'} };
export default { ...base, test };
`,
  );
  const reportFile = join(dir, `report-${withSetup}.json`);
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('VITEST')) env[key] = value;
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'),
      'run',
      '--config',
      config,
      '--reporter=json',
      `--outputFile=${reportFile}`,
    ],
    { cwd: ROOT, env: { ...env, NODE_ENV: 'test' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const [code] = (await once(child, 'exit')) as [number];
  const report = JSON.parse(readFileSync(reportFile, 'utf8')) as Report;
  return { code, report, output };
}

function fileResult(run: Run, name: string) {
  const file = run.report.testResults.find((f) => f.name.endsWith(name));
  if (file === undefined) throw new Error(`no result for ${name}:\n${run.output}`);
  return file;
}

function testResult(run: Run, name: string, title: string) {
  const test = fileResult(run, name).assertionResults.find((t) => t.title === title);
  if (test === undefined) throw new Error(`no result for ${name} > ${title}:\n${run.output}`);
  return test;
}

describe('test/setup.ts fails the run on unhandled errors', () => {
  it('without it (control), the bad files pass', async () => {
    const [run] = await runs;
    expect(run.code, run.output).toBe(0);
    expect(testResult(run, 'rejection.bad.ts', 'leaks a rejection').status).toBe('passed');
    expect(testResult(run, 'exception.bad.ts', 'throws from a timer').status).toBe('passed');
    expect(testResult(run, 'after-all.bad.ts', 'passes').status).toBe('passed');
  }, 120_000);

  it('with it, each unhandled error fails its test or file and the run; clean tests still pass', async () => {
    const [, run] = await runs;
    expect(run.code, run.output).not.toBe(0);

    const leaked = testResult(run, 'rejection.bad.ts', 'leaks a rejection');
    expect(leaked.status).toBe('failed');
    expect(leaked.failureMessages.join('\n')).toContain('unhandledRejection: Error: leaked-in-test');
    expect(testResult(run, 'rejection.bad.ts', 'is clean').status).toBe('passed');

    const thrown = testResult(run, 'exception.bad.ts', 'throws from a timer');
    expect(thrown.status).toBe('failed');
    expect(thrown.failureMessages.join('\n')).toContain('uncaughtException: Error: thrown-from-timer');

    // An error in an afterAll hook fails the file (its test had already passed).
    const afterAllFile = fileResult(run, 'after-all.bad.ts');
    expect(afterAllFile.message).toContain('unhandledRejection: Error: leaked-in-afterAll');

    expect(testResult(run, 'clean.bad.ts', 'handles its rejection').status).toBe('passed');
  }, 120_000);
});
