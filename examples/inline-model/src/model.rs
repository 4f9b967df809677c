//! The cwnn model `digits_mlp` as a Rust module, written by `cwnn bake --rust` (do not edit).
//! `ModelConfig::run_concatenated(WEIGHTS, input)` computes what the model contract does.

/// The model's config, as the model contract serializes it (`cwnn_layers::ModelConfig`).
pub const CONFIG_JSON: &str = r####"{"name":"digits_mlp","input":{"shape":[64],"dtype":"i8","quant":{"scale":{"mantissa":1077952576,"shift":34},"zero_point":-128}},"layers":[{"layer":{"dense":{"in_features":64,"out_features":64,"clamp":{"lo":-128,"hi":127},"output":{"scale":{"mantissa":2073876645,"shift":37},"zero_point":-128}}},"inputs":null},{"layer":{"dense":{"in_features":64,"out_features":10,"clamp":{"lo":-128,"hi":127},"output":{"scale":{"mantissa":1603605975,"shift":34},"zero_point":-11}}},"inputs":null},{"layer":{"softmax":{}},"inputs":null}]}"####;

/// Every layer's weights, concatenated in layer order.
pub static WEIGHTS: &[u8] = include_bytes!("weights.bin");

/// sha256 of [`WEIGHTS`], and the model's identity as the model contract shows it.
pub const WEIGHTS_SHA256: &str = "cd52b200dc30a054a04ff3add5990d0afa13eaddf9178730f93a8689682dc323";
pub const MODEL_SHA256: &str = "13b380ae8bb26d06e5e32e6ddf3e061e9288db51bce551e3a30120c3d7ad714f";
