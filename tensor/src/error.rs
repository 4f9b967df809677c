use thiserror::Error;

/// Why a kernel or tensor operation refused its input. Kernels never panic on bad shapes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TensorError {
    #[error("{what}: expected {expected} elements, got {actual}")]
    LengthMismatch {
        what: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("invalid shape: {0}")]
    InvalidShape(&'static str),
    #[error("shape too large: element count overflows")]
    ShapeOverflow,
    #[error("invalid multiplier {mantissa}/2^{shift}: shift must be in 1..=62")]
    InvalidMultiplier { mantissa: i32, shift: u8 },
    #[error("multiplier {0} is not representable (needs 2^-31 <= m < 2^30)")]
    UnrepresentableMultiplier(&'static str),
    #[error("invalid quantization parameters: {0}")]
    InvalidQuantization(&'static str),
    #[error("data type mismatch: expected {expected}, got {actual}")]
    DTypeMismatch {
        expected: &'static str,
        actual: &'static str,
    },
    #[error("softmax table is invalid: exp(0) entry must be positive")]
    InvalidExpTable,
}
