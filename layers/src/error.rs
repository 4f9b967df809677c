use alloc::vec::Vec;
use cwnn_tensor::TensorError;
use thiserror::Error;

/// Why a layer refused its config, inputs or weights. Layers never panic on bad data.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LayerError {
    #[error(
        "{layer}: this contract build has no {layer} kernel (a baked model's runtime carries only some layer families)"
    )]
    NotInBuild { layer: &'static str },
    #[error("{layer}: invalid config: {reason}")]
    Config { layer: &'static str, reason: &'static str },
    #[error("{layer}: expected input shape {expected:?}, got {actual:?}")]
    InputShape {
        layer: &'static str,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("{layer}: expected {expected} input(s), got {actual}")]
    InputCount {
        layer: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("{layer}: expected {expected} input, got {actual}")]
    InputDType {
        layer: &'static str,
        expected: &'static str,
        actual: &'static str,
    },
    #[error("{layer}: expected {expected} weight bytes, got {actual}")]
    WeightLength {
        layer: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("{layer}: invalid weights: {reason}")]
    Weights { layer: &'static str, reason: &'static str },
    #[error("{layer}: units {start}..{end} outside 0..{units}")]
    Units {
        layer: &'static str,
        start: usize,
        end: usize,
        units: usize,
    },
    #[error("{layer}: output buffer does not match the output spec")]
    OutputSpec { layer: &'static str },
    #[error("{layer}: input values out of range: {reason}")]
    InputValue { layer: &'static str, reason: &'static str },
    /// A size (weight or output bytes, units, state, MACs) would not fit `usize` (`u64` for
    /// counts of work) on this target: 32-bit in a contract.
    #[error("{layer}: sizes overflow")]
    SizeOverflow { layer: &'static str },
    #[error(transparent)]
    Tensor(#[from] TensorError),
}
