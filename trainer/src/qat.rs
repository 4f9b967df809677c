//! Fake quantization for quantization-aware training, on the tensor crate's int8 scheme
//! (`QuantParams::symmetric` / `asymmetric`, ../shared/QUANTIZATION.md):
//! - weights: symmetric, one scale per output channel (axis 0), q ∈ [−127, 127], or for
//!   `cwnn import --weights int4` q ∈ [−7, 7] ([`Qat::Int4`]);
//! - activations: asymmetric per tensor over [min(lo, 0), max(hi, 0)], q ∈ [−128, 127].
//!
//! The forward pass sees the rounded values, the backward pass the identity (straight-through
//! estimator), so training learns weights that survive `cwnn import`. Activation ranges are
//! the batch's own, as the importer's calibration takes the observed range.

use burn::tensor::{backend::Backend, ElementConversion, Tensor};

/// Fake quantization while training: off, or on for int8 or int4 weights (int8 activations
/// either way).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Qat {
    #[default]
    Off,
    Int8,
    Int4,
}

impl Qat {
    pub fn on(self) -> bool {
        self != Qat::Off
    }
    /// The largest weight level: 127 (int8) or 7 (int4).
    fn weight_max(self) -> f32 {
        match self {
            Qat::Int4 => 7.0,
            _ => 127.0,
        }
    }
}

/// `x` in the forward pass, `q` in value: `x + (q − x).detach()`.
fn straight_through<B: Backend, const D: usize>(x: Tensor<B, D>, q: Tensor<B, D>) -> Tensor<B, D> {
    x.clone() + (q - x).detach()
}

/// Weights `[out, …]` rounded to int8 (int4 for [`Qat::Int4`]) with one symmetric scale per
/// output channel.
pub fn weights<B: Backend, const D: usize>(w: Tensor<B, D>, qat: Qat) -> Tensor<B, D> {
    let qmax = qat.weight_max();
    let dims = w.dims();
    let out = dims[0];
    let flat: Tensor<B, 2> = w.clone().reshape([out as i32, -1]);
    // An all-zero channel keeps scale 1, as `QuantParams::symmetric(0)` does.
    let abs_max = flat.clone().detach().abs().max_dim(1);
    let zero = abs_max.clone().equal_elem(0.0);
    let scale = abs_max.mask_fill(zero, qmax).div_scalar(qmax);
    let q = flat.div(scale.clone()).round().clamp(-qmax, qmax).mul(scale);
    straight_through(w, q.reshape(dims))
}

/// The asymmetric int8 parameters `(scale, zero_point)` covering `[lo, hi]` widened to 0,
/// as `QuantParams::asymmetric` computes them; `None` for an all-zero range.
pub fn activation_params(lo: f32, hi: f32) -> Option<(f32, f32)> {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    if hi <= lo {
        return None;
    }
    let scale = (hi - lo) / 255.0;
    let zero_point = (-128.0 - lo / scale).round().clamp(-128.0, 127.0);
    Some((scale, zero_point))
}

/// Activations rounded to int8 over the tensor's observed range.
pub fn activations<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let lo: f32 = x.clone().detach().min().into_scalar().elem();
    let hi: f32 = x.clone().detach().max().into_scalar().elem();
    let Some((scale, zp)) = activation_params(lo, hi) else {
        return x;
    };
    let q = x
        .clone()
        .div_scalar(scale)
        .round()
        .add_scalar(zp)
        .clamp(-128.0, 127.0)
        .sub_scalar(zp)
        .mul_scalar(scale);
    straight_through(x, q)
}

/// Values on the fixed int8 grid `q / one`, q ∈ [−128, 127]: the LSTM kernel's `h`, which it
/// keeps at scale 1/128 whatever the range.
pub fn fixed<B: Backend, const D: usize>(x: Tensor<B, D>, one: f32) -> Tensor<B, D> {
    let q = x.clone().mul_scalar(one).round().clamp(-128.0, 127.0).div_scalar(one);
    straight_through(x, q)
}
