//! The ONNX front end on arbitrary bytes: any input is a model or a named error, never a
//! panic. Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run onnx_import -- -max_total_time=600`
//! (corpus seeds: models/ and importer/tests/data/).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cwnn_importer::onnx::import(data, &cwnn_importer::onnx::Options::default());
});
