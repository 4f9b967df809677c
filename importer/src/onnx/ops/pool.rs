//! MaxPool, AveragePool, GlobalAveragePool, ReduceMean of a per-sample tensor; the 2-D window
//! attributes Conv shares.

use cwnn_layers::Window2d;
use onnx_protobuf::NodeProto;

use crate::float::FloatOp;
use crate::onnx::builder::{Builder, Dyn, Value};
use crate::onnx::proto::Attrs;
use crate::onnx::ImportError;

/// Bound on window attributes, far above any real model, so that sizes never overflow.
const LIMIT: i64 = 1 << 16;

fn pair(node: &NodeProto, name: &str, v: Option<Vec<i64>>, default: usize) -> Result<[usize; 2], ImportError> {
    match v.as_deref() {
        None => Ok([default; 2]),
        Some(&[a, b]) if (1..=LIMIT).contains(&a) && (1..=LIMIT).contains(&b) => Ok([a as usize, b as usize]),
        Some(other) => Err(ImportError::node(
            node,
            format!("{name} {other:?} is not two values in 1..={LIMIT}"),
        )),
    }
}

/// Window attributes (kernel_shape, strides, dilations, pads, auto_pad) over an `h × w` input.
pub fn window(node: &NodeProto, [h, w]: [usize; 2], kernel: [usize; 2]) -> Result<Window2d, ImportError> {
    let a = Attrs::new(node);
    if let Some(k) = a.ints("kernel_shape")? {
        if k.len() != 2 {
            return Err(ImportError::unsupported(
                node,
                format!("{}-D window; only 2-D is supported", k.len()),
            ));
        }
        if pair(node, "kernel_shape", Some(k), 1)? != kernel {
            return Err(ImportError::node(node, "kernel_shape differs from the weights"));
        }
    }
    let strides = pair(node, "strides", a.ints("strides")?, 1)?;
    let dilations = pair(node, "dilations", a.ints("dilations")?, 1)?;
    let auto_pad = a.string("auto_pad", "NOTSET")?;
    let pads = match auto_pad.as_str() {
        "NOTSET" => match a.ints("pads")?.as_deref() {
            None => [0; 4],
            Some(&[t, l, bt, r]) if [t, l, bt, r].iter().all(|p| (0..=LIMIT).contains(p)) => {
                [t as usize, l as usize, bt as usize, r as usize]
            }
            Some(other) => {
                return Err(ImportError::node(
                    node,
                    format!("pads {other:?} are not 4 values in 0..={LIMIT}"),
                ))
            }
        },
        "VALID" => [0; 4],
        "SAME_UPPER" | "SAME_LOWER" => {
            let total = |n: usize, k: usize, s: usize, d: usize| {
                let out = n.div_ceil(s);
                ((out - 1) * s + (k - 1) * d + 1).saturating_sub(n)
            };
            let (th, tw) = (
                total(h, kernel[0], strides[0], dilations[0]),
                total(w, kernel[1], strides[1], dilations[1]),
            );
            if auto_pad == "SAME_UPPER" {
                [th / 2, tw / 2, th - th / 2, tw - tw / 2]
            } else {
                [th - th / 2, tw - tw / 2, th / 2, tw / 2]
            }
        }
        other => {
            return Err(ImportError::node(
                node,
                format!("auto_pad {other} is not an ONNX value"),
            ))
        }
    };
    Ok(Window2d {
        kernel,
        strides,
        dilations,
        pads,
    })
}

pub fn pool(b: &mut Builder, node: &NodeProto) -> Result<Value, ImportError> {
    if node
        .output
        .get(1)
        .is_some_and(|o| !o.is_empty() && b.consumers.contains_key(o))
    {
        return Err(ImportError::unsupported(node, "the Indices output"));
    }
    let x = b.dynamic(node, 0)?;
    let full = b.full_shape(&x);
    if full.len() != 4 || x.batch != Some(0) {
        return Err(ImportError::unsupported(
            node,
            format!("only 2-D pooling over [N, C, H, W] is supported; input is {full:?}"),
        ));
    }
    let a = Attrs::new(node);
    let kernel = pair(
        node,
        "kernel_shape",
        Some(
            a.ints("kernel_shape")?
                .ok_or_else(|| ImportError::node(node, "kernel_shape is required"))?,
        ),
        1,
    )?;
    let win = window(node, [x.shape[1], x.shape[2]], kernel)?;
    let [pt, pl, pb, pr] = win.pads;
    let span = |k: usize, d: usize| (k - 1) * d + 1;
    let (sh, sw) = (span(kernel[0], win.dilations[0]), span(kernel[1], win.dilations[1]));
    let (h, w) = (x.shape[1] + pt + pb, x.shape[2] + pl + pr);
    if h < sh || w < sw {
        return Err(ImportError::node(node, "the window is larger than the padded input"));
    }
    let (oh, ow) = ((h - sh) / win.strides[0] + 1, (w - sw) / win.strides[1] + 1);
    if a.int("ceil_mode", 0)? != 0 {
        let (ch, cw) = (
            (h - sh).div_ceil(win.strides[0]) + 1,
            (w - sw).div_ceil(win.strides[1]) + 1,
        );
        if (ch, cw) != (oh, ow) {
            return Err(ImportError::unsupported(node, "ceil_mode adds a partial window here"));
        }
    }
    let op = if node.op_type == "MaxPool" {
        if a.int("storage_order", 0)? != 0 {
            return Err(ImportError::unsupported(node, "storage_order 1"));
        }
        FloatOp::MaxPool(win)
    } else {
        FloatOp::AvgPool {
            window: win,
            count_include_pad: a.int("count_include_pad", 0)? != 0,
        }
    };
    let id = b.materialize(node, &x)?;
    Ok(Value::Dyn(b.push(
        &node.name,
        op,
        vec![id],
        vec![x.shape[0], oh, ow],
        Some(0),
    )))
}

pub fn global_average(b: &mut Builder, node: &NodeProto) -> Result<Value, ImportError> {
    let x = b.dynamic(node, 0)?;
    let full = b.full_shape(&x);
    if full.len() != 4 || x.batch != Some(0) {
        return Err(ImportError::unsupported(
            node,
            format!("only [N, C, H, W] inputs are supported; input is {full:?}"),
        ));
    }
    let id = b.materialize(node, &x)?;
    Ok(Value::Dyn(b.push(
        &node.name,
        FloatOp::GlobalAvgPool,
        vec![id],
        vec![x.shape[0], 1, 1],
        Some(0),
    )))
}

/// ReduceMean of a per-sample tensor (a transformer's mean pooling over tokens): the reduced
/// axes moved last (a Permute where that moves data), viewed as `[kept, reduced, 1]` and
/// averaged by `global_avg_pool`. On a constant it folds.
pub fn reduce_mean(b: &mut Builder, node: &NodeProto) -> Result<Value, ImportError> {
    if let Value::Const(_) = b.required(node, 0)? {
        return super::constant::fold(b, node);
    }
    let x = b.dynamic(node, 0)?;
    let full = b.full_shape(&x);
    let Some((axes, keep)) = super::constant::reduce_axes(node, b.constant(node, 1)?, full.len())? else {
        return Ok(Value::Dyn(x));
    };
    if x.batch.is_some_and(|bt| axes.contains(&bt)) {
        return Err(ImportError::unsupported(node, "a mean over the batch axis"));
    }
    if b.merged(&x) {
        return Err(ImportError::unsupported(
            node,
            "a mean over a tensor whose batch axis a Reshape merged into another",
        ));
    }
    // Axes of one sample: the reduced ones and the kept ones, in order.
    let sample = |a: usize| a - usize::from(x.batch.is_some_and(|bt| bt < a));
    let reduced: Vec<usize> = axes.iter().map(|&a| sample(a)).collect();
    let kept: Vec<usize> = (0..x.shape.len()).filter(|a| !reduced.contains(a)).collect();
    let count = |ax: &[usize]| ax.iter().map(|&a| x.shape[a]).product::<usize>();
    let (c, r) = (count(&kept), count(&reduced));
    if r == 0 {
        return Err(ImportError::node(node, "reduction over an empty axis"));
    }
    let source = b.materialize(node, &x)?;
    let moved: Vec<usize> = kept.iter().chain(&reduced).copied().collect();
    let index = permutation(&x.shape, &moved);
    // Moving axes of size 1 moves no data.
    let order = index.iter().enumerate().any(|(k, &i)| k != i).then_some(index);
    let planes = Dyn {
        id: source,
        shape: vec![c, r, 1],
        batch: x.batch,
        order,
    };
    let id = b.materialize(node, &planes)?;
    let pooled = b.push(&node.name, FloatOp::GlobalAvgPool, vec![id], vec![c, 1, 1], x.batch);
    let mut out: Vec<usize> = full.clone();
    for &a in axes.iter().rev() {
        if keep {
            out[a] = 1;
        } else {
            out.remove(a);
        }
    }
    let batch = x.batch.map(|bt| bt - axes.iter().filter(|&&a| a < bt && !keep).count());
    Ok(Value::Dyn(Dyn {
        shape: Builder::from_full(0, &out, batch).shape,
        batch,
        ..pooled
    }))
}

/// For each element of `shape` with its axes reordered to `moved` (row-major), the index of
/// that element in `shape` (row-major).
fn permutation(shape: &[usize], moved: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for a in (0..shape.len().saturating_sub(1)).rev() {
        strides[a] = strides[a + 1] * shape[a + 1];
    }
    let dims: Vec<usize> = moved.iter().map(|&a| shape[a]).collect();
    let n: usize = dims.iter().product();
    (0..n)
        .map(|mut k| {
            let mut at = 0;
            for (i, &a) in moved.iter().enumerate().rev() {
                at += (k % dims[i]) * strides[a];
                k /= dims[i];
            }
            at
        })
        .collect()
}
