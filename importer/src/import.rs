//! `cwnn import`: ONNX file → f64 graph → calibrated int8 (or int16) model → package directory with the
//! manifest, wasmd messages and quantization report.

use std::path::{Path, PathBuf};

use cwnn_layers::{TensorSpec, WeightFormat};
use cwnn_model_contract::msg::{sha256, weights_sha256, ExecuteMsg, InstantiateMsg};
use serde::{Deserialize, Serialize};

use crate::error::{io, json, Error, Result};
use crate::float::FloatModel;
use crate::onnx::{self, Options};
use crate::package::Package;
use crate::quantize::{quantize_with, Precision, QuantModel, QuantReport};
use crate::samples;

/// What `cwnn import` is asked to do.
#[derive(Clone, Debug, Default)]
pub struct ImportArgs {
    pub model: PathBuf,
    pub calibration: Vec<PathBuf>,
    pub options: Options,
    /// The model's name on chain (default: the file's stem).
    pub name: Option<String>,
    pub precision: Precision,
    /// Weights (Dense, Conv, Embedding, recurrent) in int4 (with int8 precision), or at the
    /// precision's width.
    pub weights: WeightFormat,
}

/// One side of the model's interface, as the manifest records it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Port {
    /// Its ONNX name.
    pub name: String,
    pub spec: TensorSpec,
    /// Where the ONNX tensor has its batch axis (samples are stacked along it in files).
    pub batch_axis: Option<usize>,
}

/// `manifest.json`: what the package is and where it came from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub source: String,
    pub source_sha256: String,
    pub precision: String,
    /// `int4` when the weights are int4 (absent: the precision's width).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
    pub weights_sha256: String,
    /// The model's identity on chain (config and weights; see the contract's `model_sha256`).
    pub model_sha256: String,
    pub params: usize,
    pub macs: u64,
    pub input: Port,
    pub output: Port,
    pub layers: Vec<ManifestLayer>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ManifestLayer {
    pub index: usize,
    pub kind: String,
    pub node: String,
    pub file: String,
    pub bytes: usize,
    pub sha256: String,
}

/// The f64 model of an ONNX file.
pub fn load(path: &Path, options: &Options) -> Result<FloatModel> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let options = Options {
        model_dir: Some(
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf(),
        ),
        ..options.clone()
    };
    onnx::import(&bytes, &options).map_err(|error| Error::Onnx {
        path: path.to_path_buf(),
        error,
    })
}

/// Reads calibration samples for `model` from each file.
pub fn read_samples(model: &FloatModel, files: &[PathBuf]) -> Result<samples::Samples> {
    let mut all = samples::Samples::default();
    for f in files {
        let s = samples::read(f, &model.input_shape, model.input_batch_axis)?;
        all.inputs.extend(s.inputs);
        if let Some(l) = s.labels {
            all.labels.get_or_insert_with(Vec::new).extend(l);
        }
    }
    Ok(all)
}

/// An imported model: the f64 graph, its int8 form, and the package and manifest to write.
pub struct Imported {
    pub float: FloatModel,
    pub quant: QuantModel,
    pub package: Package,
    pub manifest: Manifest,
}

pub fn import(args: &ImportArgs) -> Result<Imported> {
    let float = load(&args.model, &args.options)?;
    let samples = read_samples(&float, &args.calibration)?;
    // --name, else the graph's name, else the file's.
    let stem = args.model.file_stem().map(|s| s.to_string_lossy().into_owned());
    let name = match (&args.name, float.name.as_str(), stem) {
        (Some(n), _, _) => n.clone(),
        (None, "" | "model", Some(stem)) => stem,
        (None, graph, _) => graph.to_string(),
    };
    let quant = quantize_with(&float, &samples.inputs, &name, args.precision, args.weights)?;
    let source = std::fs::read(&args.model).map_err(io(&args.model))?;
    let instantiate = InstantiateMsg::new(quant.config.clone(), weights_sha256(&quant.weights));
    let model_sha256 = cwnn_model_contract::msg::model_sha256(&instantiate.model, &instantiate.weights_sha256)?;
    let sample = samples
        .inputs
        .first()
        .map(|x| quant.config.input.quantize(x))
        .transpose()?
        .map(|t| t.data.to_i32s());
    let output_spec = quant.config.output_spec()?;
    let manifest = Manifest {
        name: name.clone(),
        source: args
            .model
            .file_name()
            .map_or(String::new(), |f| f.to_string_lossy().into_owned()),
        source_sha256: sha256(&source).to_hex(),
        precision: quant.report.precision.into(),
        weights: (args.weights != WeightFormat::Native).then(|| args.weights.name().into()),
        weights_sha256: instantiate.weights_sha256.to_hex(),
        model_sha256: model_sha256.to_hex(),
        params: float.params(),
        macs: quant.report.layers.iter().map(|l| l.macs).sum(),
        input: Port {
            name: float.input_name.clone(),
            spec: quant.config.input.clone(),
            batch_axis: float.input_batch_axis,
        },
        output: Port {
            name: float.output_name.clone(),
            spec: output_spec,
            batch_axis: float.output_batch_axis,
        },
        layers: quant
            .report
            .layers
            .iter()
            .zip(&quant.weights)
            .map(|(l, w)| ManifestLayer {
                index: l.index,
                kind: l.kind.into(),
                node: l.node.clone(),
                file: format!("weights/layer-{:03}.bin", l.index),
                bytes: w.len(),
                sha256: sha256(w).to_hex(),
            })
            .collect(),
    };
    let package = Package {
        instantiate,
        weights: quant.weights.clone(),
        sample,
    };
    Ok(Imported {
        float,
        quant,
        package,
        manifest,
    })
}

fn write_json(path: &Path, v: &impl Serialize) -> Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(v).map_err(json(path))?).map_err(io(path))
}

/// What `messages/mint.json` says: the model's `MintNft`, which its owner sends after
/// `Finalize` to mint it into a cwnn-collection.
#[derive(Clone, Debug, Default)]
pub struct MintArgs {
    /// The collection's address (a placeholder when not known yet). The token id is the
    /// model's own address.
    pub collection: Option<String>,
    /// Docs / license of the model.
    pub token_uri: Option<String>,
    /// Measured int8 top-1 accuracy, claimed in the token.
    pub accuracy: Option<Accuracy>,
}

/// Where `messages/mint.json` has no collection address yet.
pub const COLLECTION_PLACEHOLDER: &str = "<collection address>";

impl Imported {
    /// The model's `MintNft` message.
    pub fn mint_msg(&self, mint: &MintArgs) -> ExecuteMsg {
        ExecuteMsg::MintNft {
            collection: mint.collection.clone().unwrap_or_else(|| COLLECTION_PLACEHOLDER.into()),
            token_uri: mint.token_uri.clone(),
            claimed_accuracy_bps: mint.accuracy.map(|a| (a.quantized_top1 * 10_000.0).round() as u16),
        }
    }

    /// Writes the package, `manifest.json`, `report.json` and `messages/` (the wasmd messages:
    /// instantiate, each upload in order, finalize, and the mint into a collection).
    pub fn write(&self, dir: &Path, mint: &MintArgs) -> Result<()> {
        self.package.write(dir)?;
        write_json(&dir.join("manifest.json"), &self.manifest)?;
        write_json(&dir.join("report.json"), &self.quant.report)?;
        let msgs = dir.join("messages");
        std::fs::create_dir_all(&msgs).map_err(io(&msgs))?;
        write_json(&msgs.join("instantiate.json"), &self.package.instantiate)?;
        for (k, m) in ExecuteMsg::uploads(&self.package.weights).iter().enumerate() {
            write_json(&msgs.join(format!("upload-{k:03}.json")), m)?;
        }
        write_json(&msgs.join("finalize.json"), &ExecuteMsg::Finalize {})?;
        write_json(&msgs.join("mint.json"), &self.mint_msg(mint))?;
        if let Some(acc) = &mint.accuracy {
            write_json(&dir.join("accuracy.json"), acc)?;
        }
        Ok(())
    }
}

/// Reads `manifest.json` of a package.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    serde_json::from_slice(&bytes).map_err(json(&path))
}

/// The report as a table.
pub fn report_table(r: &QuantReport) -> String {
    let header = [
        "layer", "kind", "shape", "weights", "params", "weight B", "range", "sat %", "max err", "mean err",
    ];
    let rows = r.layers.iter().map(|l| {
        vec![
            l.index.to_string(),
            l.kind.to_string(),
            format!("{:?}", l.shape),
            l.weights.to_string(),
            l.params.to_string(),
            l.weight_bytes.to_string(),
            format!("[{:.3}, {:.3}]", l.range[0], l.range[1]),
            format!("{:.2}", l.saturated * 100.0),
            format!("{:.4}", l.max_abs_error),
            format!("{:.4}", l.mean_abs_error),
        ]
    });
    cwnn_vm::report::text_table(&[5, -16, -14, -7, 9, 9, 22, 6, 10, 10], &header, rows)
}

/// Top-1 accuracy of the f64 and the quantized model on labelled samples.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Accuracy {
    pub samples: usize,
    pub float_top1: f64,
    pub quantized_top1: f64,
}

/// Index of the largest value (the predicted class).
pub fn argmax(v: impl IntoIterator<Item = f64>) -> usize {
    v.into_iter()
        .enumerate()
        .fold(
            (0, f64::NEG_INFINITY),
            |best, (i, x)| if x > best.1 { (i, x) } else { best },
        )
        .0
}

/// Accuracy of both models on `inputs` against `labels`.
pub fn accuracy(
    float: &FloatModel,
    quant: &QuantModel,
    inputs: &[ndarray::ArrayD<f64>],
    labels: &[i64],
) -> Result<Accuracy> {
    let bar = crate::progress::bar(inputs.len() as u64, "evaluating");
    let (mut f, mut q) = (0usize, 0usize);
    for (x, &label) in inputs.iter().zip(labels) {
        f += usize::from(argmax(float.forward(x).iter().copied()) as i64 == label);
        let t = quant.config.run_all(&quant.weights, quant.config.input.quantize(x)?)?;
        let y = crate::quantize::dequantize_all(t.last().expect("output"));
        q += usize::from(argmax(y) as i64 == label);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let n = inputs.len().min(labels.len());
    Ok(Accuracy {
        samples: n,
        float_top1: f as f64 / n.max(1) as f64,
        quantized_top1: q as f64 / n.max(1) as f64,
    })
}
