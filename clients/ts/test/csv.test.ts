import { describe, expect, it } from 'vitest';
import { parseCsv, parseF64 } from '../src/csv.js';

describe('samples CSV, as cwnn run reads it', () => {
  it('takes a header with a label column, and skips blank lines', () => {
    const s = parseCsv('p0,"label",p1\r\n1,7,2\n\n  \n3.5,2,-4e-1\n');
    expect(s).toEqual({ inputs: [[1, 2], [3.5, -0.4]], labels: [7, 2] });
    expect(parseCsv('a,b\n1,2').labels).toBeNull();
    expect(parseCsv('1,2\n3,4')).toEqual({ inputs: [[1, 2], [3, 4]], labels: null });
    expect(parseCsv('""label"",x\n1,2').labels).toEqual([1]);
  });

  it("parses numbers as Rust's str::parse::<f64>", () => {
    expect([' 1 ', '+2', '.5', '5.', '1e3', '-inf', 'Infinity', 'NaN'].map(parseF64)).toEqual([1, 2, 0.5, 5, 1000, -Infinity, Infinity, NaN]);
    expect(['', '0x10', '1_0', '1,5', 'e5', '\ufeff1'].map(parseF64)).toEqual([null, null, null, null, null, null]);
    expect(parseF64('\u00851\u3000')).toBe(1);
  });

  it('names a field that is not a number, and saturates labels like `as i64`', () => {
    expect(() => parseCsv('1,2\n3,x')).toThrow("row 2: 'x' is not a number");
    expect(parseCsv('label,a\nnan,1\n1e300,2\n-3.7,3').labels).toEqual([0, 2 ** 63, -3]);
  });
});
