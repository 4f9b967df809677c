/** Samples CSV as `cwnn run` reads it (importer/src/samples.rs). */
export interface Samples {
  inputs: number[][];
  labels: number[] | null;
}

/** Rust's `str::parse::<f64>` accepts what `Number` does, less hex, binary and empty fields. */
function number(field: string): number | null {
  const f = field.trim();
  if (f === '' || /^[+-]?0[xob]/i.test(f)) return null;
  const v = Number(f);
  return Number.isNaN(v) && !/^[+-]?nan$/i.test(f) ? null : v;
}

export function parseCsv(text: string): Samples {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  let labelCol = -1;
  let hasLabels = false;
  if (lines.length && !lines[0].split(',').every((f) => number(f) !== null)) {
    labelCol = lines[0].split(',').findIndex((f) => f.trim().replace(/^"|"$/g, '') === 'label');
    hasLabels = labelCol >= 0;
    lines.shift();
  }
  const inputs: number[][] = [];
  const labels: number[] = [];
  lines.forEach((line, row) => {
    const values: number[] = [];
    line.split(',').forEach((field, col) => {
      const v = number(field);
      if (v === null) throw new Error(`row ${row + 1}: '${field}' is not a number`);
      if (col === labelCol) labels.push(Math.trunc(v));
      else values.push(v);
    });
    inputs.push(values);
  });
  return { inputs, labels: hasLabels ? labels : null };
}
