//! The ONNX front end and the quantizer on arbitrary bytes: any input is a model or a named
//! error, never a panic. A model that imports is calibrated on a sample made from the same
//! bytes (values of any magnitude), quantized in both precisions and run.
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run onnx_import -- -max_total_time=600`
//! (corpus seeds: models/ and importer/tests/data/).
#![no_main]

use cwnn_importer::quantize::{quantize, Precision};
use libfuzzer_sys::fuzz_target;
use ndarray::{ArrayD, IxDyn};

fuzz_target!(|data: &[u8]| {
    let Ok(model) = cwnn_importer::onnx::import(data, &cwnn_importer::onnx::Options::default()) else {
        return;
    };
    let n: usize = model.input_shape.iter().product();
    if n == 0 || n > 4096 {
        return;
    }
    // Values from the bytes, at a magnitude the last byte picks (10^-32 … 10^31).
    let exp = i32::from(*data.last().unwrap_or(&0) % 64) - 32;
    let values = (0..n).map(|i| (f64::from(data[i % data.len()]) - 128.0) * 10f64.powi(exp));
    let sample = ArrayD::from_shape_vec(IxDyn(&model.input_shape), values.collect()).unwrap();
    for precision in [Precision::Int8, Precision::Int16] {
        if let Ok(q) = quantize(&model, std::slice::from_ref(&sample), "fuzz", precision) {
            if let Ok(x) = q.config.input.quantize(&sample) {
                let _ = q.config.run_all(&q.weights, x);
            }
        }
    }
});
