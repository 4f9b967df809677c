//! SimpleRNN (ONNX RNN, Keras SimpleRNN): `h = tanh(W·x + R·h + b)`; optional bias and initial
//! h; forward or reverse; full sequence or last state.
//!
//! Input int8 `[T, input]`; output int8 `h` at 1/128, or int16 in and out at Q15 in `int16` precision (`[T, hidden]` or `[hidden]`); the state h
//! is carried in Q15 (i32) between steps. Units: time steps; state: h. Formats, weight
//! layout and **Work**: see `recurrent.rs`. **Bound** (measured over random cells with weights
//! ~ U(±1/√hidden), checked by proptest over 16–32 steps): |h − h_ref| ≤ 5/128 (worst of 2,000 cases: 3.46/128); in `int16` ≤ 3e-4 (worst 1.05e-4).

use crate::recurrent::{recurrent_op, Cell, Recurrent};

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SimpleRnn {
    pub rnn: Recurrent,
}

impl SimpleRnn {
    fn cell(&self) -> Cell {
        Cell::Rnn
    }
}

recurrent_op!(SimpleRnn, "simple_rnn");

#[cfg(test)]
mod tests {
    use crate::recurrent::host::CellF64;
    use crate::recurrent_tests::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

        #[test]
        fn bound_over_steps((f, x) in case(CellF64::Rnn, 16..33)) {
            let e = max_error(&f, &x);
            prop_assert!(e <= 5.0 / 128.0, "max |h − h_ref| = {}", e);
        }

        /// `int16`: worst of 2,000 cases 1.05e-4.
        #[test]
        fn bound_over_steps_high((f, x) in case(CellF64::Rnn, 16..33)) {
            let e = max_error_as(&f, &x, cwnn_tensor::DType::I16);
            prop_assert!(e <= 3e-4, "max |h − h_ref| = {}", e);
        }

        #[test]
        fn segments_match_one_pass((f, x) in case(CellF64::Rnn, 1..12), cuts in proptest::collection::vec(any::<u16>(), 0..5), int16 in any::<bool>()) {
            segments(&f, &x, &cuts, int16);
        }
    }
}
