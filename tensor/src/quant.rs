use crate::Dyadic;

/// Element type of a quantized tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum DType {
    I8,
    I16,
    I32,
}

impl DType {
    pub const fn name(self) -> &'static str {
        match self {
            DType::I8 => "i8",
            DType::I16 => "i16",
            DType::I32 => "i32",
        }
    }
    pub const fn bytes(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 => 2,
            DType::I32 => 4,
        }
    }
    /// Smallest representable value.
    pub const fn min(self) -> i32 {
        match self {
            DType::I8 => i8::MIN as i32,
            DType::I16 => i16::MIN as i32,
            DType::I32 => i32::MIN,
        }
    }
    /// Largest representable value.
    pub const fn max(self) -> i32 {
        match self {
            DType::I8 => i8::MAX as i32,
            DType::I16 => i16::MAX as i32,
            DType::I32 => i32::MAX,
        }
    }
}

/// Affine quantization `real = scale · (q − zero_point)`, so real 0 is exactly `zero_point`.
///
/// The scale is a [`Dyadic`] so the parameters travel through the chain without a float;
/// kernels never read it (they take precomputed multipliers), only the host does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct QuantParams {
    pub scale: Dyadic,
    pub zero_point: i32,
}

/// An integer element type the kernels compute with. Implemented for i8, i16 and i32.
pub trait Quantized: Copy + Default + 'static {
    const DTYPE: DType;
    fn to_i32(self) -> i32;
    /// Clamps to the type's range, then converts (saturating cast).
    fn saturate(v: i64) -> Self;
}

macro_rules! quantized {
    ($t:ty, $d:expr) => {
        impl Quantized for $t {
            const DTYPE: DType = $d;
            #[inline(always)]
            fn to_i32(self) -> i32 {
                self as i32
            }
            #[inline(always)]
            fn saturate(v: i64) -> Self {
                v.clamp(<$t>::MIN as i64, <$t>::MAX as i64) as $t
            }
        }
    };
}
quantized!(i8, DType::I8);
quantized!(i16, DType::I16);
quantized!(i32, DType::I32);
