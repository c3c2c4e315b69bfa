/**
 * The name of the client operation running now, so that a {@link CacheValidationError} raised while
 * validating its input names it (`get: A key must be a string, got number`), in one place rather than
 * in every method. Input is validated synchronously, before a method's first `await` (before any I/O),
 * which is when the name is set; failures after that are named by the client's `#run` (`get failed:
 * ...`).
 *
 * @module
 */

let current: string | undefined;

/** The operation whose synchronous part is running, if any. */
export function currentOperation(): string | undefined {
  return current;
}

/**
 * Run `validate` as operation `operation` and return what it threw (or `undefined`). For the hot methods
 * {@link nameOperations} leaves unwrapped: they check their input with a cheap test first and call this
 * only when it failed, so a valid call pays nothing for naming, and the error is built while the name is
 * set, exactly as in a wrapped method.
 */
export function failureOf(operation: string, validate: () => unknown): unknown {
  const outer = current;
  current = operation;
  try {
    validate();
    return undefined;
  } catch (err) {
    return err;
  } finally {
    current = outer;
  }
}

/**
 * Make every method of `prototype` (except the constructor, `toJSON` and symbol-named ones) set the
 * operation name to its own name while its synchronous part runs (restoring the caller's afterwards, so
 * an operation calling another is named by the inner one while that runs). One plain call and a
 * `try`/`finally` per call: no promise hop.
 * @param namedByFirstArgument - methods that run an operation named by their first argument (a
 *   string), such as the integrations' `rawOperation('keyv.get', ...)`.
 * @param namedLazily - hot methods left unwrapped (the wrapper's rest arguments, `apply` and `finally`
 *   cost about a tenth of a near-cache hit): they name their own validation errors with {@link failureOf}.
 */
export function nameOperations(
  prototype: object,
  namedByFirstArgument: readonly string[] = [],
  namedLazily: readonly string[] = [],
): void {
  for (const name of Object.getOwnPropertyNames(prototype)) {
    if (name === 'constructor' || name === 'toJSON' || namedLazily.includes(name)) continue;
    const descriptor = Object.getOwnPropertyDescriptor(prototype, name);
    const method: unknown = descriptor?.value;
    if (typeof method !== 'function') continue;
    const byArgument = namedByFirstArgument.includes(name);
    const named = {
      [name](this: unknown, ...args: unknown[]): unknown {
        const outer = current;
        current = byArgument && typeof args[0] === 'string' ? args[0] : name;
        try {
          return method.apply(this, args);
        } finally {
          current = outer;
        }
      },
    }[name] as (...args: unknown[]) => unknown;
    Object.defineProperty(prototype, name, { ...descriptor, value: named });
  }
}
