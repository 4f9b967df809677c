//! LSTM (ONNX LSTM, Keras LSTM): gate order i, o, f, c; optional bias, initial h/c and
//! peepholes; forward or reverse; full sequence or last state. Sigmoid gates, tanh cell.
//!
//! Input int8 `[T, input]`; output int8 `h` at 1/128, or int16 in and out at Q15 in `int16` precision (`[T, hidden]` or `[hidden]`). The cell
//! state is Q15 in i32 (better than int16), clamped to ±512. Units: time steps; state: h and c.
//! Formats, weight layout and **Work**: see `recurrent.rs`. **Bound** (measured over random cells with
//! weights ~ U(±1/√hidden), checked by proptest over 32–40 steps): |h − h_ref| ≤ 3/128 (worst of 2,000 cases: 1.36/128); in `int16` ≤ 3e-4 (worst 8.5e-5).

use crate::recurrent::{recurrent_op, Cell, Recurrent};

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Lstm {
    pub rnn: Recurrent,
    /// ONNX peepholes `P` (order i, o, f) are in the weights.
    pub peepholes: bool,
}

impl Lstm {
    fn cell(&self) -> Cell {
        Cell::Lstm {
            peepholes: self.peepholes,
        }
    }
}

recurrent_op!(Lstm, "lstm");

#[cfg(test)]
mod tests {
    use crate::recurrent::host::CellF64;
    use crate::recurrent_tests::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

        #[test]
        fn bound_over_32_steps((f, x) in case(CellF64::Lstm, 32..41)) {
            let e = max_error(&f, &x);
            prop_assert!(e <= 3.0 / 128.0, "max |h − h_ref| = {}", e);
        }

        /// `int16`: worst of 2,000 cases 8.5e-5.
        #[test]
        fn bound_over_32_steps_high((f, x) in case(CellF64::Lstm, 32..41)) {
            let e = max_error_as(&f, &x, cwnn_tensor::DType::I16);
            prop_assert!(e <= 3e-4, "max |h − h_ref| = {}", e);
        }

        #[test]
        fn segments_match_one_pass((f, x) in case(CellF64::Lstm, 1..12), cuts in proptest::collection::vec(any::<u16>(), 0..5), int16 in any::<bool>()) {
            segments(&f, &x, &cuts, int16);
        }
    }
}
