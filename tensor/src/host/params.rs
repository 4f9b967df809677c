use crate::{DType, Dyadic, QuantParams, Result, TensorError};

/// The smallest scale parameters get (2^-30): a calibration range narrower than this many
/// steps widens to it rather than fail (a [`Dyadic`] holds magnitudes down to 2^-32, and the
/// rescale multipliers built from scales need the headroom). Ranges wider than a [`Dyadic`]
/// holds (a scale of 2^30 or more) stay named errors.
pub const MIN_SCALE: f64 = 1.0 / (1u64 << 30) as f64;

impl QuantParams {
    /// Asymmetric parameters covering `[min, max]` (widened to include 0, so real 0 is exact)
    /// on the full range of `dtype`: how activations are quantized.
    pub fn asymmetric(min: f64, max: f64, dtype: DType) -> Result<QuantParams> {
        if !(min.is_finite() && max.is_finite()) || min > max {
            return Err(TensorError::InvalidQuantization("range must be finite with min ≤ max"));
        }
        let (lo, hi) = (min.min(0.0), max.max(0.0));
        let (qmin, qmax) = (dtype.min() as f64, dtype.max() as f64);
        // A span too narrow for a representable scale gets the smallest one instead.
        let span = if hi > lo {
            (hi - lo).max(MIN_SCALE * (qmax - qmin))
        } else {
            1.0
        };
        let scale = Dyadic::from_f64(span / (qmax - qmin))?;
        let s = scale.to_f64();
        let zero_point = (qmin - lo / s).round().clamp(qmin, qmax) as i32;
        Ok(QuantParams { scale, zero_point })
    }

    /// Symmetric parameters (zero point 0) on `[−(2^(b−1)−1), 2^(b−1)−1]`: how weights are
    /// quantized, so that −128 never occurs and `w · x` stays symmetric.
    pub fn symmetric(abs_max: f64, dtype: DType) -> Result<QuantParams> {
        if !abs_max.is_finite() || abs_max < 0.0 {
            return Err(TensorError::InvalidQuantization("abs max must be finite and ≥ 0"));
        }
        let a = if abs_max > 0.0 {
            abs_max.max(MIN_SCALE * dtype.max() as f64)
        } else {
            1.0
        };
        Ok(QuantParams {
            scale: Dyadic::from_f64(a / dtype.max() as f64)?,
            zero_point: 0,
        })
    }

    /// The scale as f64.
    pub fn scale_f64(&self) -> f64 {
        self.scale.to_f64()
    }
}

/// `clamp(round(x / scale) + zero_point)` in `dtype`'s range (ties away from zero, as
/// `f64::round`). Error ≤ scale/2 inside the range.
pub fn quantize(x: f64, qp: &QuantParams, dtype: DType) -> i32 {
    let q = (x / qp.scale_f64()).round() + qp.zero_point as f64;
    q.clamp(dtype.min() as f64, dtype.max() as f64) as i32
}

/// `scale · (q − zero_point)`.
pub fn dequantize(q: i32, qp: &QuantParams) -> f64 {
    qp.scale_f64() * (q as f64 - qp.zero_point as f64)
}

/// [`quantize`] over a slice, also counting how many values saturated (a calibration warning).
pub fn quantize_slice(xs: &[f64], qp: &QuantParams, dtype: DType) -> (Vec<i32>, usize) {
    let s = qp.scale_f64();
    let mut saturated = 0;
    let q = xs
        .iter()
        .map(|&x| {
            let q = (x / s).round() + qp.zero_point as f64;
            if q < dtype.min() as f64 || q > dtype.max() as f64 {
                saturated += 1;
            }
            q.clamp(dtype.min() as f64, dtype.max() as f64) as i32
        })
        .collect();
    (q, saturated)
}
