//! Relu, LeakyRelu, Sigmoid, Tanh, Gelu, Erf, Clip → fused into the Dense/Conv before, or an
//! Activation table; Softmax.

use cwnn_layers::{ActivationF64, AddF64, SoftmaxF64};
use ndarray::{Array2, IxDyn};
use onnx_protobuf::NodeProto;

use super::axis;
use crate::float::FloatOp;
use crate::onnx::builder::{Builder, Dyn, Value};
use crate::onnx::proto::Attrs;
use crate::onnx::ImportError;

/// Clip's bounds: attributes before opset 11, optional constant inputs from 11 on.
fn clip_bounds(b: &Builder, node: &NodeProto) -> Result<(f64, f64), ImportError> {
    if b.opset < 11 {
        let a = Attrs::new(node);
        return Ok((a.float("min", f64::NEG_INFINITY)?, a.float("max", f64::INFINITY)?));
    }
    let bound = |i: usize, default: f64| -> Result<f64, ImportError> {
        match b.constant(node, i)? {
            None => Ok(default),
            Some(c) if c.len() == 1 => Ok(c.iter().copied().next().unwrap_or(default)),
            Some(_) => Err(ImportError::node(node, format!("input {i} must be a scalar"))),
        }
    };
    Ok((bound(1, f64::NEG_INFINITY)?, bound(2, f64::INFINITY)?))
}

pub fn activation(b: &mut Builder, node: &NodeProto) -> Result<Value, ImportError> {
    let x = b.dynamic(node, 0)?;
    let f = match node.op_type.as_str() {
        "Relu" => ActivationF64::Relu,
        "LeakyRelu" => ActivationF64::LeakyRelu {
            alpha: Attrs::new(node).float("alpha", 0.01)?,
        },
        "Sigmoid" => ActivationF64::Sigmoid,
        "Tanh" => ActivationF64::Tanh,
        "Erf" => ActivationF64::Erf,
        "Gelu" => match Attrs::new(node).string("approximate", "none")?.as_str() {
            "none" => ActivationF64::Gelu,
            "tanh" => ActivationF64::GeluTanh,
            other => {
                return Err(ImportError::unsupported(
                    node,
                    format!("approximate = \"{other}\" (ONNX defines \"none\" and \"tanh\")"),
                ))
            }
        },
        _ => {
            let (min, max) = clip_bounds(b, node)?;
            // ONNX: with min > max every value becomes max.
            ActivationF64::Clip { min: min.min(max), max }
        }
    };
    // ReLU and Clip become the output clamp of a Dense / Conv that only feeds them.
    let clamp = match f {
        ActivationF64::Relu => Some((0.0, f64::INFINITY)),
        ActivationF64::Clip { min, max } => Some((min, max)),
        _ => None,
    };
    if let (Some(range), Some(i)) = (clamp, b.fusable(node, 0, &x)) {
        let slot = match &mut b.nodes[i].op {
            FloatOp::Dense(d) => Some(&mut d.clamp),
            FloatOp::Conv2d(c) => Some(&mut c.clamp),
            _ => None,
        };
        if let Some(slot) = slot.filter(|s| s.is_none()) {
            *slot = Some(range);
            return Ok(Value::Dyn(x));
        }
    }
    let id = b.materialize(node, &x)?;
    Ok(Value::Dyn(b.push(
        &node.name,
        FloatOp::Activation(f),
        vec![id],
        x.shape.clone(),
        x.batch,
    )))
}

/// Softmax over the last axis of a sample. Before opset 13 ONNX flattens from `axis` on, which
/// is the same as a softmax over all of a sample's values when `axis` is the first after the
/// batch; that case is reshaped to one row and back.
pub fn softmax(b: &mut Builder, node: &NodeProto) -> Result<Value, ImportError> {
    let x = b.dynamic(node, 0)?;
    let full = b.full_shape(&x);
    let default = if b.opset < 13 { 1 } else { -1 };
    let ax = axis(node, Attrs::new(node).int("axis", default)?, full.len())?;
    if Some(ax) == x.batch {
        return Err(ImportError::unsupported(node, "softmax across the batch axis"));
    }
    let last = full.len() - 1;
    // Before opset 13: everything from `axis` on is one row; fine when nothing but the batch
    // comes before it.
    let flat = b.opset < 13 && full[..ax].iter().product::<usize>() == b.batch_size;
    if ax == last || flat {
        let n = x.shape.iter().product::<usize>();
        let row = if ax == last {
            x.clone()
        } else {
            Dyn {
                shape: vec![n],
                ..x.clone()
            }
        };
        let masked = if ax == last { mask_before(b, node, &x) } else { None };
        let (row, mask) = match masked {
            Some((source, mask)) => (Dyn { id: source, ..row }, Some(mask)),
            None => (row, None),
        };
        let id = b.materialize(node, &row)?;
        let f = FloatOp::Softmax(SoftmaxF64 { mask });
        let y = b.push(&node.name, f, vec![id], row.shape.clone(), row.batch);
        return Ok(Value::Dyn(Dyn { shape: x.shape, ..y }));
    }
    // Another axis (tf2onnx's Keras attention scores, keys before queries): moved last, the
    // softmax, and moved back, as reorderings that a Permute or the next MatMul absorbs.
    // Before opset 13 `axis` flattens what follows it into one row; and a mask there would
    // need moving too.
    if b.opset < 13 || mask_before(b, node, &x).is_some() {
        return Err(ImportError::unsupported(
            node,
            format!("softmax over axis {ax} of {full:?} (only the last axis takes a mask, or before opset 13)"),
        ));
    }
    let perm: Vec<usize> = (0..full.len()).filter(|&a| a != ax).chain([ax]).collect();
    let t = super::shape::transposed(b, node, &x, &perm)?;
    let id = b.materialize(node, &t)?;
    let f = FloatOp::Softmax(SoftmaxF64::default());
    let y = b.push(&node.name, f, vec![id], t.shape.clone(), t.batch);
    // Axis `a` of the input is axis `back[a]` of the softmax's.
    let back: Vec<usize> = (0..full.len())
        .map(|a| perm.iter().position(|&p| p == a).unwrap_or(a))
        .collect();
    Ok(Value::Dyn(super::shape::transposed(b, node, &y, &back)?))
}

/// Below this an added constant leaves a position out of the softmax (a mask's −∞, or the
/// −10⁴ and `finfo.min` that exporters write for it).
pub(crate) const MASKED: f64 = -1e4;

/// When `x` is an Add of a mask (a constant of 0s and values ≤ [`MASKED`]) that only this
/// Softmax reads: the tensor before the Add and the mask's rows, `[P, n]`, where row `r` of `x`
/// uses row `r % P` (the shortest period: a `[T, T]` causal mask over `[H, T, T]` scores gives
/// `P = T`).
fn mask_before(b: &Builder, node: &NodeProto, x: &Dyn) -> Option<(usize, Array2<bool>)> {
    let i = b.fusable(node, 0, x)?;
    let FloatOp::Add(AddF64 { constant: Some(c) }) = &b.nodes[i].op else {
        return None;
    };
    let c = c.broadcast(IxDyn(&x.shape))?;
    if c.iter().any(|&v| v != 0.0 && v > MASKED) {
        return None;
    }
    let n = *x.shape.last()?;
    let out: Vec<bool> = c.iter().map(|&v| v <= MASKED).collect();
    let rows = out.len() / n.max(1);
    let period = (1..=rows)
        .filter(|p| rows % p == 0)
        .find(|&p| (p..rows).all(|r| out[r * n..(r + 1) * n] == out[(r % p) * n..(r % p + 1) * n]))?;
    let mask = Array2::from_shape_vec((period, n), out[..period * n].to_vec()).ok()?;
    Some((b.nodes[i].inputs[0], mask))
}
