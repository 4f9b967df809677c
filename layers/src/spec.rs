use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use cwnn_tensor::{numel, DType, Dyadic, QTensor, QuantParams, TensorData};

use crate::{LayerError, Result};

/// Shape, element type and quantization of a tensor: what a layer needs to know of its
/// input before any data arrives. Shapes have no batch axis (the chain runs one sample).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TensorSpec {
    #[cfg_attr(feature = "serde", serde(with = "crate::dims::list"))]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<u32>"))]
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub quant: QuantParams,
}

impl TensorSpec {
    pub fn new(shape: Vec<usize>, dtype: DType, quant: QuantParams) -> Self {
        TensorSpec { shape, dtype, quant }
    }
    /// The spec a tensor has.
    pub fn of(t: &QTensor) -> Self {
        TensorSpec {
            shape: t.shape.clone(),
            dtype: t.dtype(),
            quant: t.quant,
        }
    }
    /// Element count (`None` on overflow).
    pub fn numel(&self) -> Option<usize> {
        numel(&self.shape).ok()
    }
    /// Bytes of data at this spec.
    pub fn bytes(&self) -> Option<usize> {
        self.numel()?.checked_mul(self.dtype.bytes())
    }
    /// A zero-filled tensor of this spec (an output buffer).
    pub fn zeros(&self) -> Result<QTensor> {
        let n = self.numel().ok_or(cwnn_tensor::TensorError::ShapeOverflow)?;
        let data = match self.dtype {
            DType::I8 => TensorData::I8(vec![0; n]),
            DType::I16 => TensorData::I16(vec![0; n]),
            DType::I32 => TensorData::I32(vec![0; n]),
        };
        Ok(QTensor::new(self.shape.clone(), data, self.quant)?)
    }
}

/// The int8 data of a tensor, or a named error.
pub(crate) fn i8_data<'a>(layer: &'static str, t: &'a QTensor) -> Result<&'a [i8]> {
    match &t.data {
        TensorData::I8(v) => Ok(v),
        other => Err(LayerError::InputDType {
            layer,
            expected: "i8",
            actual: other.dtype().name(),
        }),
    }
}

pub(crate) fn i8_data_mut<'a>(layer: &'static str, t: &'a mut QTensor) -> Result<&'a mut [i8]> {
    match &mut t.data {
        TensorData::I8(v) => Ok(v),
        _ => Err(LayerError::OutputSpec { layer }),
    }
}

/// Requires an int8 input spec.
pub(crate) fn expect_i8(layer: &'static str, s: &TensorSpec) -> Result<()> {
    if s.dtype != DType::I8 {
        return Err(LayerError::InputDType {
            layer,
            expected: "i8",
            actual: s.dtype.name(),
        });
    }
    Ok(())
}

/// Requires a CHW input, returning `(c, h, w)`.
pub(crate) fn chw(layer: &'static str, s: &TensorSpec) -> Result<(usize, usize, usize)> {
    match s.shape[..] {
        [c, h, w] if c > 0 && h > 0 && w > 0 => Ok((c, h, w)),
        _ => Err(LayerError::InputShape {
            layer,
            expected: vec![0, 0, 0],
            actual: s.shape.clone(),
        }),
    }
}

/// Reads a layer's weight bytes front to back; running past the end is a named error.
pub(crate) struct WeightReader<'a> {
    layer: &'static str,
    bytes: &'a [u8],
}

impl<'a> WeightReader<'a> {
    pub(crate) fn new(layer: &'static str, bytes: &'a [u8]) -> Self {
        WeightReader { layer, bytes }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.bytes.len() {
            return Err(LayerError::Weights {
                layer: self.layer,
                reason: "weights end early",
            });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    pub(crate) fn i8s(&mut self, n: usize) -> Result<&'a [i8]> {
        Ok(as_i8(self.take(n)?))
    }
    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn i32(&mut self) -> Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn i64(&mut self) -> Result<i64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }
    /// One output unit of Dense / Conv: `n` int8 weights, an i32 bias and a multiplier, read
    /// with two length tests rather than one per field (each test is a metered Wasm branch).
    pub(crate) fn unit(&mut self, n: usize) -> Result<(&'a [i8], i32, Dyadic)> {
        let bytes = self.take(n.saturating_add(4 + DYADIC_BYTES))?;
        let Some((w, t)) = bytes.split_last_chunk::<{ 4 + DYADIC_BYTES }>() else {
            return Err(LayerError::Weights {
                layer: self.layer,
                reason: "weights end early",
            });
        };
        let bias = i32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        let m = Dyadic::new(i32::from_le_bytes([t[4], t[5], t[6], t[7]]), t[8]).map_err(|_| LayerError::Weights {
            layer: self.layer,
            reason: "multiplier shift outside 1..=62",
        })?;
        Ok((as_i8(w), bias, m))
    }
    /// A requantization multiplier (`mantissa: i32 LE`, `shift: u8`), validated.
    pub(crate) fn dyadic(&mut self) -> Result<Dyadic> {
        let (mantissa, shift) = (self.i32()?, self.u8()?);
        Dyadic::new(mantissa, shift).map_err(|_| LayerError::Weights {
            layer: self.layer,
            reason: "multiplier shift outside 1..=62",
        })
    }
}

/// Bytes of a [`Dyadic`] in weights.
pub const DYADIC_BYTES: usize = 5;

/// Reinterprets bytes as int8 (same size and alignment: no copy, no cost in Wasm).
pub(crate) fn as_i8(b: &[u8]) -> &[i8] {
    // SAFETY: u8 and i8 have identical size, alignment and validity (every bit pattern).
    unsafe { core::slice::from_raw_parts(b.as_ptr().cast::<i8>(), b.len()) }
}

/// `units` as a checked range of `0..total`.
pub(crate) fn check_units(layer: &'static str, units: &Range<usize>, total: usize) -> Result<()> {
    if units.start > units.end || units.end > total {
        return Err(LayerError::Units {
            layer,
            start: units.start,
            end: units.end,
            units: total,
        });
    }
    Ok(())
}

/// Int8 parameters covering `values` (and 0).
#[cfg(feature = "std")]
pub(crate) fn covering<'a>(values: impl IntoIterator<Item = &'a f64>) -> Result<QuantParams> {
    let (lo, hi) = values.into_iter().fold((0f64, 0f64), |(l, h), &v| (l.min(v), h.max(v)));
    Ok(QuantParams::asymmetric(lo, hi, DType::I8)?)
}

/// `values` quantized to int8 bytes at `qp`.
#[cfg(feature = "std")]
pub(crate) fn quantize_i8<'a>(values: impl IntoIterator<Item = &'a f64>, qp: &QuantParams) -> Vec<u8> {
    values
        .into_iter()
        .map(|&v| cwnn_tensor::host::quantize(v, qp, DType::I8) as i8 as u8)
        .collect()
}

/// Appends one output channel of a Dense or Conv layer in the weight layout: its weights
/// quantized symmetrically, the bias at scale `s_x·s_w`, the multiplier `s_x·s_w/s_y`.
#[cfg(feature = "std")]
pub(crate) fn push_channel<'a>(
    out: &mut Vec<u8>,
    w: impl IntoIterator<Item = &'a f64> + Clone,
    bias: f64,
    sx: f64,
    sy: f64,
) -> Result<()> {
    let max_w = w.clone().into_iter().fold(0f64, |a, v| a.max(v.abs()));
    // The bias is stored at scale s_x·s_w and must fit i32: a channel of (near-)zero weights
    // with a bias (a dead unit) gets a wider weight scale rather than a refusal.
    let max_w = max_w.max(bias.abs() * 127.0 / (sx * 2f64.powi(30)));
    // Likewise a channel of near-zero weights would need a multiplier s_x·s_w/s_y below what a
    // Dyadic holds (2^-31): its weights get the scale of the smallest multiplier instead.
    let max_w = max_w.max(127.0 * 2f64.powi(-30) * sy / sx);
    // And the weight scale itself must be a Dyadic (≥ 2^-31): weight decay leaves dead units
    // with denormal weights (4e-43 seen), whose multiplier floor above can still be smaller.
    let max_w = max_w.max(127.0 * 2f64.powi(-30));
    let w_qp = QuantParams::symmetric(max_w, DType::I8)?;
    let sw = w_qp.scale_f64();
    out.extend(quantize_i8(w, &w_qp));
    let b = (bias / (sx * sw)).round();
    if b.abs() >= 2f64.powi(31) {
        return Err(cwnn_tensor::TensorError::InvalidQuantization("bias does not fit i32 at scale s_x·s_w").into());
    }
    out.extend_from_slice(&(b as i32).to_le_bytes());
    push_dyadic(out, cwnn_tensor::host::requant_multiplier(sx, sw, sy)?);
    Ok(())
}

/// Appends a multiplier in the weight layout.
#[cfg(feature = "std")]
pub(crate) fn push_dyadic(out: &mut Vec<u8>, d: Dyadic) {
    out.extend_from_slice(&d.mantissa.to_le_bytes());
    out.push(d.shift);
}
