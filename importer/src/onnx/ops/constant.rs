//! Ops folded on constants: the shape and state arithmetic exporters emit around the real
//! layers (tf2onnx builds an LSTM's zero initial state with Shape, Concat and Expand; masks
//! with Range, Equal and Where). Once the input shape is fixed these are constants, computed
//! here in f64; on a per-sample tensor they have no layer and are named errors.

use ndarray::{ArrayD, ArrayViewD, Axis, Dimension, IxDyn};
use onnx_protobuf::NodeProto;

use super::elementwise::broadcast_shape;
use super::{axis, check_size, dims};
use crate::onnx::builder::{Builder, Value};
use crate::onnx::proto::Attrs;
use crate::onnx::ImportError;

/// `arrays` broadcast to one shape (NumPy rules), or a named error.
fn broadcast<'a>(node: &NodeProto, arrays: &[&'a ArrayD<f64>]) -> Result<Vec<ArrayViewD<'a, f64>>, ImportError> {
    let mut shape: Vec<usize> = Vec::new();
    for a in arrays {
        shape = broadcast_shape(&shape, a.shape())
            .ok_or_else(|| ImportError::node(node, format!("{shape:?} and {:?} do not broadcast", a.shape())))?;
    }
    check_size(node, &shape)?;
    arrays
        .iter()
        .map(|a| a.broadcast(IxDyn(&shape)))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ImportError::node(node, "operands do not broadcast"))
}

pub fn fold(b: &mut Builder, node: &NodeProto) -> Result<Value, ImportError> {
    let input = |i: usize| b.required_const(node, i);
    let out = match node.op_type.as_str() {
        "Expand" => {
            let x = input(0)?;
            let shape = dims(node, &input(1)?.iter().map(|&v| v as i64).collect::<Vec<_>>())?;
            let shape = broadcast_shape(x.shape(), &shape)
                .ok_or_else(|| ImportError::node(node, format!("{:?} does not expand to {shape:?}", x.shape())))?;
            check_size(node, &shape)?;
            x.broadcast(IxDyn(&shape))
                .map(|v| v.to_owned())
                .ok_or_else(|| ImportError::node(node, "does not broadcast"))?
        }
        "Tile" => tile(node, input(0)?, input(1)?)?,
        "Trilu" => {
            let k = b
                .constant(node, 1)?
                .and_then(|k| k.iter().next().copied())
                .unwrap_or(0.0) as i64;
            trilu(node, input(0)?, k, Attrs::new(node).int("upper", 1)? != 0)?
        }
        "Range" => range(node, input(0)?, input(1)?, input(2)?)?,
        "Equal" => {
            let v = broadcast(node, &[input(0)?, input(1)?])?;
            ndarray::Zip::from(&v[0])
                .and(&v[1])
                .map_collect(|a, b| f64::from(u8::from(a == b)))
        }
        "Max" | "Min" => {
            let inputs = (0..node.input.len()).map(input).collect::<Result<Vec<_>, _>>()?;
            let v = broadcast(node, &inputs)?;
            let pick = |a: f64, b: f64| if node.op_type == "Max" { a.max(b) } else { a.min(b) };
            let first = v
                .first()
                .ok_or_else(|| ImportError::node(node, "no inputs"))?
                .to_owned();
            v[1..].iter().fold(first, |acc, x| {
                ndarray::Zip::from(&acc).and(x).map_collect(|&a, &b| pick(a, b))
            })
        }
        "Where" => {
            let v = broadcast(node, &[input(0)?, input(1)?, input(2)?])?;
            ndarray::Zip::from(&v[0])
                .and(&v[1])
                .and(&v[2])
                .map_collect(|&c, &x, &y| if c != 0.0 { x } else { y })
        }
        _ => reduce(node, input(0)?, b.constant(node, 1)?)?,
    };
    Ok(Value::Const(out))
}

/// Trilu: the upper (`j − i ≥ k`) or lower (`j − i ≤ k`) triangle of each matrix in the last
/// two axes, zeros elsewhere (PyTorch builds a causal mask with it).
fn trilu(node: &NodeProto, x: &ArrayD<f64>, k: i64, upper: bool) -> Result<ArrayD<f64>, ImportError> {
    let r = x.ndim();
    if r < 2 {
        return Err(ImportError::node(node, "Trilu needs at least 2 axes"));
    }
    let mut out = x.clone();
    for (index, v) in out.indexed_iter_mut() {
        let d = index[r - 1] as i64 - index[r - 2] as i64;
        if (upper && d < k) || (!upper && d > k) {
            *v = 0.0;
        }
    }
    Ok(out)
}

fn tile(node: &NodeProto, x: &ArrayD<f64>, repeats: &ArrayD<f64>) -> Result<ArrayD<f64>, ImportError> {
    let reps = dims(node, &repeats.iter().map(|&v| v as i64).collect::<Vec<_>>())?;
    if reps.len() != x.ndim() {
        return Err(ImportError::node(
            node,
            format!("{} repeats for a rank-{} input", reps.len(), x.ndim()),
        ));
    }
    let shape: Vec<usize> = x
        .shape()
        .iter()
        .zip(&reps)
        .map(|(&d, &r)| d.saturating_mul(r))
        .collect();
    check_size(node, &shape)?;
    Ok(ArrayD::from_shape_fn(IxDyn(&shape), |i| {
        let at: Vec<usize> = i.slice().iter().zip(x.shape()).map(|(&k, &d)| k % d).collect();
        x[IxDyn(&at)]
    }))
}

fn range(
    node: &NodeProto,
    start: &ArrayD<f64>,
    limit: &ArrayD<f64>,
    delta: &ArrayD<f64>,
) -> Result<ArrayD<f64>, ImportError> {
    let scalar = |a: &ArrayD<f64>| a.iter().next().copied().filter(|_| a.len() == 1);
    let (Some(s), Some(l), Some(d)) = (scalar(start), scalar(limit), scalar(delta)) else {
        return Err(ImportError::node(node, "start, limit and delta must be scalars"));
    };
    let n = ((l - s) / d).ceil();
    if d == 0.0 || !n.is_finite() {
        return Err(ImportError::node(node, format!("no range from {s} to {l} by {d}")));
    }
    let n = n.max(0.0).min((1u64 << 40) as f64) as usize;
    check_size(node, &[n])?;
    Ok(ArrayD::from_shape_fn(IxDyn(&[n]), |i| s + i[0] as f64 * d))
}

/// A reduction's axes of a rank-`rank` tensor (sorted, distinct) and `keepdims`; `None` for
/// `noop_with_empty_axes` without axes (the input unchanged).
pub(crate) fn reduce_axes(
    node: &NodeProto,
    axes_input: Option<&ArrayD<f64>>,
    rank: usize,
) -> Result<Option<(Vec<usize>, bool)>, ImportError> {
    let a = Attrs::new(node);
    let axes = match axes_input {
        Some(v) => Some(v.iter().map(|&v| v as i64).collect()),
        None => a.ints("axes")?,
    };
    let mut axes: Vec<usize> = match axes {
        Some(v) if !v.is_empty() => v.iter().map(|&k| axis(node, k, rank)).collect::<Result<_, _>>()?,
        _ if a.int("noop_with_empty_axes", 0)? != 0 => return Ok(None),
        _ => (0..rank).collect(),
    };
    axes.sort_unstable();
    axes.dedup();
    Ok(Some((axes, a.int("keepdims", 1)? != 0)))
}

/// ReduceSum / Mean / Max / Min / Prod over `axes` (an attribute, or input 1 from opset 13 for
/// ReduceSum and 18 for the rest); all axes when none are given.
fn reduce(node: &NodeProto, x: &ArrayD<f64>, axes_input: Option<&ArrayD<f64>>) -> Result<ArrayD<f64>, ImportError> {
    let Some((axes, keep)) = reduce_axes(node, axes_input, x.ndim())? else {
        return Ok(x.clone());
    };
    let mut out = x.clone();
    for &ax in axes.iter().rev() {
        if out.shape()[ax] == 0 {
            return Err(ImportError::node(node, "reduction over an empty axis"));
        }
        let lane = |f: fn(f64, f64) -> f64, init: f64| out.fold_axis(Axis(ax), init, |&acc, &v| f(acc, v));
        out = match node.op_type.as_str() {
            "ReduceSum" => lane(|a, v| a + v, 0.0),
            "ReduceMean" => lane(|a, v| a + v, 0.0) / out.shape()[ax] as f64,
            "ReduceMax" => lane(f64::max, f64::NEG_INFINITY),
            "ReduceMin" => lane(f64::min, f64::INFINITY),
            _ => lane(|a, v| a * v, 1.0),
        };
        if keep {
            out.insert_axis_inplace(Axis(ax));
        }
    }
    Ok(out)
}
