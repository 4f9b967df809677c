//! One mapping per ONNX op, grouped by kind: what each op becomes in contract layers.

mod activation;
mod constant;
mod elementwise;
mod linear;
mod norm;
mod pool;
mod recurrent;
mod shape;

use onnx_protobuf::NodeProto;

pub(crate) use shape::constant_value;

use super::builder::{Builder, Value};
use super::ImportError;

/// How an op's mapping gives the values of the node's outputs.
#[derive(Clone, Copy)]
enum Map {
    /// The first output's.
    One(fn(&mut Builder, &NodeProto) -> Result<Value, ImportError>),
    /// Every output's, in order.
    All(fn(&mut Builder, &NodeProto) -> Result<Vec<Value>, ImportError>),
    /// Output number `i`'s, as `(i, value)`.
    At(fn(&mut Builder, &NodeProto) -> Result<(usize, Value), ImportError>),
}

/// One ONNX op the importer maps.
pub struct OnnxOp {
    pub name: &'static str,
    /// What it becomes in a model (for docs/ONNX_SUPPORT.md).
    pub becomes: &'static str,
    map: Map,
}

const fn op(name: &'static str, becomes: &'static str, map: Map) -> OnnxOp {
    OnnxOp { name, becomes, map }
}

/// Every op the importer maps, by name (ASCII order): the one registry the dispatch, the
/// "supported" list of errors and docs/ONNX_SUPPORT.md read. Any other op is a named error.
pub const OPS: &[OnnxOp] = &[
    op(
        "Add",
        "add; a constant after Dense/Conv folds into its bias; a mask (0 and ≤ −10⁴) before Softmax becomes the softmax's mask",
        Map::One(elementwise::binary),
    ),
    op("AveragePool", "avg_pool2d", Map::One(pool::pool)),
    op(
        "BatchNormalization",
        "folded into the Conv/Dense before, else affine",
        Map::One(linear::batch_norm),
    ),
    op(
        "Cast",
        "nothing between floats; folded on constants",
        Map::One(shape::cast),
    ),
    op(
        "Clip",
        "a clamp fused into Dense/Conv, else activation",
        Map::One(activation::activation),
    ),
    op("Concat", "folded (constants only)", Map::One(shape::fold)),
    op("Constant", "a constant", Map::One(shape::constant)),
    op("ConstantOfShape", "folded (constants only)", Map::One(shape::fold)),
    op("Conv", "conv2d", Map::One(linear::conv)),
    op(
        "Div",
        "mul by the reciprocal (constant divisor)",
        Map::One(elementwise::binary),
    ),
    op("Dropout", "nothing (inference)", Map::All(shape::pass_through)),
    op("Equal", "folded (constants only)", Map::One(constant::fold)),
    op(
        "Erf",
        "activation (GELU's erf decomposition imports as its element-wise layers)",
        Map::One(activation::activation),
    ),
    op("Expand", "folded (constants only)", Map::One(constant::fold)),
    op("Flatten", "reshape", Map::One(shape::reshape)),
    op("GRU", "gru", Map::At(recurrent::recurrent)),
    op(
        "Gather",
        "embedding (indices into a constant table); permute (constant indices into a tensor: a CLS token); folded on constants",
        Map::One(shape::gather),
    ),
    op(
        "Gelu",
        "activation (exact or tanh form)",
        Map::One(activation::activation),
    ),
    op("Gemm", "dense", Map::One(linear::gemm)),
    op("GlobalAveragePool", "global_avg_pool", Map::One(pool::global_average)),
    op("Identity", "nothing", Map::All(shape::pass_through)),
    op("LSTM", "lstm", Map::At(recurrent::recurrent)),
    op(
        "LayerNormalization",
        "layer_norm (the axes from `axis` as one row; output Y only)",
        Map::One(norm::layer_norm),
    ),
    op("LeakyRelu", "activation", Map::One(activation::activation)),
    op(
        "MatMul",
        "dense (constant weights); matmul of two tensors (a Transpose of the last two axes folds in)",
        Map::One(linear::matmul),
    ),
    op("Max", "folded (constants only)", Map::One(constant::fold)),
    op("MaxPool", "max_pool2d", Map::One(pool::pool)),
    op("Min", "folded (constants only)", Map::One(constant::fold)),
    op("Mul", "mul", Map::One(elementwise::binary)),
    op("RNN", "simple_rnn", Map::At(recurrent::recurrent)),
    op("Range", "folded (constants only)", Map::One(constant::fold)),
    op("ReduceMax", "folded (constants only)", Map::One(constant::fold)),
    op(
        "ReduceMean",
        "global_avg_pool over the reduced axes (moved last by a permute where needed); folded on constants",
        Map::One(pool::reduce_mean),
    ),
    op("ReduceMin", "folded (constants only)", Map::One(constant::fold)),
    op("ReduceProd", "folded (constants only)", Map::One(constant::fold)),
    op("ReduceSum", "folded (constants only)", Map::One(constant::fold)),
    op(
        "Relu",
        "a clamp fused into Dense/Conv, else activation",
        Map::One(activation::activation),
    ),
    op("Reshape", "reshape", Map::One(shape::reshape)),
    op("Shape", "folded (constants only)", Map::One(shape::fold)),
    op("Sigmoid", "activation", Map::One(activation::activation)),
    op(
        "Slice",
        "folded on constants; the last step of a recurrent sequence makes the layer return only it; else permute",
        Map::One(shape::fold),
    ),
    op("Softmax", "softmax (another axis than the last: moved last and back)", Map::One(activation::softmax)),
    op(
        "Split",
        "folded on constants; else a permute per piece (packed Q/K/V by chunk)",
        Map::All(shape::split),
    ),
    op("Squeeze", "reshape", Map::One(shape::reshape)),
    op(
        "Sub",
        "add of the negation; a constant after Dense/Conv folds into its bias",
        Map::One(elementwise::binary),
    ),
    op("Tanh", "activation", Map::One(activation::activation)),
    op("Tile", "folded (constants only)", Map::One(constant::fold)),
    op("Trilu", "folded (constants only)", Map::One(constant::fold)),
    op(
        "Transpose",
        "nothing or reshape when no data moves; else folded into the Dense after a Flatten, or permute",
        Map::One(shape::reshape),
    ),
    op("Unsqueeze", "reshape", Map::One(shape::reshape)),
    op(
        "Where",
        "a softmax's mask (a constant condition and large negative fill on scores); folded on constants",
        Map::One(elementwise::where_op),
    ),
];

/// The op named `op_type`, if the importer maps it.
pub fn find(op_type: &str) -> Option<&'static OnnxOp> {
    OPS.iter().find(|o| o.name == op_type)
}

/// Maps one node, recording the values of its outputs.
pub fn map(b: &mut Builder, node: &NodeProto) -> Result<(), ImportError> {
    if !(node.domain.is_empty() || node.domain == "ai.onnx") {
        return Err(ImportError::unsupported(
            node,
            format!("domain '{}' is not supported (only ai.onnx)", node.domain),
        ));
    }
    let Some(op) = find(&node.op_type) else {
        let supported: Vec<&str> = OPS.iter().map(|o| o.name).collect();
        return Err(ImportError::unsupported(
            node,
            format!(
                "op {} has no cwnn layer (supported: {})",
                node.op_type,
                supported.join(", ")
            ),
        ));
    };
    let outputs: Vec<(usize, Value)> = match op.map {
        Map::One(f) => vec![(0, f(b, node)?)],
        Map::All(f) => f(b, node)?.into_iter().enumerate().collect(),
        Map::At(f) => vec![f(b, node)?],
    };
    for (i, value) in outputs {
        if let Some(name) = node.output.get(i) {
            b.set(name, value);
        }
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
