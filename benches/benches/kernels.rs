//! Native kernel throughput: matvec, conv2d, requantize (and softmax). Wall time is for
//! comparing builds on one machine; gas, which is what a chain bills, is measured by cwnn-vm.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use cwnn_benches::{accs, pseudo_i8s};
use cwnn_tensor::kernels::{conv2d, matvec, requantize, softmax_i8, Clamp, Conv2dGeometry, EXP_ONE};
use cwnn_tensor::Dyadic;
use std::hint::black_box;

fn bench_matvec(c: &mut Criterion) {
    let mut g = c.benchmark_group("matvec_i8");
    for (rows, cols) in [(64, 64), (256, 256), (10, 784)] {
        let (w, x) = (pseudo_i8s(1, rows * cols), pseudo_i8s(2, cols));
        let mut out = vec![0i32; rows];
        g.throughput(Throughput::Elements((rows * cols) as u64));
        g.bench_function(BenchmarkId::from_parameter(format!("{rows}x{cols}")), |b| {
            b.iter(|| matvec(black_box(&w), black_box(&x), -3, None, &mut out).unwrap())
        });
    }
    g.finish();
}

fn bench_conv(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv2d_i8");
    for (cin, cout, hw, k) in [(16, 16, 16, 3), (1, 8, 28, 5)] {
        let geo = Conv2dGeometry {
            in_channels: cin,
            in_h: hw,
            in_w: hw,
            out_channels: cout,
            kernel_h: k,
            kernel_w: k,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: k / 2,
            pad_left: k / 2,
            pad_bottom: k / 2,
            pad_right: k / 2,
            groups: 1,
        };
        let (x, w) = (
            pseudo_i8s(3, geo.input_len().unwrap()),
            pseudo_i8s(4, geo.weight_len().unwrap()),
        );
        let mut out = vec![0i32; geo.output_len().unwrap()];
        g.throughput(Throughput::Elements((geo.macs_per_channel() * cout) as u64));
        g.bench_function(
            BenchmarkId::from_parameter(format!("{cin}to{cout}_{hw}x{hw}_k{k}")),
            |b| b.iter(|| conv2d(&geo, black_box(&x), 0, black_box(&w), None, 0..cout, &mut out).unwrap()),
        );
    }
    g.finish();
}

fn bench_requantize(c: &mut Criterion) {
    let acc = accs(5, 4096);
    let mut out = vec![0i8; acc.len()];
    let m = Dyadic {
        mantissa: 1_518_500_250,
        shift: 40,
    };
    let mut g = c.benchmark_group("requantize");
    g.throughput(Throughput::Elements(acc.len() as u64));
    g.bench_function("i32_to_i8_4096", |b| {
        b.iter(|| requantize(black_box(&acc), m, -5, Clamp::full::<i8>(), &mut out).unwrap())
    });
    g.finish();
}

fn bench_softmax(c: &mut Criterion) {
    let mut t = [0i32; 256];
    for (d, e) in t.iter_mut().enumerate() {
        *e = EXP_ONE >> (d / 16).min(31);
    }
    let x = pseudo_i8s(6, 1000);
    let mut out = vec![0i8; x.len()];
    c.bench_function("softmax_i8_1000", |b| {
        b.iter(|| softmax_i8(black_box(&x), &t, &mut out).unwrap())
    });
}

criterion_group!(benches, bench_matvec, bench_conv, bench_requantize, bench_softmax);
criterion_main!(benches);
