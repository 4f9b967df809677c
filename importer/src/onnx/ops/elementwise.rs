//! Add, Sub, Mul, Div: folded when both sides are constants, absorbed as a bias by the
//! Dense / Conv before (MatMul + Add → Dense), else an Add / Mul layer (Sub and Div by a
//! constant become Add and Mul).

use cwnn_layers::{AddF64, MulF64};
use ndarray::{ArrayD, IxDyn};
use onnx_protobuf::NodeProto;

use crate::float::FloatOp;
use crate::onnx::builder::{Builder, Dyn, Value};
use crate::onnx::ImportError;

/// `c` (an ONNX constant, broadcast against `d`'s ONNX shape) as a constant over one sample:
/// the batch axis removed (it must be 1 there) and leading 1s dropped. It may not enlarge the
/// sample (the output keeps the sample's shape).
fn per_sample(b: &Builder, node: &NodeProto, c: &ArrayD<f64>, d: &Dyn) -> Result<ArrayD<f64>, ImportError> {
    let full = b.full_shape(d);
    if c.ndim() > full.len() {
        return Err(ImportError::unsupported(
            node,
            format!("constant {:?} has more axes than the tensor {full:?}", c.shape()),
        ));
    }
    let mut shape = vec![1; full.len() - c.ndim()];
    shape.extend_from_slice(c.shape());
    for (i, (&cd, &xd)) in shape.iter().zip(&full).enumerate() {
        if cd != 1 && cd != xd {
            return Err(ImportError::node(
                node,
                format!("constant {:?} does not broadcast to {full:?}", c.shape()),
            ));
        }
        if Some(i) == d.batch && cd != 1 {
            return Err(ImportError::unsupported(
                node,
                "a constant that differs between samples",
            ));
        }
    }
    if let Some(bt) = d.batch {
        shape.remove(bt);
    }
    while shape.first() == Some(&1) && shape.len() > 1 {
        shape.remove(0);
    }
    let data: Vec<f64> = c.iter().copied().collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).map_err(|e| ImportError::node(node, e.to_string()))
}

/// NumPy broadcasting of two shapes.
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let at = |s: &[usize], i: usize| if i + s.len() < n { 1 } else { s[i + s.len() - n] };
    (0..n)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y || y == 1 => Some(x),
            (1, y) => Some(y),
            _ => None,
        })
        .collect()
}

fn fold(node: &NodeProto, x: &ArrayD<f64>, y: &ArrayD<f64>) -> Result<ArrayD<f64>, ImportError> {
    let shape = broadcast_shape(x.shape(), y.shape())
        .ok_or_else(|| ImportError::node(node, format!("{:?} and {:?} do not broadcast", x.shape(), y.shape())))?;
    super::check_size(node, &shape)?;
    let (x, y) = (
        x.broadcast(IxDyn(&shape)).expect("checked"),
        y.broadcast(IxDyn(&shape)).expect("checked"),
    );
    Ok(match node.op_type.as_str() {
        "Add" => &x + &y,
        "Sub" => &x - &y,
        "Mul" => &x * &y,
        _ => &x / &y,
    })
}

/// Folds `c` (per output channel) into the Dense / Conv node `i`, if it is one: added to its
/// bias (`scale` false), or multiplying its weights and bias (`scale` true: a BatchNorm that
/// tf2onnx writes as Mul + Add); a scalar scale into a MatMul of two tensors.
fn absorb(b: &mut Builder, i: usize, c: &ArrayD<f64>, scale: bool) -> bool {
    let node = &mut b.nodes[i];
    // A scalar scale after a product of two tensors (attention's 1/√d) joins its multiplier.
    if let (FloatOp::MatMul(m), true, [s]) = (&mut node.op, scale, c.as_slice().unwrap_or_default()) {
        m.alpha *= s;
        return true;
    }
    let channel_axis = match &node.op {
        FloatOp::Dense(d) if d.clamp.is_none() => node.shape.len() - 1,
        FloatOp::Conv2d(cv) if cv.clamp.is_none() => 0,
        _ => return false,
    };
    let rank = node.shape.len();
    // `c` is right-aligned against the sample shape: it must vary along the channel axis only.
    let offset = rank.saturating_sub(c.ndim());
    let along_channel = c.ndim() <= rank
        && c.shape()
            .iter()
            .enumerate()
            .all(|(j, &n)| n == 1 || j + offset == channel_axis);
    if !along_channel {
        return false;
    }
    let values: Vec<f64> = c.iter().copied().collect();
    let at = |o: usize| if values.len() == 1 { values[0] } else { values[o] };
    match &mut node.op {
        FloatOp::Dense(d) if scale => {
            for (o, mut row) in d.w.outer_iter_mut().enumerate() {
                row.mapv_inplace(|v| v * at(o));
                d.b[o] *= at(o);
            }
        }
        FloatOp::Conv2d(cv) if scale => {
            for (o, mut w) in cv.w.outer_iter_mut().enumerate() {
                w.mapv_inplace(|v| v * at(o));
                cv.b[o] *= at(o);
            }
        }
        FloatOp::Dense(d) => d.b.iter_mut().enumerate().for_each(|(o, v)| *v += at(o)),
        FloatOp::Conv2d(cv) => cv.b.iter_mut().enumerate().for_each(|(o, v)| *v += at(o)),
        _ => return false,
    }
    true
}

pub fn binary(b: &mut Builder, node: &NodeProto) -> Result<Value, ImportError> {
    let (x, y) = (b.required(node, 0)?.clone(), b.required(node, 1)?.clone());
    let op = node.op_type.as_str();
    match (x, y) {
        (Value::Const(x), Value::Const(y)) => Ok(Value::Const(fold(node, &x, &y)?)),
        (Value::Dyn(d), Value::Const(c)) => with_constant(b, node, d, &c, 0),
        (Value::Const(c), Value::Dyn(d)) if matches!(op, "Add" | "Mul") => with_constant(b, node, d, &c, 1),
        (Value::Const(_), Value::Dyn(_)) => Err(ImportError::unsupported(
            node,
            format!("{op} with a constant first operand"),
        )),
        (Value::Dyn(p), Value::Dyn(q)) => {
            if !matches!(op, "Add" | "Mul") {
                return Err(ImportError::unsupported(
                    node,
                    format!("{op} of two per-sample tensors"),
                ));
            }
            if p.shape != q.shape || p.batch != q.batch {
                return Err(ImportError::unsupported(
                    node,
                    format!(
                        "operands of shapes {:?} and {:?}; only equal shapes are supported",
                        p.shape, q.shape
                    ),
                ));
            }
            let (pi, qi) = (b.materialize(node, &p)?, b.materialize(node, &q)?);
            let f = if op == "Add" {
                FloatOp::Add(AddF64::default())
            } else {
                FloatOp::Mul(MulF64::default())
            };
            Ok(Value::Dyn(b.push(
                &node.name,
                f,
                vec![pi, qi],
                p.shape.clone(),
                p.batch,
            )))
        }
    }
}

fn with_constant(
    b: &mut Builder,
    node: &NodeProto,
    d: Dyn,
    c: &ArrayD<f64>,
    dyn_at: usize,
) -> Result<Value, ImportError> {
    let mut c = per_sample(b, node, c, &d)?;
    match node.op_type.as_str() {
        "Sub" => c.mapv_inplace(|v| -v),
        "Div" => {
            if c.iter().any(|&v| v == 0.0) {
                return Err(ImportError::node(node, "division by a constant 0"));
            }
            c.mapv_inplace(|v| 1.0 / v)
        }
        _ => {}
    }
    let additive = matches!(node.op_type.as_str(), "Add" | "Sub");
    // Adding 0 or multiplying by 1 (Keras' Rescaling without an offset) is nothing.
    let neutral = if additive { 0.0 } else { 1.0 };
    if c.iter().all(|&v| v == neutral) && broadcast_shape(&d.shape, c.shape()).as_ref() == Some(&d.shape) {
        return Ok(Value::Dyn(d));
    }
    // A mask (values ≤ MASKED) stays an Add, for the Softmax after it to take.
    let mask = additive && c.iter().any(|&v| v <= super::activation::MASKED);
    if let Some(i) = b.fusable(node, dyn_at, &d).filter(|_| !mask) {
        if absorb(b, i, &c, !additive) {
            return Ok(Value::Dyn(d));
        }
    }
    let id = b.materialize(node, &d)?;
    let f = if additive {
        FloatOp::Add(AddF64 { constant: Some(c) })
    } else {
        FloatOp::Mul(MulF64 { constant: Some(c) })
    };
    Ok(Value::Dyn(b.push(&node.name, f, vec![id], d.shape.clone(), d.batch)))
}

/// Where with one per-sample operand and constant others: `masked_fill` of attention scores,
/// `Where(C, x, V)` or `Where(C, V, x)` with `V` a large negative (≤ `MASKED`, −∞ included).
/// It becomes `x + M` (M: 0 where `x` is kept, `V` elsewhere), which the Softmax after it
/// takes as its mask. All constants fold; any other Where of a tensor is a named error.
pub fn where_op(b: &mut Builder, node: &NodeProto) -> Result<Value, ImportError> {
    let v = |i: usize| b.required(node, i).cloned();
    let (c, m, d) = match (v(0)?, v(1)?, v(2)?) {
        (Value::Const(_), Value::Const(_), Value::Const(_)) => return super::constant::fold(b, node),
        (Value::Const(c), Value::Dyn(d), Value::Const(fill)) => (c, (fill, false), d),
        (Value::Const(c), Value::Const(fill), Value::Dyn(d)) => (c, (fill, true), d),
        _ => {
            return Err(ImportError::unsupported(
                node,
                "Where of per-sample tensors (only a constant condition and fill, as a mask)",
            ))
        }
    };
    let ((fill, fill_where_true), masked) = (m, super::activation::MASKED);
    let out = node.output.first().map(String::as_str).unwrap_or_default();
    if !b.softmax_inputs.contains(out) || b.readers.get(out) != Some(&1) {
        return Err(ImportError::unsupported(
            node,
            "Where of a tensor that only a Softmax reads (as its mask) is supported, no other",
        ));
    }
    if fill.iter().any(|&f| !(f <= masked)) {
        return Err(ImportError::unsupported(
            node,
            format!("Where of a tensor with a fill above {masked}: only attention masks are supported"),
        ));
    }
    let shape = broadcast_shape(c.shape(), fill.shape())
        .ok_or_else(|| ImportError::node(node, "condition and fill do not broadcast"))?;
    super::check_size(node, &shape)?;
    let (c, fill) = (
        c.broadcast(IxDyn(&shape)).expect("checked"),
        fill.broadcast(IxDyn(&shape)).expect("checked"),
    );
    let m = ndarray::Zip::from(&c)
        .and(&fill)
        .map_collect(|&c, &f| if (c != 0.0) == fill_where_true { f } else { 0.0 });
    let m = per_sample(b, node, &m, &d)?;
    let id = b.materialize(node, &d)?;
    let f = FloatOp::Add(AddF64 { constant: Some(m) });
    Ok(Value::Dyn(b.push(&node.name, f, vec![id], d.shape.clone(), d.batch)))
}
