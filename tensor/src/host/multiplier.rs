use fixed::types::I1F31;

use crate::{Dyadic, Result, TensorError};

impl Dyadic {
    /// Nearest dyadic to a real `|r| ∈ [2^-32, 2^30)` with a normalised Q0.31 mantissa
    /// (`|mantissa| ∈ [2^30, 2^31)`): relative error ≤ 2^-31. `0` maps to mantissa 0.
    pub fn from_f64(r: f64) -> Result<Dyadic> {
        if !r.is_finite() {
            return Err(TensorError::UnrepresentableMultiplier("not a finite number"));
        }
        if r == 0.0 {
            return Ok(Dyadic { mantissa: 0, shift: 1 });
        }
        if r < 0.0 {
            let d = Dyadic::from_f64(-r)?;
            return Ok(Dyadic {
                mantissa: -d.mantissa,
                ..d
            });
        }
        // r = frac · 2^exp with frac ∈ [0.5, 1).
        let mut exp = r.log2().floor() as i32 + 1;
        let mut frac = r / 2f64.powi(exp);
        if frac >= 1.0 {
            frac /= 2.0;
            exp += 1;
        } else if frac < 0.5 {
            frac *= 2.0;
            exp -= 1;
        }
        // Q0.31 mantissa, rounded to nearest; a round-up to 1.0 renormalises.
        let mantissa = match I1F31::checked_from_num(frac) {
            Some(q) => q.to_bits(),
            None => {
                exp += 1;
                1 << 30
            }
        };
        let shift = 31 - exp;
        if !(1..=62).contains(&shift) {
            return Err(TensorError::UnrepresentableMultiplier(
                "magnitude outside [2^-32, 2^30)",
            ));
        }
        Dyadic::new(mantissa, shift as u8)
    }

    /// The value as f64 (exact: 31-bit mantissa, power-of-two scale).
    pub fn to_f64(self) -> f64 {
        I1F31::from_bits(self.mantissa).to_num::<f64>() * 2f64.powi(31 - self.shift as i32)
    }
}

/// The requantization multiplier `s_in · s_w / s_out` of a layer whose accumulator has scale
/// `s_in · s_w` and whose output has scale `s_out`.
pub fn requant_multiplier(s_in: f64, s_w: f64, s_out: f64) -> Result<Dyadic> {
    if s_out.is_nan() || s_out <= 0.0 {
        return Err(TensorError::InvalidQuantization("output scale must be positive"));
    }
    Dyadic::from_f64(s_in * s_w / s_out)
}
