/**
 * Test setup (vitest `setupFiles`, every test file): a library must never crash its host, so any
 * `unhandledRejection` or `uncaughtException` during a test file fails the run, in whichever file it
 * happens. Each one is recorded when it happens and thrown from the next `afterEach` (failing the test
 * that was running, with the error in the report) or, for one raised in `afterAll` hooks, from this
 * file's own `afterAll`.
 *
 * Vitest reports such errors by itself too, but only as a side note of a run whose tests all pass, and
 * not at all under `dangerouslyIgnoreUnhandledErrors`; this hook makes them ordinary test failures.
 * test/setup.test.ts proves it on deliberately bad test files.
 */
import { afterAll, afterEach } from 'vitest';

interface Caught {
  readonly kind: 'unhandledRejection' | 'uncaughtException';
  readonly error: unknown;
}

const caught: Caught[] = [];
const onRejection = (error: unknown): void => {
  caught.push({ kind: 'unhandledRejection', error });
};
const onException = (error: unknown): void => {
  caught.push({ kind: 'uncaughtException', error });
};
// Vitest stays silent about an error while another listener exists ("handled by user code"): these
// listeners live from here to this file's last `afterAll`, after which Vitest reports late errors itself.
process.on('unhandledRejection', onRejection);
process.on('uncaughtException', onException);

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/** Throw when anything was caught since the last check. */
function check(): void {
  if (caught.length === 0) return;
  const found = caught.splice(0);
  const lines = found.map(({ kind, error }) => `${kind}: ${describeError(error)}`);
  throw new AggregateError(
    found.map(({ error }) => error),
    `${found.length} unhandled error(s): a library must never crash its host\n${lines.join('\n')}`,
  );
}

/** The real `setImmediate`, kept before any test can install fake timers. */
const realSetImmediate = globalThis.setImmediate;

/** Let pending rejections surface: Node reports them once the microtask queue drains. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => realSetImmediate(resolve));
}

afterEach(async () => {
  await nextTurn();
  check();
});

afterAll(async () => {
  await nextTurn();
  process.off('unhandledRejection', onRejection);
  process.off('uncaughtException', onException);
  check();
});
