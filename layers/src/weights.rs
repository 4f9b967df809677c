//! Weight bytes: reading them in a layer (front to back, every overrun a named error) and,
//! on the host, writing them from f64 parameters.

#[cfg(feature = "std")]
use alloc::vec::Vec;

#[cfg(feature = "std")]
use cwnn_tensor::host::quantize;
use cwnn_tensor::Dyadic;
#[cfg(feature = "std")]
use cwnn_tensor::{kernels::Clamp, DType, QuantParams};

use crate::{LayerError, Result};

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
    /// One output unit with int4 weights: `⌈n/2⌉` bytes of nibbles (weight `2j` in the low
    /// nibble of byte `j`, stored as `w + 8`), an i24 bias (LE) and a multiplier
    /// `M·2^23 / 2^e` as two bytes `M`, `e` (`e` in `1..=62`: multipliers from 2^-39 to about
    /// 2^30, as wide as int8's). Five bytes of tail instead of nine: at 256 inputs a channel is
    /// 133 bytes, 0.52 bytes per weight.
    pub(crate) fn unit_int4(&mut self, n: usize) -> Result<(&'a [u8], i32, Dyadic)> {
        let bytes = self.take(n.div_ceil(2).saturating_add(INT4_TAIL))?;
        let Some((w, t)) = bytes.split_last_chunk::<INT4_TAIL>() else {
            return Err(LayerError::Weights {
                layer: self.layer,
                reason: "weights end early",
            });
        };
        let bias = i32::from_le_bytes([0, t[0], t[1], t[2]]) >> 8;
        let m = Dyadic::new(i32::from(t[3]) << 23, t[4]).map_err(|_| LayerError::Weights {
            layer: self.layer,
            reason: "multiplier shift outside 1..=62",
        })?;
        Ok((w, bias, m))
    }
    /// One output unit in `int16` precision: `n` int16 weights (LE bytes), an i64 bias and a
    /// multiplier.
    pub(crate) fn unit_i16(&mut self, n: usize) -> Result<(&'a [u8], i64, Dyadic)> {
        let w = self.take(n.saturating_mul(2))?;
        let bias = self.i64()?;
        Ok((w, bias, self.dyadic()?))
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

/// How a weighted layer stores its weights.
///
/// `Native`: at the activations' width (int8, or int16 in `int16` precision) with an i32 (i64)
/// bias and a full multiplier per output channel. `Int4`: two weights per byte and a 5-byte
/// channel tail, for int8 activations only; see [`WeightReader::unit_int4`] for the layout.
/// Storage reads cost 3 SDK gas per byte, so int4 nearly halves a weighted layer's gas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum WeightFormat {
    #[default]
    Native,
    Int4,
}

impl WeightFormat {
    /// For `skip_serializing_if`: configs of native layers read as before (same model hash).
    pub fn is_native(&self) -> bool {
        *self == WeightFormat::Native
    }
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::Native => "native",
            WeightFormat::Int4 => "int4",
        }
    }
    /// Bytes of one output channel of `n` weights (int4, or native int8 / int16 when `int16`).
    pub(crate) fn unit_bytes(self, n: usize, int16: bool) -> Option<usize> {
        match (self, int16) {
            (WeightFormat::Int4, false) => n.div_ceil(2).checked_add(INT4_TAIL),
            (WeightFormat::Int4, true) => None,
            (WeightFormat::Native, true) => n.checked_mul(2)?.checked_add(8 + DYADIC_BYTES),
            (WeightFormat::Native, false) => n.checked_add(4 + DYADIC_BYTES),
        }
    }
    /// Int4 weights need int8 activations: a named error otherwise.
    pub(crate) fn check(self, layer: &'static str, int16: bool) -> Result<()> {
        match (self, int16) {
            (WeightFormat::Int4, true) => Err(LayerError::Config {
                layer,
                reason: "int4 weights need int8 activations",
            }),
            _ => Ok(()),
        }
    }
}

/// Bytes after an int4 channel's weights: an i24 bias and an 8-bit multiplier.
pub const INT4_TAIL: usize = 5;

/// The offset of an int4 weight in its nibble (`w = nibble − 8`).
pub(crate) const INT4_OFFSET: i32 = 8;

/// Int4 nibbles (`w + 8`, value `2j` in the low nibble of byte `j`) as int8 values into `out`
/// (as many as it holds; an odd count's last high nibble is padding).
#[inline(always)]
pub(crate) fn unpack_int4(nibbles: &[u8], out: &mut [i8]) {
    for (pair, &b) in out.chunks_mut(2).zip(nibbles) {
        pair[0] = (b & 15) as i8 - INT4_OFFSET as i8;
        if let Some(hi) = pair.get_mut(1) {
            *hi = (b >> 4) as i8 - INT4_OFFSET as i8;
        }
    }
}

/// Int4 values, clamped to `[-7, 7]`, as nibble bytes (`w + 8`, value `2j` in the low nibble
/// of byte `j`; an odd count's last high nibble is 8, a zero).
#[cfg(feature = "std")]
pub(crate) fn pack_int4(values: impl IntoIterator<Item = i32>) -> Vec<u8> {
    let u: Vec<u8> = values
        .into_iter()
        .map(|v| (v.clamp(-7, 7) + INT4_OFFSET) as u8)
        .collect();
    u.chunks(2)
        .map(|p| p[0] | p.get(1).copied().unwrap_or(INT4_OFFSET as u8) << 4)
        .collect()
}

/// Reinterprets bytes as int8 (same size and alignment: no copy, no cost in Wasm).
pub(crate) fn as_i8(b: &[u8]) -> &[i8] {
    // SAFETY: u8 and i8 have identical size, alignment and validity (every bit pattern).
    unsafe { core::slice::from_raw_parts(b.as_ptr().cast::<i8>(), b.len()) }
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
/// `dtype` is the activations' type: int8 weights and an i32 bias, or for int16
/// int16 weights and an i64 bias; `format` Int4 writes [`push_channel_int4`]'s layout.
#[cfg(feature = "std")]
pub(crate) fn push_channel<'a>(
    out: &mut Vec<u8>,
    w: impl IntoIterator<Item = &'a f64> + Clone,
    bias: f64,
    (sx, sy): (f64, f64),
    (dtype, format): (DType, WeightFormat),
) -> Result<()> {
    if format == WeightFormat::Int4 {
        return push_channel_int4(out, w, bias, (sx, sy));
    }
    let (qmax, bias_bits) = match dtype {
        DType::I16 => (32767.0, 62),
        _ => (127.0, 31),
    };
    let max_w = w.clone().into_iter().fold(0f64, |a, v| a.max(v.abs()));
    // The bias is stored at scale s_x·s_w and must fit its integer: a channel of (near-)zero
    // weights with a bias (a dead unit) gets a wider weight scale rather than a refusal.
    let max_w = max_w.max(bias.abs() * qmax / (sx * 2f64.powi(bias_bits - 1)));
    // Likewise a channel of near-zero weights would need a multiplier s_x·s_w/s_y below what a
    // Dyadic holds (2^-31): its weights get the scale of the smallest multiplier instead.
    let max_w = max_w.max(qmax * 2f64.powi(-30) * sy / sx);
    // And the weight scale itself must be a Dyadic (≥ 2^-31): weight decay leaves dead units
    // with denormal weights (4e-43 seen), whose multiplier floor above can still be smaller.
    let max_w = max_w.max(qmax * 2f64.powi(-30));
    let w_qp = QuantParams::symmetric(max_w, dtype)?;
    let sw = w_qp.scale_f64();
    let b = (bias / (sx * sw)).round();
    if b.abs() >= 2f64.powi(bias_bits) {
        return Err(
            cwnn_tensor::TensorError::InvalidQuantization("bias does not fit its integer at scale s_x·s_w").into(),
        );
    }
    if dtype == DType::I16 {
        for &v in w {
            out.extend_from_slice(&(cwnn_tensor::host::quantize(v, &w_qp, dtype) as i16).to_le_bytes());
        }
        out.extend_from_slice(&(b as i64).to_le_bytes());
    } else {
        out.extend(quantize_i8(w, &w_qp));
        out.extend_from_slice(&(b as i32).to_le_bytes());
    }
    push_dyadic(out, cwnn_tensor::host::requant_multiplier(sx, sw, sy)?);
    Ok(())
}

/// [`push_channel`] in the int4 layout ([`WeightReader::unit_int4`]): the weight scale is
/// rounded up to the one whose multiplier `s_x·s_w/s_y` an 8-bit mantissa holds exactly
/// (`M ∈ [128, 255]`, so `s_w` grows by under 1/128), weights in `[-7, 7]`, the bias in i24.
#[cfg(feature = "std")]
fn push_channel_int4<'a>(
    out: &mut Vec<u8>,
    w: impl IntoIterator<Item = &'a f64> + Clone,
    bias: f64,
    (sx, sy): (f64, f64),
) -> Result<()> {
    let invalid = |why| cwnn_tensor::TensorError::InvalidQuantization(why).into();
    let (qmax, bias_max) = (7.0, 2f64.powi(22));
    let max_w = w.clone().into_iter().fold(0f64, |a, v| a.max(v.abs()));
    // As in push_channel: a bias that needs it and a multiplier of at least 2^-30 widen the scale.
    let max_w = max_w
        .max(bias.abs() * qmax / (sx * bias_max))
        .max(qmax * 2f64.powi(-30) * sy / sx);
    let ideal = sx * (max_w / qmax) / sy;
    if !ideal.is_finite() || ideal <= 0.0 {
        return Err(invalid("int4 weight scale is not a positive finite number"));
    }
    // The smallest shift with ideal·2^s ≥ 128; M = ⌈ideal·2^s⌉ ≤ 256 (256 carries to 128, s−1).
    let mut s = 7 - ideal.log2().floor() as i32;
    while ideal * 2f64.powi(s) < 128.0 {
        s += 1;
    }
    while ideal * 2f64.powi(s - 1) >= 128.0 {
        s -= 1;
    }
    let mut m = (ideal * 2f64.powi(s)).ceil();
    if m >= 256.0 {
        (m, s) = (128.0, s - 1);
    }
    // Stored as e = s + 23 (the mantissa is M·2^23), which must be a Dyadic shift.
    if !(1..=62).contains(&(s + 23)) {
        return Err(invalid("int4 multiplier s_x·s_w/s_y outside [2^-32, 2^30)"));
    }
    let sw = m * 2f64.powi(-s) * sy / sx;
    out.extend(pack_int4(
        w.into_iter().map(|&v| (v / sw).round().clamp(-qmax, qmax) as i32),
    ));
    let b = (bias / (sx * sw)).round();
    if b.abs() >= 2f64.powi(23) {
        return Err(invalid("bias does not fit its i24 at scale s_x·s_w"));
    }
    out.extend_from_slice(&(b as i32).to_le_bytes()[..3]);
    out.extend_from_slice(&[m as u8, (s + 23) as u8]);
    Ok(())
}

/// Appends a multiplier in the weight layout.
#[cfg(feature = "std")]
pub(crate) fn push_dyadic(out: &mut Vec<u8>, d: Dyadic) {
    out.extend_from_slice(&d.mantissa.to_le_bytes());
    out.push(d.shift);
}

/// A real-valued clamp in the `dtype` domain of `qp` (no clamp: the full range).
#[cfg(feature = "std")]
pub(crate) fn real_clamp(clamp: Option<(f64, f64)>, qp: &QuantParams, dtype: DType) -> Clamp {
    match clamp {
        None => Clamp {
            lo: dtype.min(),
            hi: dtype.max(),
        },
        Some((lo, hi)) => {
            let q = |v: f64| {
                if v.is_finite() {
                    quantize(v, qp, dtype)
                } else if v > 0.0 {
                    dtype.max()
                } else {
                    dtype.min()
                }
            };
            Clamp { lo: q(lo), hi: q(hi) }
        }
    }
}
