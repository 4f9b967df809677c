//! Calibration and quantization: runs the f64 model on sample inputs, takes each tensor's
//! observed range as its int8 (or int16) range, quantizes every layer with the layers
//! crate, and reports per layer how far the quantized model strays from f64.

use cwnn_layers::{GraphError, LayerConfig, LayerError, ModelConfig, QuantSpec, TensorSpec, WeightFormat, INDEX_QUANT};
use cwnn_tensor::host::{dequantize, RangeObserver};
use cwnn_tensor::{DType, QTensor, QuantParams};
use ndarray::ArrayD;
use serde::Serialize;
use thiserror::Error;

use crate::float::{FloatModel, FloatOp, InputKind};

#[derive(Debug, Error)]
pub enum QuantizeError {
    #[error("calibration needs at least one sample input (--calibration FILE)")]
    NoSamples,
    #[error("sample {index} has shape {actual:?}, the model input is {expected:?}")]
    SampleShape {
        index: usize,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error(
        "layer {index} ({node}): {kind} is not available in {precision} precision yet; import with --precision int8"
    )]
    Precision {
        index: usize,
        node: String,
        kind: &'static str,
        precision: &'static str,
    },
    #[error("int4 weights need int8 activations: import with --precision int8")]
    Int4Precision,
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error("model input: {0}")]
    Input(LayerError),
    #[error("{tensor}: calibration range [{lo:e}, {hi:e}] has no representable scale ({error})")]
    Range {
        tensor: String,
        lo: f64,
        hi: f64,
        error: cwnn_tensor::TensorError,
    },
    #[error("layer {index} ({node}): {error}")]
    Layer {
        index: usize,
        node: String,
        error: LayerError,
    },
}

/// How wide weights and activations are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// int8 activations, int8 weights per output channel, i32 sums: the fewest bytes (gas).
    #[default]
    Int8,
    /// int16 activations, int16 weights per output channel, i64 sums: for accuracy-critical
    /// models, at about twice the weight bytes.
    Int16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Int8 => "int8",
            Precision::Int16 => "int16",
        }
    }
    /// The activations' element type.
    pub fn dtype(self) -> DType {
        match self {
            Precision::Int8 => DType::I8,
            Precision::Int16 => DType::I16,
        }
    }
}

/// Quantization of one layer and its error against f64, over the samples given.
#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    pub index: usize,
    /// The ONNX node it came from.
    pub node: String,
    pub kind: &'static str,
    pub shape: Vec<usize>,
    /// How its weights are stored: `int8`, `int16` or `int4` (layers without int4 forms keep
    /// the precision's).
    pub weights: &'static str,
    pub params: usize,
    pub weight_bytes: usize,
    pub macs: u64,
    /// The real range the quantized output covers.
    pub range: [f64; 2],
    /// Share of f64 output values outside that range (they saturate).
    pub saturated: f64,
    /// |int8 model − f64 model| of this layer's output, end to end from the input.
    pub max_abs_error: f64,
    pub mean_abs_error: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct QuantReport {
    pub precision: &'static str,
    /// `native` (the precision's width) or `int4` weights.
    pub weights: &'static str,
    pub samples: usize,
    pub layers: Vec<LayerReport>,
}

/// A quantized model: the contract's config, each layer's weight bytes, and the report.
#[derive(Clone, Debug)]
pub struct QuantModel {
    pub config: ModelConfig,
    pub weights: Vec<Vec<u8>>,
    pub report: QuantReport,
}

fn layer_err(index: usize, node: &str) -> impl FnOnce(LayerError) -> QuantizeError + '_ {
    move |error| QuantizeError::Layer {
        index,
        node: node.to_string(),
        error,
    }
}

/// Parameters covering the range observed at tensor `tensor` (and 0) in `dtype`; a range
/// too wide for any scale is a named error.
fn covering(
    model: &FloatModel,
    obs: &[RangeObserver],
    tensor: usize,
    dtype: DType,
) -> Result<QuantParams, QuantizeError> {
    let (lo, hi) = obs[tensor].range();
    QuantParams::asymmetric(lo, hi, dtype).map_err(|error| QuantizeError::Range {
        tensor: match tensor {
            0 => format!("the input '{}'", model.input_name),
            k => format!("layer {} ({})", k - 1, model.nodes[k - 1].name),
        },
        lo,
        hi,
        error,
    })
}

impl QuantReport {
    /// `int8`, `int16`, or `int8 + int4 weights`: how the model's figures are labelled.
    pub fn label(&self) -> String {
        match self.weights {
            "int4" => format!("{} + int4 weights", self.precision),
            _ => self.precision.to_string(),
        }
    }
}

/// Quantizes `model` at `precision` with ranges from `samples` (each one sample of the input).
pub fn quantize(
    model: &FloatModel,
    samples: &[ArrayD<f64>],
    name: &str,
    precision: Precision,
) -> Result<QuantModel, QuantizeError> {
    quantize_with(model, samples, name, precision, WeightFormat::Native)
}

/// [`quantize`] with weights stored as `weights` (int4 needs int8 precision).
pub fn quantize_with(
    model: &FloatModel,
    samples: &[ArrayD<f64>],
    name: &str,
    precision: Precision,
    weights_format: WeightFormat,
) -> Result<QuantModel, QuantizeError> {
    if weights_format == WeightFormat::Int4 && precision != Precision::Int8 {
        return Err(QuantizeError::Int4Precision);
    }
    check_samples(model, samples)?;
    let (observers, reference) = calibrate(model, samples);
    let dtype = precision.dtype();
    let input = match model.input_kind {
        InputKind::Real => TensorSpec::new(model.input_shape.clone(), dtype, covering(model, &observers, 0, dtype)?),
        InputKind::Indices => TensorSpec::new(model.input_shape.clone(), DType::I32, INDEX_QUANT),
    };
    let mut specs = vec![input.clone()];
    let mut layers = Vec::new();
    let mut weights = Vec::new();
    for (index, node) in model.nodes.iter().enumerate() {
        let err = layer_err(index, &node.name);
        // An embedding's input is indices, so its output type has nothing to follow.
        if precision == Precision::Int16 && matches!(node.op, FloatOp::Embedding(_)) {
            return Err(QuantizeError::Precision {
                index,
                node: node.name.clone(),
                kind: node.op.kind(),
                precision: precision.name(),
            });
        }
        let q = QuantSpec::new(
            specs[node.inputs[0]].quant,
            covering(model, &observers, index + 1, dtype)?,
            dtype,
        )
        .with_second(node.inputs.get(1).map(|&i| specs[i].quant))
        .with_weights(weights_format);
        let (layer, bytes) = node.op.quantize(&q).map_err(err)?;
        let refs: Vec<&TensorSpec> = node.inputs.iter().map(|&i| &specs[i]).collect();
        specs.push(layer.output_spec(&refs).map_err(layer_err(index, &node.name))?);
        let inputs = node.inputs.iter().map(|&i| i as u32).collect();
        layers.push(LayerConfig::reading(layer, inputs, index));
        weights.push(bytes);
    }
    let config = ModelConfig {
        name: name.to_string(),
        input,
        layers,
    };
    let mut report = report(model, &config, &weights, samples, &reference, precision)?;
    report.weights = weights_format.name();
    Ok(QuantModel {
        config,
        weights,
        report,
    })
}

/// At least one sample, each of the model's input shape.
fn check_samples(model: &FloatModel, samples: &[ArrayD<f64>]) -> Result<(), QuantizeError> {
    if samples.is_empty() {
        return Err(QuantizeError::NoSamples);
    }
    for (index, s) in samples.iter().enumerate() {
        if s.shape() != model.input_shape.as_slice() {
            return Err(QuantizeError::SampleShape {
                index,
                expected: model.input_shape.clone(),
                actual: s.shape().to_vec(),
            });
        }
    }
    Ok(())
}

/// Runs the f64 model on every sample: each tensor's observed range, and every tensor of
/// every sample (the reference the report measures against).
fn calibrate(model: &FloatModel, samples: &[ArrayD<f64>]) -> (Vec<RangeObserver>, Vec<Vec<ArrayD<f64>>>) {
    let mut observers = vec![RangeObserver::default(); model.nodes.len() + 1];
    let bar = crate::progress::bar(samples.len() as u64, "calibrating");
    let reference = samples
        .iter()
        .map(|s| {
            let all = model.forward_all(s);
            for (o, t) in observers.iter_mut().zip(&all) {
                o.observe(t.as_slice().unwrap_or(&t.iter().copied().collect::<Vec<_>>()));
            }
            bar.inc(1);
            all
        })
        .collect();
    bar.finish_and_clear();
    (observers, reference)
}

/// The real values of a quantized tensor.
pub fn dequantize_all(t: &QTensor) -> Vec<f64> {
    t.data.to_i32s().into_iter().map(|v| dequantize(v, &t.quant)).collect()
}

fn report(
    model: &FloatModel,
    config: &ModelConfig,
    weights: &[Vec<u8>],
    samples: &[ArrayD<f64>],
    reference: &[Vec<ArrayD<f64>>],
    precision: Precision,
) -> Result<QuantReport, QuantizeError> {
    let n = model.nodes.len();
    let (mut max_err, mut sum_err, mut count) = (vec![0f64; n], vec![0f64; n], vec![0usize; n]);
    let mut outside = vec![0usize; n];
    let mut ranges = vec![[0.0, 0.0]; n];
    for (s, refs) in samples.iter().zip(reference) {
        let q = config.run_all(weights, config.input.quantize(s).map_err(QuantizeError::Input)?)?;
        for i in 0..n {
            let (t, r) = (&q[i + 1], &refs[i + 1]);
            let (lo, hi) = match t.dtype() {
                DType::I32 => (f64::NEG_INFINITY, f64::INFINITY),
                d => (dequantize(d.min(), &t.quant), dequantize(d.max(), &t.quant)),
            };
            ranges[i] = [lo, hi];
            for (a, b) in dequantize_all(t).iter().zip(r.iter()) {
                let e = (a - b).abs();
                max_err[i] = max_err[i].max(e);
                sum_err[i] += e;
                count[i] += 1;
                outside[i] += usize::from(*b < lo || *b > hi);
            }
        }
    }
    let mut layers = Vec::with_capacity(n);
    for (i, ((node, lc), plan)) in model.nodes.iter().zip(&config.layers).zip(config.plans()?).enumerate() {
        layers.push(LayerReport {
            index: i,
            node: node.name.clone(),
            kind: lc.layer.name(),
            shape: plan.output.shape.clone(),
            weights: match lc.layer.weight_format() {
                WeightFormat::Int4 => "int4",
                WeightFormat::Native => precision.name(),
            },
            params: node.op.params(),
            weight_bytes: plan.weight_len,
            macs: plan.macs,
            range: ranges[i],
            saturated: outside[i] as f64 / count[i].max(1) as f64,
            max_abs_error: max_err[i],
            mean_abs_error: sum_err[i] / count[i].max(1) as f64,
        });
    }
    Ok(QuantReport {
        precision: precision.name(),
        weights: WeightFormat::Native.name(),
        samples: samples.len(),
        layers,
    })
}
