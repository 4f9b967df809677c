//! ONNX front end: parses a model with onnx-protobuf, cleans the graph the way real exporters
//! need (constants folded, no-op nodes dropped, batch axis removed, BatchNorm / bias / ReLU
//! fused into the layer before) and maps it to one [`FloatNode`](crate::float::FloatNode)
//! per contract layer. The math is the layers crate's; this module only maps (as in tract).

mod builder;
mod external;
mod fuse;
mod ops;
pub mod proto;

use std::collections::{HashMap, HashSet};

use ndarray::ArrayD;
use onnx_protobuf::{type_proto, GraphProto, Message, ModelProto, NodeProto, ValueInfoProto};
use thiserror::Error;

use crate::float::{FloatModel, InputKind};
use builder::Builder;
pub use ops::{find as find_op, OnnxOp, OPS};

/// IR versions and default-domain opsets this importer reads. Opsets 23 to 25 changed the
/// mapped ops only by adding element types (int4, float8), so they read as 22.
pub const IR_VERSIONS: std::ops::RangeInclusive<i64> = 3..=14;
pub const OPSETS: std::ops::RangeInclusive<i64> = 6..=25;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum ImportError {
    #[error("not a valid ONNX model: {0}")]
    Malformed(String),
    #[error("ONNX IR version {0} is not supported (supported: 3 to 14)")]
    IrVersion(i64),
    #[error("opset {version} of domain '{domain}' is not supported (supported: ai.onnx 6 to 25)")]
    Opset { domain: String, version: i64 },
    #[error("the model has no graph")]
    NoGraph,
    #[error("node {node} ({op}): unsupported: {reason}")]
    Unsupported { node: String, op: String, reason: String },
    #[error("node {node} ({op}): {reason}")]
    BadNode { node: String, op: String, reason: String },
    #[error("node {node} ({op}) reads '{input}', which no initializer, graph input or earlier node defines")]
    DanglingInput { node: String, op: String, input: String },
    #[error("tensor '{name}': {reason}")]
    Tensor { name: String, reason: String },
    #[error("graph input '{name}': {reason}")]
    Input { name: String, reason: String },
    #[error("graph output: {0}")]
    Output(String),
    #[error("--const {name}: {reason}")]
    Const { name: String, reason: String },
}

impl ImportError {
    fn name_of(node: &NodeProto) -> String {
        match (node.name.is_empty(), node.output.first()) {
            (false, _) => node.name.clone(),
            (true, Some(out)) => format!("'{out}'"),
            (true, None) => "(unnamed)".into(),
        }
    }
    /// A node that is well-formed ONNX but has no mapping to contract layers.
    pub fn unsupported(node: &NodeProto, reason: impl Into<String>) -> Self {
        ImportError::Unsupported {
            node: Self::name_of(node),
            op: node.op_type.clone(),
            reason: reason.into(),
        }
    }
    /// A node that breaks the ONNX spec (missing input, bad attribute, wrong shape).
    pub fn node(node: &NodeProto, reason: impl Into<String>) -> Self {
        ImportError::BadNode {
            node: Self::name_of(node),
            op: node.op_type.clone(),
            reason: reason.into(),
        }
    }
}

/// Choices `cwnn import` passes to the front end.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Keep only these graph outputs (exactly one must remain).
    pub outputs: Vec<String>,
    /// Graph inputs bound to constants (ONNX backend tests pass weights as inputs).
    pub consts: HashMap<String, ArrayD<f64>>,
    /// The whole input is one sample: no axis of it is a batch (for graphs that reshape or
    /// flatten across their first axis).
    pub no_batch: bool,
    /// The model file's folder, where external data is read from (set by
    /// `cwnn_importer::import::load`); None refuses external data.
    pub model_dir: Option<std::path::PathBuf>,
}

/// Parses ONNX bytes; any protobuf error is [`ImportError::Malformed`], never a panic.
pub fn parse(bytes: &[u8]) -> Result<ModelProto, ImportError> {
    let model = ModelProto::parse_from_bytes(bytes).map_err(|e| ImportError::Malformed(e.to_string()))?;
    if model.graph.is_none() {
        return Err(ImportError::NoGraph);
    }
    if !IR_VERSIONS.contains(&model.ir_version) {
        return Err(ImportError::IrVersion(model.ir_version));
    }
    Ok(model)
}

/// The default-domain opset the model imports.
fn opset(model: &ModelProto) -> Result<i64, ImportError> {
    let mut opset = None;
    for o in &model.opset_import {
        match o.domain.as_str() {
            "" | "ai.onnx" => opset = Some(o.version),
            // skl2onnx imports ai.onnx.ml for its label branch; its nodes fail by name if used.
            _ => {}
        }
    }
    let version = opset.unwrap_or(*OPSETS.end());
    if !OPSETS.contains(&version) {
        return Err(ImportError::Opset {
            domain: "ai.onnx".into(),
            version,
        });
    }
    Ok(version)
}

/// Imports an ONNX model into the f64 layer graph.
pub fn import(bytes: &[u8], options: &Options) -> Result<FloatModel, ImportError> {
    let model = parse(bytes)?;
    let opset = opset(&model)?;
    let graph = model.graph.as_ref().ok_or(ImportError::NoGraph)?;
    let output = pick_output(graph, &options.outputs)?;
    let mut b = Builder::new(opset);
    let mut initializers = HashMap::new();
    for t in &graph.initializer {
        let t = external::resolve(t, options.model_dir.as_deref())?;
        let value = proto::to_array(&t)?;
        b.set_const(&t.name, value.clone());
        initializers.insert(t.name.clone(), value);
    }
    // Decompositions of LayerNormalization and GELU become those ops (fuse.rs).
    let nodes = fuse::fuse(&graph.node, &initializers, &output);
    // Only the nodes the output depends on (an skl2onnx label branch is never mapped).
    let needed = needed_nodes(&nodes, &output);
    for (name, value) in &options.consts {
        if !graph.input.iter().any(|i| &i.name == name) {
            return Err(ImportError::Const {
                name: name.clone(),
                reason: "no graph input has this name".into(),
            });
        }
        b.set_const(name, value.clone());
    }
    let input = pick_input(graph, &b)?;
    let port = input_port(graph, input, options.no_batch)?;
    b.set_input(&input.name, port.shape.clone(), port.batch_axis, port.batch_size);
    b.consumers = consumers(&nodes, &needed, &output, |_| true);
    // A layer's output read by one node only can absorb it (bias, BatchNorm, ReLU, a scale);
    // Shape and Size read no data.
    b.readers = consumers(&nodes, &needed, &output, |n| {
        !matches!(n.op_type.as_str(), "Shape" | "Size")
    });
    b.softmax_inputs = nodes
        .iter()
        .filter(|n| n.op_type == "Softmax")
        .filter_map(|n| n.input.first().cloned())
        .collect();
    for (i, node) in nodes.iter().enumerate() {
        if needed.contains(&i) {
            ops::map(&mut b, node)?;
        }
    }
    let (nodes, out_batch) = b.finish(&output)?;
    Ok(FloatModel {
        name: graph.name.clone(),
        input_name: input.name.clone(),
        input_kind: port.kind,
        input_shape: port.shape,
        input_batch_axis: port.batch_axis,
        output_name: output,
        output_batch_axis: out_batch,
        nodes,
    })
}

/// The output: the one graph output left after `--output` (`wanted`).
fn pick_output(graph: &GraphProto, wanted: &[String]) -> Result<String, ImportError> {
    for name in wanted {
        if !graph.output.iter().any(|o| &o.name == name) {
            let all: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
            return Err(ImportError::Output(format!(
                "'{name}' is not a graph output (outputs: {})",
                all.join(", ")
            )));
        }
    }
    let outputs: Vec<&str> = graph
        .output
        .iter()
        .map(|o| o.name.as_str())
        .filter(|n| wanted.is_empty() || wanted.iter().any(|o| o == n))
        .collect();
    match outputs[..] {
        [one] => Ok(one.to_string()),
        [] => Err(ImportError::Output("the graph has no outputs".into())),
        _ => Err(ImportError::Output(format!(
            "the contract returns one tensor and the graph has {} outputs ({}); pick one with --output NAME",
            outputs.len(),
            outputs.join(", ")
        ))),
    }
}

/// The input: the one graph input that is not a constant.
fn pick_input<'a>(graph: &'a GraphProto, b: &Builder) -> Result<&'a ValueInfoProto, ImportError> {
    let dynamic: Vec<_> = graph.input.iter().filter(|i| !b.is_const(&i.name)).collect();
    match dynamic[..] {
        [one] => Ok(one),
        [] => Err(ImportError::Output(
            "the graph has no input left that is not a constant".into(),
        )),
        _ => {
            let names: Vec<&str> = dynamic.iter().map(|i| i.name.as_str()).collect();
            Err(ImportError::Input {
                name: names.join(", "),
                reason: "the contract takes one input tensor; bind the others with --const NAME=FILE".into(),
            })
        }
    }
}

/// What the model input is: its kind, one sample's shape and where the batch axis sits.
struct InputPort {
    kind: InputKind,
    shape: Vec<usize>,
    batch_axis: Option<usize>,
    batch_size: usize,
}

fn input_port(graph: &GraphProto, input: &ValueInfoProto, no_batch: bool) -> Result<InputPort, ImportError> {
    use onnx_protobuf::tensor_shape_proto::dimension::Value::DimValue;
    let input_err = |reason: String| ImportError::Input {
        name: input.name.clone(),
        reason,
    };
    let tensor_type = match &input.type_.value {
        Some(type_proto::Value::TensorType(t)) => t,
        _ => return Err(input_err("not a tensor".into())),
    };
    let kind = match proto::dtype::is_integer(tensor_type.elem_type) {
        true => InputKind::Indices,
        false => InputKind::Real,
    };
    let dims: Vec<Option<usize>> = tensor_type
        .shape
        .as_ref()
        .ok_or_else(|| input_err("its shape is not declared".into()))?
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(DimValue(v)) if *v > 0 => Ok(Some(*v as usize)),
            Some(DimValue(v)) => Err(input_err(format!(
                "dimension of size {v}: empty tensors are not supported"
            ))),
            _ => Ok(None),
        })
        .collect::<Result<_, _>>()?;
    let batch_axis = match no_batch {
        true => None,
        false => batch_axis(&graph.node, &input.name, dims.len()),
    };
    let (mut shape, mut batch_size) = (Vec::new(), 1);
    for (axis, d) in dims.iter().enumerate() {
        match (Some(axis) == batch_axis, d) {
            (true, Some(n)) => batch_size = *n,
            (true, None) => {}
            (false, Some(n)) => shape.push(*n),
            (false, None) => {
                return Err(input_err(format!(
                    "dimension {axis} is symbolic; only the batch axis ({}) may be",
                    batch_axis.map_or("none".into(), |b| b.to_string())
                )))
            }
        }
    }
    Ok(InputPort {
        kind,
        shape,
        batch_axis,
        batch_size,
    })
}

/// Indices of the nodes `output` depends on.
fn needed_nodes(nodes: &[NodeProto], output: &str) -> HashSet<usize> {
    let producer: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let mut needed = HashSet::new();
    let mut stack = vec![output];
    while let Some(t) = stack.pop() {
        if let Some(&i) = producer.get(t) {
            if needed.insert(i) {
                stack.extend(nodes[i].input.iter().map(String::as_str).filter(|s| !s.is_empty()));
            }
        }
    }
    needed
}

/// How many needed nodes (and the graph output) read each tensor, counting only nodes that
/// `reads` accepts.
fn consumers(
    nodes: &[NodeProto],
    needed: &HashSet<usize>,
    output: &str,
    reads: impl Fn(&NodeProto) -> bool,
) -> HashMap<String, usize> {
    let mut count: HashMap<String, usize> = HashMap::new();
    for (_, n) in nodes.iter().enumerate().filter(|(i, n)| needed.contains(i) && reads(n)) {
        for input in n.input.iter().filter(|s| !s.is_empty()) {
            *count.entry(input.clone()).or_default() += 1;
        }
    }
    *count.entry(output.to_string()).or_default() += 1;
    count
}

/// Where the batch axis of the input sits: axis 1 for a recurrent layer's `[T, N, F]` (layout
/// 0) or a transposed Gemm operand, none for a rank-1 input, else axis 0.
fn batch_axis(nodes: &[NodeProto], input: &str, rank: usize) -> Option<usize> {
    if rank < 2 {
        return None;
    }
    let first = nodes.iter().find(|n| n.input.iter().any(|i| i == input));
    let attr = |n: &NodeProto, name: &str| n.attribute.iter().find(|a| a.name == name).map_or(0, |a| a.i);
    match first {
        Some(n) if matches!(n.op_type.as_str(), "LSTM" | "GRU" | "RNN") && attr(n, "layout") == 0 => Some(1),
        Some(n) if n.op_type == "Gemm" && n.input.first().is_some_and(|a| a == input) && attr(n, "transA") == 1 => {
            Some(1)
        }
        _ => Some(0),
    }
}
