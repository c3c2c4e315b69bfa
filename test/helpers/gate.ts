/**
 * Factories held at one gate: `slow(value)` is a factory that counts its start, then waits until `open()`
 * is called and resolves with `value`. For tests that need fills running (their locks held) while
 * something else happens.
 */
export function gatedFactories(): {
  /** Let every waiting factory (and every later one) resolve. */
  open: () => void;
  /** How many factories have started. */
  started: () => number;
  slow: <T>(value: T) => () => Promise<T>;
} {
  let open: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  let started = 0;
  return {
    open: () => open(),
    started: () => started,
    slow:
      <T>(value: T) =>
      async () => {
        started++;
        await gate;
        return value;
      },
  };
}
