/**
 * Numbers as Python's `json` module writes them. Python's `json.dumps` spells a float with `repr()`:
 * the shortest digits that read back as the same double (JavaScript's `String(n)` finds the same
 * digits), but laid out differently: an exponent from 1e16 up and below 1e-4 (JavaScript: from 1e21
 * up and below 1e-6), at least two exponent digits (`1e-05`), `.0` on integral floats, and
 * `NaN` / `Infinity` / `-Infinity` for the non-finite values.
 *
 * @module
 */

/** Python's `repr()` writes an exponent at or above this magnitude (decimal point position > 16). */
const PYTHON_EXPONENT_FROM = 1e16;
/** ... and below this one (decimal point position <= -4). */
const PYTHON_FIXED_FROM = 1e-4;

/** `1e-7` -> `1e-07`, `1e+300` stays: Python writes at least two exponent digits. */
function pythonExponent(text: string): string {
  const e = text.indexOf('e');
  return text.length - e > 3 ? text : `${text.slice(0, e + 2)}0${text.slice(e + 2)}`;
}

/**
 * A number as Python's `json.dumps` writes it, for a JavaScript number that is written as a JSON number.
 *
 * JavaScript cannot tell `1` from `1.0`, so the rule is: a safe integer (|n| <= 2^53 - 1) is written
 * as a Python int (`42`), every other number as Python writes the float (`0.1`, `1e-05`, `1e+16`,
 * `9007199254740992.0`, `-0.0`, `NaN`, `Infinity`, `-Infinity`). Integral numbers beyond the safe range
 * are floats on both sides (a JavaScript number is a double), so they read back as numbers, never as
 * `bigint`.
 */
export function pythonNumber(n: number): string {
  if (Number.isSafeInteger(n)) return n === 0 && 1 / n < 0 ? '-0.0' : String(n);
  if (!Number.isFinite(n)) return n > 0 ? 'Infinity' : n < 0 ? '-Infinity' : 'NaN';
  const text = String(n);
  // JavaScript already writes an exponent (|n| >= 1e21 or < 1e-6): Python does too, with 2+ digits.
  if (text.indexOf('e') !== -1) return pythonExponent(text);
  const magnitude = Math.abs(n);
  if (magnitude >= PYTHON_EXPONENT_FROM || magnitude < PYTHON_FIXED_FROM) {
    // toExponential() without an argument keeps the shortest round-trip digits, as String() does.
    return pythonExponent(n.toExponential());
  }
  // Integral but not safe (2^53 <= |n| < 1e16): a Python float keeps its `.0`.
  return Number.isInteger(n) ? `${text}.0` : text;
}
