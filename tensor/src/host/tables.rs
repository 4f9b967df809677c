use super::params::{dequantize, quantize};
use crate::kernels::EXP_ONE;
use crate::{DType, QuantParams};

/// Table for [`kernels::lut`](crate::kernels::lut) computing `f` from int8 `in_qp` to int8
/// `out_qp`: entry `i` is `quantize(f(dequantize(i − 128)))`. Exact on the grid: the only
/// error is the output rounding, ≤ ½ LSB of `out_qp` (plus saturation outside its range).
pub fn lut_i8(f: impl Fn(f64) -> f64, in_qp: &QuantParams, out_qp: &QuantParams) -> [i8; 256] {
    lut_i8_to(|x| quantize(f(x), out_qp, DType::I8) as i8, in_qp)
}

/// Table of any element type: entry `i` is `g(dequantize(i − 128))`.
pub fn lut_i8_to<T: Copy + Default>(g: impl Fn(f64) -> T, in_qp: &QuantParams) -> [T; 256] {
    let mut t = [T::default(); 256];
    for (i, e) in t.iter_mut().enumerate() {
        *e = g(dequantize(i as i32 - 128, in_qp));
    }
    t
}

/// Exp table for [`kernels::softmax_i8`](crate::kernels::softmax_i8) at input scale `s_in`:
/// `table[d] = round(EXP_ONE · exp(−s_in · d))`.
pub fn exp_table(s_in: f64) -> [i32; 256] {
    let mut t = [0i32; 256];
    for (d, e) in t.iter_mut().enumerate() {
        *e = (EXP_ONE as f64 * (-s_in * d as f64).exp()).round() as i32;
    }
    t
}
