//! One mapping per ONNX op, grouped by kind: what each op becomes in contract layers.

mod activation;
mod elementwise;
mod linear;
mod pool;
mod recurrent;
mod shape;

use onnx_protobuf::NodeProto;

use super::builder::{Builder, Value};
use super::ImportError;

/// Ops the importer maps (the rest are named errors).
pub const SUPPORTED: &[&str] = &[
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "Div",
    "Dropout",
    "Flatten",
    "Gather",
    "Gemm",
    "GlobalAveragePool",
    "GRU",
    "Identity",
    "LeakyRelu",
    "LSTM",
    "MatMul",
    "MaxPool",
    "Mul",
    "Relu",
    "Reshape",
    "RNN",
    "Shape",
    "Sigmoid",
    "Slice",
    "Softmax",
    "Squeeze",
    "Sub",
    "Tanh",
    "Transpose",
    "Unsqueeze",
];

/// Maps one node, recording the values of its outputs.
pub fn map(b: &mut Builder, node: &NodeProto) -> Result<(), ImportError> {
    if !(node.domain.is_empty() || node.domain == "ai.onnx") {
        return Err(ImportError::unsupported(
            node,
            format!("domain '{}' is not supported (only ai.onnx)", node.domain),
        ));
    }
    let outputs: Vec<Value> = match node.op_type.as_str() {
        "Gemm" => vec![linear::gemm(b, node)?],
        "MatMul" => vec![linear::matmul(b, node)?],
        "Conv" => vec![linear::conv(b, node)?],
        "BatchNormalization" => vec![linear::batch_norm(b, node)?],
        "Add" | "Sub" | "Mul" | "Div" => vec![elementwise::binary(b, node)?],
        "Relu" | "LeakyRelu" | "Sigmoid" | "Tanh" | "Clip" => vec![activation::activation(b, node)?],
        "Softmax" => vec![activation::softmax(b, node)?],
        "MaxPool" | "AveragePool" => vec![pool::pool(b, node)?],
        "GlobalAveragePool" => vec![pool::global_average(b, node)?],
        "LSTM" | "GRU" | "RNN" => {
            let (i, value) = recurrent::recurrent(b, node)?;
            b.set(&node.output[i], value);
            return Ok(());
        }
        "Gather" => vec![shape::gather(b, node)?],
        "Identity" | "Dropout" => shape::pass_through(b, node)?,
        "Cast" => vec![shape::cast(b, node)?],
        "Constant" => vec![shape::constant(node)?],
        "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" | "Transpose" => vec![shape::reshape(b, node)?],
        "Shape" | "Concat" | "Slice" | "ConstantOfShape" => vec![shape::fold(b, node)?],
        other => {
            return Err(ImportError::unsupported(
                node,
                format!("op {other} has no cwnn layer (supported: {})", SUPPORTED.join(", ")),
            ))
        }
    };
    for (name, value) in node.output.iter().zip(outputs) {
        b.set(name, value);
    }
    Ok(())
}

/// A normalised axis of a rank-`rank` tensor.
pub(crate) fn axis(node: &NodeProto, a: i64, rank: usize) -> Result<usize, ImportError> {
    let r = rank as i64;
    if a < -r || a >= r {
        return Err(ImportError::node(
            node,
            format!("axis {a} is outside a rank-{rank} tensor"),
        ));
    }
    Ok(if a < 0 { (a + r) as usize } else { a as usize })
}

/// Refuses a folded constant larger than any real model needs (2^28 values), before it is
/// allocated: a hostile file must not exhaust memory.
pub(crate) fn check_size(node: &NodeProto, shape: &[usize]) -> Result<(), ImportError> {
    match shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) {
        Some(n) if n <= 1 << 28 => Ok(()),
        _ => Err(ImportError::node(
            node,
            format!("constant of shape {shape:?} is too large"),
        )),
    }
}

/// A shape from an int tensor's values, checked to hold no negatives.
pub(crate) fn dims(node: &NodeProto, v: &[i64]) -> Result<Vec<usize>, ImportError> {
    v.iter()
        .map(|&d| usize::try_from(d).map_err(|_| ImportError::node(node, format!("dimension {d} is negative"))))
        .collect()
}
