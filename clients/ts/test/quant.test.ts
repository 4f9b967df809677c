import { describe, expect, it } from 'vitest';
import { argmax, dequantize, fromLeBytes, quantize, roundHalfAway, ShapeError, toLeBytes } from '../src/quant.js';
import type { TensorSpec } from '../src/quant.js';

const spec = (dtype: TensorSpec['dtype'], mantissa: number, shift: number, zero_point: number, n = 4): TensorSpec => ({
  shape: [n],
  dtype,
  quant: { scale: { mantissa, shift }, zero_point },
});

describe('quantize', () => {
  it('rounds halves away from zero, as Rust does (not as Math.round)', () => {
    expect([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49999999999999994, -0.49999999999999994].map(roundHalfAway)).toEqual([
      -3, -2, -1, 1, 2, 3, 0, -0,
    ]);
    // scale 1/4: x / s = 4x; -0.125 → -0.5 → -1, 0.125 → 1 (Math.round would give 0 and 1)
    const s = spec('i8', 1 << 30, 32, 0);
    expect(quantize([-0.125, 0.125, 0.375, -0.375], s)).toEqual([-1, 1, 2, -2]);
  });

  it('adds the zero point and saturates to the type; NaN becomes 0', () => {
    const s = spec('i8', 1 << 30, 30, -128); // scale 1
    expect(quantize([0, 300, -300, NaN], s)).toEqual([-128, 127, -128, 0]);
    expect(quantize([1e9, -1e9, 0.5, 1], spec('i16', 1 << 30, 30, 0))).toEqual([32767, -32768, 1, 1]);
  });

  it('truncates i32 inputs (indices) instead of scaling them', () => {
    expect(quantize([3.9, -3.9, 7, 1e12], spec('i32', 1 << 30, 40, 5))).toEqual([3, -3, 7, 2147483647]);
  });

  it('refuses a wrong number of values by name', () => {
    expect(() => quantize([1, 2, 3], spec('i8', 1 << 30, 30, 0))).toThrow(ShapeError);
  });

  it('dequantizes as scale · (q − zp)', () => {
    expect(dequantize([-128, 0, 127], { scale: { mantissa: 1 << 30, shift: 38 }, zero_point: -128 })).toEqual([
      0,
      128 / 256,
      255 / 256,
    ]);
  });

  it('writes and reads little-endian bytes at the type width', () => {
    for (const dtype of ['i8', 'i16', 'i32'] as const) {
      const v = dtype === 'i8' ? [-128, -1, 0, 127] : dtype === 'i16' ? [-32768, -2, 258, 32767] : [-(2 ** 31), -3, 65536, 2 ** 31 - 1];
      expect(fromLeBytes(toLeBytes(v, dtype), dtype)).toEqual(v);
    }
    expect(Array.from(toLeBytes([258, -2], 'i16'))).toEqual([2, 1, 254, 255]);
    expect(() => fromLeBytes(new Uint8Array(3), 'i16')).toThrow(ShapeError);
  });

  it('argmax takes the first of equal values', () => {
    expect(argmax([0.1, 0.7, 0.7, 0.2])).toBe(1);
  });
});
