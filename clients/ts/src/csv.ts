/**
 * Samples CSV as `cwnn run` reads it (importer/src/samples.rs): blank lines skipped; a first
 * row that is not all numbers is a header, whose `label` column (if any) gives the labels; every
 * other field is a number as Rust's `str::parse::<f64>` reads it, after Rust's `trim`.
 */
export interface Samples {
  inputs: number[][];
  labels: number[] | null;
}

// Rust's `char::is_whitespace` (Unicode White_Space); JavaScript's `\s` differs (U+FEFF, U+0085).
const WS = '[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const TRIM = new RegExp(`^${WS}+|${WS}+$`, 'g');
const rustTrim = (s: string) => s.replace(TRIM, '');

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** `str::parse::<f64>`: decimals, `inf` / `infinity` / `nan` in any case; null if not a number. */
export function parseF64(field: string): number | null {
  const f = rustTrim(field);
  const sign = f.startsWith('-') ? -1 : 1;
  if (/^[+-]?(inf|infinity)$/i.test(f)) return sign * Infinity;
  if (/^[+-]?nan$/i.test(f)) return NaN;
  return DECIMAL.test(f) ? Number(f) : null;
}

/** `f64 as i64`: truncation, saturating, NaN to 0 (as a JavaScript number). */
const asI64 = (v: number) => (Number.isNaN(v) ? 0 : Math.max(-(2 ** 63), Math.min(2 ** 63, Math.trunc(v))));

export function parseCsv(text: string): Samples {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => rustTrim(l) !== '');
  let labelCol = -1;
  let hasHeader = false;
  if (lines.length && !lines[0].split(',').every((f) => parseF64(f) !== null)) {
    labelCol = lines[0].split(',').findIndex((f) => rustTrim(f).replace(/^"+|"+$/g, '') === 'label');
    hasHeader = true;
    lines.shift();
  }
  const inputs: number[][] = [];
  const labels: number[] = [];
  lines.forEach((line, row) => {
    const values: number[] = [];
    line.split(',').forEach((field, col) => {
      const v = parseF64(field);
      if (v === null) throw new Error(`row ${row + 1}: '${field}' is not a number`);
      if (col === labelCol) labels.push(asI64(v));
      else values.push(v);
    });
    inputs.push(values);
  });
  return { inputs, labels: hasHeader && labelCol >= 0 ? labels : null };
}
