//! Work units: what [`LayerPlan::work`](crate::LayerPlan::work) counts. One unit is about one
//! int8 multiply-accumulate of Dense (≈ 900 CosmWasm VM gas, about six Wasm operators); the
//! costs below round up, so a layer's work bounds its VM gas / 1,000 beyond a fixed cost per
//! segment. `vm/tests/gas.rs` checks that bound for every layer kind in both precisions on the
//! contract Wasm; the element costs come from its measurements (marginal VM gas per element of
//! pooling, Add/Mul, Embedding and table lookups: up to ~20,000 before a segment's fixed cost).

use crate::act::is_int16;
use crate::TensorSpec;

/// An int8 multiply-accumulate (Dense measured at 869 VM gas, Conv2d at 884).
pub(crate) const MAC: u64 = 1;
/// An int16 multiply-accumulate: measured 3,220 (Dense) and 3,824 (Conv2d) VM gas.
pub(crate) const MAC_I16: u64 = 5;
/// One output's bias, rescale, rounding, clamp and store.
pub(crate) const REQUANT: u64 = 20;
/// One element of a pass that centres, copies, compares, sums or looks up a table.
pub(crate) const ELEM: u64 = 10;
/// One interpolated table lookup (int16 tables, recurrent gates, exp).
pub(crate) const LOOKUP: u64 = 30;

/// The cost of one multiply-accumulate on input `x`.
pub(crate) fn mac(x: &TensorSpec) -> u64 {
    if is_int16(x) {
        MAC_I16
    } else {
        MAC
    }
}

/// An element-wise cost on input `x`: `base`, doubled in int16 (i64 arithmetic).
pub(crate) fn elem(x: &TensorSpec, base: u64) -> u64 {
    if is_int16(x) {
        2 * base
    } else {
        base
    }
}

/// The product of `dims`, saturating.
pub(crate) fn count(dims: &[usize]) -> u64 {
    dims.iter().fold(1u64, |p, &d| p.saturating_mul(d as u64))
}

/// `Σ count·cost`, saturating: a figure past `u64::MAX` exceeds every budget anyway.
pub(crate) fn sum(terms: &[(u64, u64)]) -> u64 {
    terms
        .iter()
        .fold(0u64, |s, &(n, c)| s.saturating_add(n.saturating_mul(c)))
}

/// The elements of `x` (saturating; [`Layer::plan`](crate::Layer::plan) checks them).
pub(crate) fn numel(x: &TensorSpec) -> u64 {
    count(&x.shape)
}
