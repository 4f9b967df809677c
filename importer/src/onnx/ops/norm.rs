//! LayerNormalization → LayerNorm over one row: the axes from `axis` on, flattened (with
//! their Scale and B broadcast to them).

use cwnn_layers::{LayerNormF64, LAYER_NORM_MAX};
use ndarray::{ArrayD, IxDyn};
use onnx_protobuf::NodeProto;

use super::axis;
use crate::float::FloatOp;
use crate::onnx::builder::{Builder, Dyn, Value};
use crate::onnx::proto::Attrs;
use crate::onnx::ImportError;

/// `c` broadcast to the normalized axes `tail`, flattened.
fn spread(node: &NodeProto, c: &ArrayD<f64>, tail: &[usize], what: &str) -> Result<Vec<f64>, ImportError> {
    match c.broadcast(IxDyn(tail)) {
        Some(v) => Ok(v.iter().copied().collect()),
        None => Err(ImportError::node(
            node,
            format!("{what} of shape {:?} does not broadcast to {tail:?}", c.shape()),
        )),
    }
}

/// ONNX LayerNormalization (opset 17): only its first output, `Y` (`Mean` and `InvStdDev`
/// serve training).
pub fn layer_norm(b: &mut Builder, node: &NodeProto) -> Result<Value, ImportError> {
    let x = b.dynamic(node, 0)?;
    let attrs = Attrs::new(node);
    let full = b.full_shape(&x);
    let ax = axis(node, attrs.int("axis", -1)?, full.len())?;
    if x.batch.is_some_and(|bt| bt >= ax) {
        return Err(ImportError::unsupported(
            node,
            format!("normalizing {full:?} from axis {ax} would mix samples (the batch axis)"),
        ));
    }
    let tail = &full[ax..];
    let n: usize = tail.iter().product();
    if n > LAYER_NORM_MAX {
        return Err(ImportError::unsupported(
            node,
            format!("normalizes {n} values per row; at most {LAYER_NORM_MAX}"),
        ));
    }
    let gamma = spread(node, b.required_const(node, 1)?, tail, "Scale")?;
    let beta = match b.constant(node, 2)? {
        Some(c) => spread(node, c, tail, "B")?,
        None => vec![0.0; n],
    };
    let eps = attrs.float("epsilon", 1e-5)?;
    // One row per index of the sample's axes before `axis`.
    let mut shape = x.shape[..ax - x.batch.is_some() as usize].to_vec();
    shape.push(n);
    let row = Dyn { shape, ..x.clone() };
    let id = b.materialize(node, &row)?;
    let f = FloatOp::LayerNorm(LayerNormF64 { gamma, beta, eps });
    let y = b.push(&node.name, f, vec![id], row.shape.clone(), row.batch);
    Ok(Value::Dyn(Dyn { shape: x.shape, ..y }))
}
