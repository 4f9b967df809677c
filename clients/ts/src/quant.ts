/**
 * Input quantization and output dequantization, bit for bit as `cwnn run` and the contract do
 * them (tensor/src/host/params.rs): `q = clamp(round(x / scale) + zero_point)` with ties away
 * from zero (Rust's `f64::round`, not JavaScript's `Math.round`), and `x = scale · (q − zp)`.
 * Every step is one IEEE-754 double operation, so JavaScript and Rust give the same bits.
 */
import type { DType, Dyadic, PredictResponse, QuantParams, TensorSpec } from './contracts/CwnnModel.types.js';

export type { DType, Dyadic, QuantParams, TensorSpec };

const RANGE: Record<DType, [number, number]> = {
  i8: [-128, 127],
  i16: [-32768, 32767],
  i32: [-2147483648, 2147483647],
};

/** Bytes per element of `dtype` (the contract's little-endian layout). */
export function bytesPer(dtype: DType): number {
  return { i8: 1, i16: 2, i32: 4 }[dtype];
}

/** `mantissa / 2^shift`, exact: a power-of-two scaling of a 31-bit integer. */
export function dyadicToNumber(d: Dyadic): number {
  return d.mantissa * 2 ** -d.shift;
}

/** Rust's `f64::round`: halves go away from zero. */
export function roundHalfAway(v: number): number {
  const t = Math.trunc(v);
  return Math.abs(v - t) >= 0.5 ? t + Math.sign(v) : t;
}

/** Rust's saturating `f64 as i32` after a clamp: NaN becomes 0. */
function toInt(v: number, [lo, hi]: [number, number]): number {
  if (Number.isNaN(v)) return 0;
  return Math.min(hi, Math.max(lo, v)) | 0;
}

/** Quantizes real values to `spec`'s integers; i32 inputs (indices) are truncated, not scaled. */
export function quantize(xs: ArrayLike<number>, spec: TensorSpec): number[] {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  if (xs.length !== count) {
    throw new ShapeError(`the input has ${xs.length} values, shape [${spec.shape}] needs ${count}`);
  }
  const range = RANGE[spec.dtype];
  if (spec.dtype === 'i32') return Array.from(xs, (x) => toInt(Math.trunc(x), range));
  const s = dyadicToNumber(spec.quant.scale);
  const zp = spec.quant.zero_point;
  return Array.from(xs, (x) => toInt(roundHalfAway(x / s) + zp, range));
}

/** `scale · (q − zero_point)` for each value. */
export function dequantize(qs: ArrayLike<number>, quant: QuantParams): number[] {
  const s = dyadicToNumber(quant.scale);
  return Array.from(qs, (q) => s * (q - quant.zero_point));
}

/** A `PredictResponse` (query, execute data or a finished job) as real values. */
export function dequantizeResponse(r: PredictResponse): number[] {
  return dequantize(r.data, r.output.quant);
}

/** Integers as the contract's little-endian bytes at `dtype`'s width (what events carry). */
export function toLeBytes(values: ArrayLike<number>, dtype: DType): Uint8Array {
  const w = bytesPer(dtype);
  const out = new Uint8Array(values.length * w);
  const view = new DataView(out.buffer);
  Array.from(values).forEach((v, i) => {
    if (w === 1) view.setInt8(i, v);
    else if (w === 2) view.setInt16(2 * i, v, true);
    else view.setInt32(4 * i, v, true);
  });
  return out;
}

/** The inverse of {@link toLeBytes}. */
export function fromLeBytes(bytes: Uint8Array, dtype: DType): number[] {
  const w = bytesPer(dtype);
  if (bytes.length % w !== 0) throw new ShapeError(`${bytes.length} bytes is not a whole number of ${dtype}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.length / w }, (_, i) =>
    w === 1 ? view.getInt8(i) : w === 2 ? view.getInt16(2 * i, true) : view.getInt32(4 * i, true),
  );
}

/** Index of the largest value (the first on ties), as `cwnn run` scores top-1. */
export function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

/** A value of the wrong size for the model's input or output. */
export class ShapeError extends Error {
  name = 'ShapeError';
}
