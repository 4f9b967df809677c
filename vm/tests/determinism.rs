//! Native vs Wasm, bit for bit: every kernel op of `cwnn-wasm-kernels` runs on the same random
//! input natively and in wasmtime (built at the MVP level by scripts/build-wasm.sh), and the
//! outputs must be identical. 1,000 cases per op, 13,000 in all. The layers have the same
//! harness in `layers/tests/determinism.rs`.

use cwnn_vm::kernels::run_built;
use cwnn_wasm_kernels::{dispatch, op};
use proptest::prelude::*;

const CASES_PER_OP: u32 = 1000;

fn wasm_run(op: u32, input: &[u8]) -> Vec<u8> {
    run_built(op, input).unwrap()
}

fn check(op: u32, input: &[u8]) -> Result<(), TestCaseError> {
    let native = dispatch(op, input);
    let wasm = wasm_run(op, input);
    prop_assert_eq!(&native, &wasm, "op {} differs natively and in Wasm", op::name(op));
    Ok(())
}

macro_rules! determinism {
    ($($name:ident => $op:expr),* $(,)?) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: CASES_PER_OP, ..ProptestConfig::default() })]
            $(
                #[test]
                fn $name(input in proptest::collection::vec(any::<u8>(), 0..4096)) {
                    check($op, &input)?;
                }
            )*
        }
    };
}

determinism! {
    matvec_i8 => op::MATVEC_I8,
    matvec_i8_i16 => op::MATVEC_I8_I16,
    matmul_i8 => op::MATMUL_I8,
    conv2d_i8 => op::CONV2D_I8,
    requant_i8 => op::REQUANT_I8,
    requant_i16 => op::REQUANT_I16,
    cast_i32_i8 => op::CAST_I32_I8,
    cast_i32_i16 => op::CAST_I32_I16,
    lut_i8 => op::LUT_I8,
    lut_i32 => op::LUT_I32,
    argmax_i8 => op::ARGMAX_I8,
    softmax_i8 => op::SOFTMAX_I8,
    dyadic_apply => op::DYADIC_APPLY,
}

/// The harness covers every op the module has, and the ops really compute: most random inputs
/// succeed (status 0) rather than all landing on the refusal path.
#[test]
fn every_op_is_covered_and_mostly_succeeds() {
    for op in 0..op::LAYER {
        let mut ok = 0;
        for seed in 0..200u32 {
            let input: Vec<u8> = (0..2048u32)
                .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed * 97) >> 13) as u8)
                .collect();
            let out = dispatch(op, &input);
            assert_eq!(out, wasm_run(op, &input));
            ok += (out[0] == 0) as u32;
        }
        assert!(ok >= 100, "{}: only {ok}/200 inputs were valid", op::name(op));
    }
    assert_eq!(dispatch(op::COUNT, &[]), vec![1], "unknown op is refused");
}
