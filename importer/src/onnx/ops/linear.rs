//! Gemm, MatMul → Dense (MatMul of two per-sample tensors → MatMul); Conv → Conv2d;
//! BatchNormalization → folded into the layer before, or Affine.

use cwnn_layers::{AffineF64, Conv2dF64, DenseF64, MatMulF64, MulF64};
use ndarray::{Array1, Array2, Array4, Ix2, Ix4};
use onnx_protobuf::NodeProto;

use super::pool::window;
use crate::float::FloatOp;
use crate::onnx::builder::{Builder, Dyn, Value};
use crate::onnx::proto::Attrs;
use crate::onnx::ImportError;

/// A bias `c` (beta-scaled) broadcast over `n` outputs: a scalar or a vector of `n`, possibly
/// with leading 1s. Anything that varies over other axes is not a per-output bias.
fn bias_vector(node: &NodeProto, c: &ndarray::ArrayD<f64>, n: usize) -> Result<Array1<f64>, ImportError> {
    let mut shape: Vec<usize> = c.shape().to_vec();
    while shape.first() == Some(&1) && shape.len() > 1 {
        shape.remove(0);
    }
    match shape[..] {
        [] | [1] => Ok(Array1::from_elem(n, c.iter().next().copied().unwrap_or(0.0))),
        [m] if m == n => Ok(Array1::from_iter(c.iter().copied())),
        _ => Err(ImportError::unsupported(
            node,
            format!(
                "bias of shape {:?} differs between samples; only a scalar or [{n}] is a layer bias",
                c.shape()
            ),
        )),
    }
}

fn dense(
    b: &mut Builder,
    node: &NodeProto,
    w: Array2<f64>,
    bias: Array1<f64>,
    x: &crate::onnx::builder::Dyn,
) -> Result<Value, ImportError> {
    let mut x = x.clone();
    // A flat input's reordering folds into the columns; any other, and a selection (whose
    // columns would be mostly zeros), is a Permute before.
    let (flat, n) = (x.shape.len() == 1, b.numel_of(x.id));
    let w = match x.order.take_if(|o| flat && is_permutation(o, n)) {
        None => w,
        Some(order) => unpermute(node, w, &order, &x.shape)?,
    };
    let n = w.nrows();
    let mut shape = x.shape.clone();
    match shape.last_mut() {
        Some(l) => *l = n,
        None => shape.push(n),
    }
    let id = b.materialize(node, &x)?;
    let d = DenseF64 {
        w,
        b: bias,
        clamp: None,
    };
    Ok(Value::Dyn(b.push(
        &node.name,
        FloatOp::Dense(d),
        vec![id],
        shape,
        x.batch,
    )))
}

/// Whether `order` names each of `0..n` once.
fn is_permutation(order: &[usize], n: usize) -> bool {
    let mut seen = vec![false; n];
    order.len() == n && order.iter().all(|&i| i < n && !std::mem::replace(&mut seen[i], true))
}

/// Folds a Transpose's reordering into the Dense after it (Keras' Flatten after NHWC layers,
/// as tf2onnx writes it): `y = W·x`, with `x[k]` the data's element `order[k]`, is `W'·data`
/// where column `order[k]` of `W'` is column `k` of `W`. The input must be flat.
fn unpermute(node: &NodeProto, w: Array2<f64>, order: &[usize], shape: &[usize]) -> Result<Array2<f64>, ImportError> {
    if shape.len() != 1 || order.len() != w.ncols() {
        return Err(ImportError::node(
            node,
            format!(
                "a reordered input of shape {shape:?} does not match the weights' {} columns",
                w.ncols()
            ),
        ));
    }
    let mut out = Array2::zeros(w.raw_dim());
    for (k, &p) in order.iter().enumerate() {
        out.column_mut(p).assign(&w.column(k));
    }
    Ok(out)
}

pub fn gemm(b: &mut Builder, node: &NodeProto) -> Result<Value, ImportError> {
    let a = Attrs::new(node);
    let (alpha, beta) = (a.float("alpha", 1.0)?, a.float("beta", 1.0)?);
    let (trans_a, trans_b) = (a.int("transA", 0)? != 0, a.int("transB", 0)? != 0);
    let x = b.dynamic(node, 0)?;
    let full = b.full_shape(&x);
    // The batch must be the M axis of A (axis 0, or 1 when A is transposed), or merged into
    // it (PyTorch's MultiheadAttention projects `[T·N, d]`): then each sample's rows.
    let m_axis = if trans_a { 1 } else { 0 };
    let rows = b.merged(&x) && !trans_a;
    if full.len() != 2 || (x.batch != Some(m_axis) && !rows) {
        return Err(ImportError::unsupported(
            node,
            format!(
                "A must be [M, K] with the batch as M; it is {full:?} with the batch at {:?}",
                x.batch
            ),
        ));
    }
    let k = full[1 - m_axis];
    let w = b.required_const(node, 1)?.clone();
    let w = w
        .into_dimensionality::<Ix2>()
        .map_err(|_| ImportError::node(node, "B must be a matrix"))?;
    // Dense wants [N, K].
    let w = if trans_b {
        w
    } else {
        w.reversed_axes().as_standard_layout().to_owned()
    };
    if w.ncols() != k {
        return Err(ImportError::node(node, format!("B does not match K = {k}")));
    }
    let w = w * alpha;
    let bias = match b.constant(node, 2)? {
        Some(c) => bias_vector(node, c, w.nrows())? * beta,
        None => Array1::zeros(w.nrows()),
    };
    let x = match rows {
        true => x,
        false => crate::onnx::builder::Dyn {
            shape: vec![k],
            batch: Some(0),
            ..x
        },
    };
    dense(b, node, w, bias, &x)
}

pub fn matmul(b: &mut Builder, node: &NodeProto) -> Result<Value, ImportError> {
    if let Some(Value::Dyn(_)) = b.input(node, 1)? {
        return activations(b, node);
    }
    let x = b.dynamic(node, 0)?;
    let w = b.required_const(node, 1)?;
    let w = w.view().into_dimensionality::<Ix2>().map_err(|_| {
        ImportError::unsupported(
            node,
            format!("B has shape {:?}; only a [K, N] matrix maps to Dense", w.shape()),
        )
    })?;
    let full = b.full_shape(&x);
    if full.last() != Some(&w.nrows()) || x.batch == Some(full.len() - 1) {
        return Err(ImportError::node(
            node,
            format!("A {full:?} does not end in K = {}", w.nrows()),
        ));
    }
    let w = w.t().as_standard_layout().to_owned();
    let n = w.nrows();
    dense(b, node, w, Array1::zeros(n), &x)
}

/// The float tensor of a MatMul operand and whether the layer reads it transposed (a
/// Transpose of its last two axes folds in).
fn operand(b: &mut Builder, node: &NodeProto, d: &Dyn) -> Result<(usize, bool), ImportError> {
    match b.swapped_source(d) {
        Some(id) => Ok((id, true)),
        None => Ok((b.materialize(node, d)?, false)),
    }
}

/// MatMul of two per-sample tensors (attention's `Q·Kᵀ` and `P·V`): both at least 2-D per
/// sample, the batch axis before the matrix axes, the leading axes equal or one operand 2-D.
fn activations(b: &mut Builder, node: &NodeProto) -> Result<Value, ImportError> {
    let (p, q) = (b.dynamic(node, 0)?, b.dynamic(node, 1)?);
    let (rp, rq) = (p.shape.len(), q.shape.len());
    let matrix_axes = |d: &Dyn| d.batch.is_none_or(|bt| bt + 2 < d.shape.len() + 1);
    if p.batch != q.batch || rp < 2 || rq < 2 || !matrix_axes(&p) || !matrix_axes(&q) {
        return Err(ImportError::unsupported(
            node,
            format!(
                "operands {:?} and {:?}: each needs two matrix axes per sample after the batch axis",
                b.full_shape(&p),
                b.full_shape(&q)
            ),
        ));
    }
    let ((lp, mp), (lq, mq)) = (p.shape.split_at(rp - 2), q.shape.split_at(rq - 2));
    if !(lp == lq || lp.is_empty() || lq.is_empty()) {
        return Err(ImportError::unsupported(
            node,
            format!("leading axes {lp:?} and {lq:?}; only equal ones, or a 2-D operand, are supported"),
        ));
    }
    if mp[1] != mq[0] {
        return Err(ImportError::node(
            node,
            format!("A {:?} and B {:?} disagree on K", p.shape, q.shape),
        ));
    }
    let (mut shape, batch) = (if lp.is_empty() { lq.to_vec() } else { lp.to_vec() }, p.batch);
    shape.extend([mp[0], mq[1]]);
    let ((p, sp), (q, sq)) = (unscaled(b, node, 0, p), unscaled(b, node, 1, q));
    let ((pi, transpose_a), (qi, transpose_b)) = (operand(b, node, &p)?, operand(b, node, &q)?);
    let mut m = MatMulF64::new(transpose_a, transpose_b);
    m.alpha = sp * sq;
    Ok(Value::Dyn(b.push(
        &node.name,
        FloatOp::MatMul(m),
        vec![pi, qi],
        shape,
        batch,
    )))
}

/// Operand `i` of `node` read before a scalar Mul that nothing else reads, and that scale,
/// which joins the product's multiplier (PyTorch's exported scaled_dot_product_attention
/// multiplies Q and K each by √scale); else `d` and 1.
fn unscaled(b: &Builder, node: &NodeProto, i: usize, d: Dyn) -> (Dyn, f64) {
    let mul = b.fusable(node, i, &d).map(|at| &b.nodes[at]);
    match mul.map(|n| (&n.op, n.inputs[0])) {
        Some((FloatOp::Mul(MulF64 { constant: Some(c) }), x)) if c.len() == 1 => {
            (Dyn { id: x, ..d }, c.iter().product())
        }
        _ => (d, 1.0),
    }
}

pub fn conv(b: &mut Builder, node: &NodeProto) -> Result<Value, ImportError> {
    let x = b.dynamic(node, 0)?;
    let full = b.full_shape(&x);
    if full.len() != 4 || x.batch != Some(0) {
        return Err(ImportError::unsupported(
            node,
            format!("only 2-D convolution over [N, C, H, W] is supported; input is {full:?}"),
        ));
    }
    let w = b.required_const(node, 1)?.clone();
    let w: Array4<f64> = w
        .into_dimensionality::<Ix4>()
        .map_err(|_| ImportError::node(node, "W must be [M, C/group, kH, kW]"))?;
    let (m, cg, kh, kw) = w.dim();
    let groups = Attrs::new(node).int("group", 1)?;
    let groups = usize::try_from(groups)
        .ok()
        .filter(|&g| g > 0 && x.shape[0] % g == 0 && m % g == 0 && x.shape[0] / g == cg)
        .ok_or_else(|| ImportError::node(node, format!("group {groups} does not fit C = {} and W", x.shape[0])))?;
    let win = window(node, [x.shape[1], x.shape[2]], [kh, kw])?;
    let bias = match b.constant(node, 2)? {
        Some(c) => bias_vector(node, c, m)?,
        None => Array1::zeros(m),
    };
    let conv = Conv2dF64 {
        w,
        b: bias,
        strides: win.strides,
        dilations: win.dilations,
        pads: win.pads,
        groups,
        clamp: None,
    };
    let [pt, pl, pb, pr] = win.pads;
    let out = |n: usize, p: usize, k: usize, d: usize, s: usize| (n + p - d * (k - 1) - 1) / s + 1;
    let (h, wd) = (x.shape[1], x.shape[2]);
    if h + pt + pb < win.dilations[0] * (kh - 1) + 1 || wd + pl + pr < win.dilations[1] * (kw - 1) + 1 {
        return Err(ImportError::node(node, "the kernel is larger than the padded input"));
    }
    let shape = vec![
        m,
        out(h, pt + pb, kh, win.dilations[0], win.strides[0]),
        out(wd, pl + pr, kw, win.dilations[1], win.strides[1]),
    ];
    let id = b.materialize(node, &x)?;
    Ok(Value::Dyn(b.push(
        &node.name,
        FloatOp::Conv2d(conv),
        vec![id],
        shape,
        Some(0),
    )))
}

pub fn batch_norm(b: &mut Builder, node: &NodeProto) -> Result<Value, ImportError> {
    let a = Attrs::new(node);
    if a.int("training_mode", 0)? != 0 || node.output.iter().skip(1).any(|o| !o.is_empty()) {
        return Err(ImportError::unsupported(
            node,
            "training mode (running statistics as outputs)",
        ));
    }
    let eps = a.float("epsilon", 1e-5)?;
    let x = b.dynamic(node, 0)?;
    let full = b.full_shape(&x);
    if full.len() < 2 || x.batch != Some(0) {
        return Err(ImportError::unsupported(
            node,
            format!("input {full:?} is not [N, C, ...]"),
        ));
    }
    let c = full[1];
    let mut v = Vec::new();
    for i in 1..5 {
        let t = b.required_const(node, i)?;
        if t.len() != c {
            return Err(ImportError::node(
                node,
                format!("input {i} has {} values for C = {c}", t.len()),
            ));
        }
        v.push(t.iter().copied().collect::<Vec<f64>>());
    }
    let bn = AffineF64::batch_norm(&v[0], &v[1], &v[2], &v[3], eps);
    // Fold into the Conv / Dense that produced x when nothing else reads its output.
    if let Some(i) = b.fusable(node, 0, &x) {
        match &mut b.nodes[i].op {
            FloatOp::Conv2d(conv) if conv.clamp.is_none() => {
                *conv = conv.fold_batch_norm(&bn);
                return Ok(Value::Dyn(x));
            }
            FloatOp::Dense(d) if d.clamp.is_none() && x.shape.len() == 1 => {
                *d = d.fold_batch_norm(&bn);
                return Ok(Value::Dyn(x));
            }
            _ => {}
        }
    }
    let id = b.materialize(node, &x)?;
    Ok(Value::Dyn(b.push(
        &node.name,
        FloatOp::Affine(bn),
        vec![id],
        x.shape.clone(),
        x.batch,
    )))
}
