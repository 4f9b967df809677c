use crate::{Result, TensorError};

/// A dyadic rational `mantissa / 2^shift`: how cwnn writes every real-valued constant the
/// chain needs (requantization multipliers, scales) without a float.
///
/// The host builds them normalised, `|mantissa| ∈ [2^30, 2^31)` (a Q0.31 number of magnitude
/// in [0.5, 1)), which keeps 31 significant bits. Any i32 mantissa is accepted and exact;
/// negative ones serve affine layers with negative scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Dyadic {
    pub mantissa: i32,
    /// Right shift applied after the multiply, `1..=62`.
    pub shift: u8,
}

impl Dyadic {
    /// The multiplier 1 (`2^30 / 2^30`).
    pub const ONE: Dyadic = Dyadic {
        mantissa: 1 << 30,
        shift: 30,
    };

    pub const fn new(mantissa: i32, shift: u8) -> Result<Self> {
        if shift < 1 || shift > 62 {
            return Err(TensorError::InvalidMultiplier { mantissa, shift });
        }
        Ok(Dyadic { mantissa, shift })
    }

    /// Checks a value that came from outside (deserialised config).
    pub const fn validate(self) -> Result<Self> {
        Self::new(self.mantissa, self.shift)
    }

    /// `round_half_up(x · mantissa / 2^shift)`, exact in i64.
    ///
    /// The rounding rule of the whole crate: add half of the divisor, then shift right
    /// arithmetically (floor). Ties round towards +∞. |x · mantissa| ≤ 2^62 and the rounding
    /// term is ≤ 2^61, so the i64 sum never overflows. Branch-free: one multiply, one add,
    /// one shift. The shift is masked to 63 so even an unvalidated value cannot trap.
    #[inline(always)]
    pub fn apply(self, x: i32) -> i64 {
        let s = (self.shift as u32) & 63;
        let round = (1i64 << s) >> 1;
        (x as i64).wrapping_mul(self.mantissa as i64).wrapping_add(round) >> s
    }

    /// [`Dyadic::apply`] for the i64 accumulators of `int16` precision (int16 × int16 sums),
    /// exact in i128 and saturated to i64. Equal to `apply` on every i32.
    #[inline(always)]
    pub fn apply_i64(self, x: i64) -> i64 {
        let s = (self.shift as u32) & 63;
        let round = (1i128 << s) >> 1;
        let r = ((x as i128) * (self.mantissa as i128) + round) >> s;
        r.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }
}
