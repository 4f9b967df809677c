//! The one quantizer signature (host side): a float layer, the f64 reference, becomes a
//! contract layer and its weight bytes, given how its tensors are quantized.

use alloc::vec::Vec;

use cwnn_tensor::{DType, QuantParams};

use crate::{Layer, LayerError, Result, WeightFormat};

/// How a layer's tensors are quantized: its input's parameters (and its second input's, for
/// Add / Mul of two tensors), its output's, and the activation type: int8, or int16 in `int16`
/// precision. Layers whose output scale is fixed by the layer (Softmax, the recurrent `h`)
/// ignore `output`; Embedding's output covers its table and its input is indices. `weights`
/// is the format of Dense, Conv2d, Embedding and recurrent weights (int4 with int8
/// activations); other layers store theirs natively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantSpec {
    pub input: QuantParams,
    pub second: Option<QuantParams>,
    pub output: QuantParams,
    pub dtype: DType,
    pub weights: WeightFormat,
}

impl QuantSpec {
    /// One input at `input`, the output at `output`, activations of `dtype`.
    pub fn new(input: QuantParams, output: QuantParams, dtype: DType) -> Self {
        QuantSpec {
            input,
            second: None,
            output,
            dtype,
            weights: WeightFormat::Native,
        }
    }
    /// [`QuantSpec::new`] in int8.
    pub fn int8(input: QuantParams, output: QuantParams) -> Self {
        Self::new(input, output, DType::I8)
    }
    /// The same with a second input at `second` (None: the second operand is a constant).
    pub fn with_second(self, second: Option<QuantParams>) -> Self {
        QuantSpec { second, ..self }
    }
    /// The same with weights stored as `weights`.
    pub fn with_weights(self, weights: WeightFormat) -> Self {
        QuantSpec { weights, ..self }
    }
    /// Refuses int16 activations for a layer that has only an int8 form.
    pub fn int8_only(&self, layer: &'static str) -> Result<()> {
        match self.dtype {
            DType::I8 => Ok(()),
            _ => Err(LayerError::Config {
                layer,
                reason: "only int8 is supported",
            }),
        }
    }
}

/// A float layer that quantizes to a contract layer.
pub trait Quantize {
    /// The layer it becomes.
    type Layer: Into<Layer>;
    /// The layer and its weight bytes (layout in the layer's docs) for tensors quantized as `q`.
    fn quantize(&self, q: &QuantSpec) -> Result<(Self::Layer, Vec<u8>)>;
    /// [`Quantize::quantize`] as a [`Layer`].
    fn quantize_layer(&self, q: &QuantSpec) -> Result<(Layer, Vec<u8>)> {
        self.quantize(q).map(|(l, w)| (l.into(), w))
    }
}
