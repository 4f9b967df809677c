//! The float scan finds floats wherever they hide, and passes integer-only modules.

use cwnn_vm::check::{check_module, check_no_floats};
use cwnn_vm::floats::scan;

fn wasm(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).unwrap()
}

#[test]
fn integer_only_module_passes() {
    let m = wasm(
        r#"(module (memory (export "memory") 1)
        (func (export "f") (param i32 i32) (result i32)
            local.get 0 local.get 1 i32.mul i32.const 3 i32.shr_s))"#,
    );
    assert_eq!(scan(&m).unwrap(), vec![]);
    check_module(&m).unwrap();
}

#[test]
fn each_kind_of_float_is_found() {
    let cases = [
        (
            "arithmetic",
            "(func (result i32) f32.const 1 f32.const 2 f32.add i32.trunc_f32_s)",
            "F32Add",
        ),
        (
            "conversion",
            "(func (param i64) (result i64) local.get 0 f64.convert_i64_s i64.trunc_f64_s)",
            "F64ConvertI64S",
        ),
        (
            "reinterpret",
            "(func (param i32) (result i32) local.get 0 f32.reinterpret_i32 i32.reinterpret_f32)",
            "F32ReinterpretI32",
        ),
        (
            "load",
            "(memory 1) (func (result i64) i32.const 0 f64.load i64.reinterpret_f64)",
            "F64Load",
        ),
        ("signature", "(func (param f64))", "type 0"),
        ("local", "(func (local f32))", "local f32"),
        ("global", "(global f64 (f64.const 0))", "global f64"),
    ];
    for (kind, body, expect) in cases {
        let found = scan(&wasm(&format!("(module {body})"))).unwrap();
        assert!(found.iter().any(|f| f.what.contains(expect)), "{kind}: {found:?}");
        let err = check_no_floats(&wasm(&format!("(module {body})")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("float"), "{kind}: {err}");
    }
}

#[test]
fn post_mvp_features_are_refused() {
    let simd = wasm(r#"(module (func (result i32) v128.const i64x2 0 0 i32x4.extract_lane 0))"#);
    assert!(check_module(&simd).is_err());
    let bulk = wasm(r#"(module (memory 1) (func i32.const 0 i32.const 0 i32.const 0 memory.copy))"#);
    assert!(check_module(&bulk).is_err());
}

#[test]
fn malformed_wasm_is_an_error_not_a_panic() {
    assert!(scan(b"\0asm\x01\0\0\0\x01\xff").is_err());
    assert!(check_module(b"not wasm").is_err());
}
