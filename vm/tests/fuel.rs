//! The kernels as a plain Wasm module in wasmtime, for Wasm hosts other than CosmWasm: a
//! full-size Dense and Conv2d layer give the same bytes as natively, and their fuel (wasmtime
//! counts about one unit per Wasm operator) per MAC is bounded.

use cwnn_vm::artifacts::read_wasm;
use cwnn_vm::kernels::KernelModule;
use cwnn_wasm_kernels::{bench_input, dispatch, op};

fn fuel_per_mac(op: u32, input: &[u8], macs: u64) -> f64 {
    let mut module = KernelModule::new(&read_wasm("cwnn_wasm_kernels").unwrap()).unwrap();
    let (out, fuel) = module.run(op, input).unwrap();
    assert_eq!(out[0], 0, "{} refused its input", op::name(op));
    assert_eq!(
        out,
        dispatch(op, input),
        "{} differs natively and in Wasm",
        op::name(op)
    );
    let per_mac = fuel as f64 / macs as f64;
    eprintln!("{}: {fuel} fuel, {per_mac:.2} per MAC", op::name(op));
    per_mac
}

#[test]
fn dense_256x256_fuel_per_mac() {
    let input = bench_input(op::BENCH_DENSE, [256, 256, 0, 0]);
    assert!(fuel_per_mac(op::BENCH_DENSE, &input, 256 * 256) <= 7.0);
}

#[test]
fn conv_16x16_3x3_fuel_per_mac() {
    let input = bench_input(op::BENCH_CONV, [16, 16, 3, 16]);
    assert!(fuel_per_mac(op::BENCH_CONV, &input, 16 * 16 * 9 * 16 * 16) <= 7.0);
}
