//! The same full-size Dense and Conv2d layers natively and inside Wasm (wasmtime, with fuel
//! metering on), for Wasm hosts other than CosmWasm. Fuel per MAC is checked in
//! vm/tests/fuel.rs; gas on cosmwasm-vm in vm/tests/gas.rs and benches/RESULTS.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use cwnn_vm::artifacts::read_wasm;
use cwnn_vm::kernels::KernelModule;
use cwnn_wasm_kernels::{bench_input, dispatch, op};
use std::hint::black_box;

fn bench_native_vs_wasm(c: &mut Criterion) {
    let mut module = KernelModule::new(&read_wasm("cwnn_wasm_kernels").unwrap()).unwrap();
    let cases = [
        ("dense_256x256", op::BENCH_DENSE, [256, 256, 0, 0], 256 * 256),
        (
            "conv_16x16_3x3_16x16",
            op::BENCH_CONV,
            [16, 16, 3, 16],
            16 * 16 * 9 * 256,
        ),
    ];
    let mut g = c.benchmark_group("native_vs_wasmtime");
    for (name, code, dims, macs) in cases {
        let input = bench_input(code, dims);
        g.throughput(Throughput::Elements(macs));
        g.bench_function(format!("{name}/native"), |b| {
            b.iter(|| dispatch(code, black_box(&input)))
        });
        g.bench_function(format!("{name}/wasmtime"), |b| {
            b.iter(|| module.run(code, black_box(&input)).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench_native_vs_wasm);
criterion_main!(benches);
