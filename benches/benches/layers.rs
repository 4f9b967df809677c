//! Native throughput of every layer kind (one representative size each, from
//! `cwnn_benches::layer_cases`). Gas per layer is measured on the VM by cwnn-vm.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use cwnn_benches::layer_cases;
use cwnn_layers::TensorSpec;
use std::hint::black_box;

fn bench_layers(c: &mut Criterion) {
    let mut g = c.benchmark_group("layer");
    for case in layer_cases() {
        let inputs: Vec<_> = case.inputs.iter().collect();
        let specs: Vec<TensorSpec> = case.inputs.iter().map(TensorSpec::of).collect();
        let plan = case.layer.plan(&specs.iter().collect::<Vec<_>>()).unwrap();
        g.throughput(Throughput::Elements(
            plan.macs.max(plan.output.numel().unwrap_or(1) as u64),
        ));
        g.bench_function(case.name, |b| {
            b.iter(|| case.layer.run(black_box(&inputs), black_box(&case.weights)).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench_layers);
criterion_main!(benches);
