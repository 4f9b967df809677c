//! Quantized layers with f64 references and segmented evaluation.
//!
//! Every layer is one file: its config (integers only, so it can sit in a contract), the
//! quantized forward pass, the f64 reference and quantizer (feature `std`, host side), and its
//! tests. Layers are evaluated by *units* (output rows, channels or elements): computing any
//! split of the units gives the same bits as one pass, which is how the contract spreads a big
//! layer over several transactions. Error bounds are in each layer's docs and in
//! `docs/LAYERS.md`; every bound is checked by a property test.
// no_std unless `std` (host helpers) or `schema` (schemars' derive needs the std prelude;
// contracts have std anyway).
#![cfg_attr(not(any(feature = "std", feature = "schema")), no_std)]
#![cfg_attr(not(feature = "std"), deny(clippy::float_arithmetic))]

extern crate alloc;

mod act;
mod error;
mod graph;
mod layer;
mod spec;
mod weights;

mod activation;
mod add;
mod affine;
mod avgpool2d;
mod broadcast;
mod conv2d;
mod dense;
#[cfg(feature = "serde")]
mod dims;
mod embedding;
mod global_avgpool;
mod gru;
mod layernorm;
mod lstm;
mod matmul;
mod maxpool2d;
mod mul;
mod permute;
#[cfg(test)]
mod plan_tests;
#[cfg(feature = "std")]
mod quantize;
mod recurrent;
#[cfg(test)]
mod recurrent_tests;
mod reshape;
mod rnn;
mod softmax;
/// Training a Dense head on chain (issue 19): integer SGD on master weights.
pub mod train;
mod window;
mod work;

#[cfg(any(test, feature = "std"))]
pub mod testing;

pub use activation::{Activation, ActivationKind};
pub use add::Add;
pub use affine::Affine;
pub use avgpool2d::AvgPool2d;
pub use broadcast::Constant;
pub use conv2d::Conv2d;
pub use dense::Dense;
pub use embedding::{Embedding, INDEX_QUANT};
pub use error::LayerError;
pub use global_avgpool::GlobalAvgPool;
pub use graph::{GraphError, LayerConfig, ModelConfig};
pub use gru::Gru;
pub use layer::{Family, Layer, LayerPlan, Op};
pub use layernorm::{LayerNorm, LAYER_NORM_MAX};
pub use lstm::Lstm;
pub use matmul::MatMul;
pub use maxpool2d::MaxPool2d;
pub use mul::Mul;
#[cfg(feature = "std")]
pub use permute::permute_weights;
pub use permute::Permute;
pub use recurrent::{Recurrent, HIDDEN_QUANT, HIDDEN_QUANT_I16};
pub use reshape::Reshape;
pub use rnn::SimpleRnn;
pub use softmax::Softmax;
pub use spec::TensorSpec;
pub use weights::{WeightFormat, DYADIC_BYTES, INT4_TAIL};
pub use window::{same_padding, Window2d};

#[cfg(feature = "std")]
pub use {
    activation::ActivationF64,
    add::AddF64,
    affine::AffineF64,
    conv2d::Conv2dF64,
    dense::DenseF64,
    embedding::EmbeddingF64,
    layernorm::LayerNormF64,
    matmul::MatMulF64,
    mul::MulF64,
    quantize::{QuantSpec, Quantize},
    recurrent::host::{CellF64, RecurrentF64},
    softmax::SoftmaxF64,
};

pub use cwnn_tensor::kernels::Clamp;

/// Result of a layer operation.
pub type Result<T> = core::result::Result<T, LayerError>;
