//! Ops that only move data: Reshape, Flatten, Squeeze, Unsqueeze, Transpose (per sample a new
//! shape over the same bytes), Identity, Dropout, Cast; shape arithmetic on constants (Shape,
//! Gather, Concat, Slice, ConstantOfShape), folded at import; Gather of a table by the input's
//! indices → Embedding; Gather and Slice of a per-sample tensor → the elements they pick
//! (a Permute).

use cwnn_layers::EmbeddingF64;
use ndarray::{ArrayD, Axis, Ix2, IxDyn};
use onnx_protobuf::NodeProto;

use super::{axis, dims};
use crate::float::FloatOp;
use crate::onnx::builder::{Builder, Dyn, Value};
use crate::onnx::proto::{dtype, to_array, Attrs};
use crate::onnx::ImportError;

fn ints(c: &ArrayD<f64>) -> Vec<i64> {
    c.iter().map(|&v| v as i64).collect()
}

fn full_of(b: &Builder, v: &Value) -> Vec<usize> {
    match v {
        Value::Const(c) => c.shape().to_vec(),
        Value::Dyn(d) => b.full_shape(d),
    }
}

pub fn pass_through(b: &mut Builder, node: &NodeProto) -> Result<Vec<Value>, ImportError> {
    if node
        .output
        .get(1)
        .is_some_and(|o| !o.is_empty() && b.consumers.contains_key(o))
    {
        return Err(ImportError::unsupported(node, "the mask output"));
    }
    if node.op_type == "Dropout" {
        let training = b.constant(node, 2)?.is_some_and(|t| t.iter().any(|&v| v != 0.0));
        if training {
            return Err(ImportError::unsupported(node, "training_mode = true"));
        }
    }
    Ok(vec![b.required(node, 0)?.clone()])
}

pub fn cast(b: &mut Builder, node: &NodeProto) -> Result<Value, ImportError> {
    let to = Attrs::new(node).int("to", 0)? as i32;
    match b.required(node, 0)?.clone() {
        Value::Const(c) if dtype::is_integer(to) => Ok(Value::Const(if to == dtype::BOOL {
            c.mapv(|v| (v != 0.0) as u8 as f64)
        } else {
            c.mapv(f64::trunc)
        })),
        v @ Value::Const(_) => Ok(v),
        // Float to float (or 16-bit float) changes nothing the int8 layers see.
        v @ Value::Dyn(_) if matches!(to, dtype::FLOAT | dtype::DOUBLE | 10 | 16) => Ok(v),
        Value::Dyn(_) => Err(ImportError::unsupported(
            node,
            format!("cast of a per-sample tensor to type {to}"),
        )),
    }
}

pub fn constant(_: &mut Builder, node: &NodeProto) -> Result<Value, ImportError> {
    constant_value(node).map(Value::Const)
}

/// A Constant node's value, from whichever `value*` attribute it has.
pub(crate) fn constant_value(node: &NodeProto) -> Result<ArrayD<f64>, ImportError> {
    let a = Attrs::new(node);
    if let Some(t) = a.tensor("value")? {
        return to_array(t);
    }
    let scalar = |v: f64| ArrayD::from_elem(IxDyn(&[]), v);
    let vector = |v: Vec<f64>| ArrayD::from_shape_vec(IxDyn(&[v.len()]), v).expect("1-D");
    if a.has("value_float") {
        return Ok(scalar(a.float("value_float", 0.0)?));
    }
    if a.has("value_int") {
        return Ok(scalar(a.int("value_int", 0)? as f64));
    }
    if let Some(v) = a.ints("value_ints")? {
        return Ok(vector(v.into_iter().map(|x| x as f64).collect()));
    }
    if a.has("value_floats") {
        let floats = node
            .attribute
            .iter()
            .find(|x| x.name == "value_floats")
            .map(|x| x.floats.iter().map(|&f| f as f64).collect())
            .unwrap_or_default();
        return Ok(vector(floats));
    }
    Err(ImportError::unsupported(
        node,
        "a Constant without a dense numeric value",
    ))
}

/// The ONNX shape after Reshape / Flatten / Squeeze / Unsqueeze / Transpose, and Transpose's
/// permutation. Squeeze without axes keeps the batch axis `batch`.
fn target(
    b: &Builder,
    node: &NodeProto,
    full: &[usize],
    batch: Option<usize>,
) -> Result<(Vec<usize>, Option<Vec<usize>>), ImportError> {
    let a = Attrs::new(node);
    let rank = full.len();
    let axes = || squeeze_axes(b, node);
    Ok(match node.op_type.as_str() {
        "Reshape" => (reshape_target(b, node, &a, full)?, None),
        "Flatten" => {
            let ax = a.int("axis", 1)?;
            let ax = if ax == rank as i64 { rank } else { axis(node, ax, rank)? };
            (vec![full[..ax].iter().product(), full[ax..].iter().product()], None)
        }
        "Squeeze" => {
            let axes: Vec<usize> = match axes()? {
                Some(v) => v.iter().map(|&x| axis(node, x, rank)).collect::<Result<_, _>>()?,
                None => (0..rank).filter(|&i| full[i] == 1 && Some(i) != batch).collect(),
            };
            if let Some(&bad) = axes.iter().find(|&&i| full[i] != 1) {
                return Err(ImportError::node(node, format!("axis {bad} of {full:?} is not 1")));
            }
            ((0..rank).filter(|i| !axes.contains(i)).map(|i| full[i]).collect(), None)
        }
        "Unsqueeze" => {
            let axes = axes()?.ok_or_else(|| ImportError::node(node, "axes are required"))?;
            let out_rank = rank + axes.len();
            let axes: Vec<usize> = axes
                .iter()
                .map(|&x| axis(node, x, out_rank))
                .collect::<Result<_, _>>()?;
            let mut rest = full.iter();
            let out = (0..out_rank)
                .map(|i| {
                    if axes.contains(&i) {
                        1
                    } else {
                        *rest.next().unwrap_or(&1)
                    }
                })
                .collect();
            (out, None)
        }
        _ => {
            let perm = match a.ints("perm")? {
                Some(p) => dims(node, &p)?,
                None => (0..rank).rev().collect(),
            };
            let mut sorted = perm.clone();
            sorted.sort_unstable();
            if sorted != (0..rank).collect::<Vec<_>>() {
                return Err(ImportError::node(
                    node,
                    format!("perm {perm:?} is not a permutation of {rank} axes"),
                ));
            }
            (perm.iter().map(|&p| full[p]).collect(), Some(perm))
        }
    })
}

/// Reshape's target: 0 copies the input's axis (unless `allowzero`), one −1 is inferred.
fn reshape_target(b: &Builder, node: &NodeProto, a: &Attrs, full: &[usize]) -> Result<Vec<usize>, ImportError> {
    let numel: usize = full.iter().product();
    let spec = if b.opset < 5 {
        a.ints("shape")?
            .ok_or_else(|| ImportError::node(node, "shape is required"))?
    } else {
        ints(b.required_const(node, 1)?)
    };
    let allow_zero = a.int("allowzero", 0)? != 0;
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &s) in spec.iter().enumerate() {
        match s {
            0 if !allow_zero => out.push(
                *full
                    .get(i)
                    .ok_or_else(|| ImportError::node(node, format!("0 at axis {i} copies no input axis")))?,
            ),
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            s if s >= 0 => out.push(s as usize),
            s => return Err(ImportError::node(node, format!("bad target dimension {s}"))),
        }
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || !numel.is_multiple_of(known) {
            return Err(ImportError::node(
                node,
                format!("cannot infer -1 of {spec:?} from {full:?}"),
            ));
        }
        out[i] = numel / known;
    }
    if out.iter().product::<usize>() != numel {
        return Err(ImportError::node(node, format!("{full:?} cannot become {spec:?}")));
    }
    Ok(out)
}

pub fn reshape(b: &mut Builder, node: &NodeProto) -> Result<Value, ImportError> {
    let x = b.required(node, 0)?.clone();
    let full = full_of(b, &x);
    let batch = match &x {
        Value::Dyn(d) => d.batch,
        Value::Const(_) => None,
    };
    let (out, perm) = target(b, node, &full, batch)?;
    let d = match x {
        Value::Const(c) => {
            let c = match &perm {
                Some(p) => c.permuted_axes(IxDyn(p)).as_standard_layout().to_owned(),
                None => c,
            };
            let c = c.as_standard_layout().to_owned().into_shape_with_order(IxDyn(&out));
            return Ok(Value::Const(c.map_err(|e| ImportError::node(node, e.to_string()))?));
        }
        Value::Dyn(d) => d,
    };
    if let Some(p) = &perm {
        return Ok(Value::Dyn(transposed(b, node, &d, p)?));
    }
    let order = d.order.clone();
    let batch = match d.batch {
        // Back from a merged batch: `[N·T, …]` → `[N, T, …]`, `[T·N, d]` → `[T, N, d]`; else
        // the first size-1 axis among others of size 1 that come (tf2onnx's `[N·T, d]` →
        // `[N, T, d, 1, 1]` before a Squeeze).
        None if b.merged(&d) => {
            let rest = |j: usize| out[..j].iter().chain(&out[j + 1..]).copied().collect::<Vec<_>>();
            let big = |s: &[usize]| s.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>();
            let at = |same: &dyn Fn(usize) -> bool| (0..out.len()).find(|&j| out[j] == b.batch_size && same(j));
            at(&|j| rest(j) == full).or_else(|| at(&|j| big(&rest(j)) == big(&full)))
        }
        None => None,
        Some(bt) if node.op_type == "Squeeze" => Some(bt - squeezed_before(b, node, &full, bt)?),
        Some(bt) if node.op_type == "Unsqueeze" => {
            // The bt-th axis that was not inserted.
            let axes: Vec<usize> = squeeze_axes(b, node)?
                .unwrap_or_default()
                .iter()
                .map(|&x| axis(node, x, out.len()))
                .collect::<Result<_, _>>()?;
            (0..out.len()).filter(|i| !axes.contains(i)).nth(bt)
        }
        Some(bt) => match (b.batch_size, kept_batch(&full, bt, &out)) {
            (_, Some(j)) => Some(j),
            // The batch merged into another axis: per sample (one sample on chain) a no-op.
            (1, None) => None,
            _ => {
                return Err(ImportError::unsupported(
                    node,
                    format!("{full:?} → {out:?} does not keep the batch axis whole"),
                ))
            }
        },
    };
    let d = Dyn {
        order,
        ..Builder::from_full(d.id, &out, batch)
    };
    if let Some(bt) = batch {
        if out[bt] != b.batch_size {
            return Err(ImportError::unsupported(node, "the batch axis would change size"));
        }
    }
    Ok(Value::Dyn(d))
}

/// `d` with its ONNX axes in the order `perm`, as a Transpose writes them. Data order is
/// kept when the axes other than the batch and size-1 axes keep their order (e.g.
/// `[N, T, F] → [T, N, F]` before an LSTM); otherwise the new order is recorded, for a Dense
/// or a MatMul to absorb or a Permute to make.
pub(crate) fn transposed(b: &Builder, node: &NodeProto, d: &Dyn, perm: &[usize]) -> Result<Dyn, ImportError> {
    let full = b.full_shape(d);
    let out: Vec<usize> = perm.iter().map(|&p| full[p]).collect();
    let real: Vec<usize> = perm
        .iter()
        .copied()
        .filter(|&i| Some(i) != d.batch && full[i] != 1)
        .collect();
    let order = match real.windows(2).any(|w| w[0] > w[1]) {
        true => Some(reordered(node, &full, d.batch, perm, d.order.as_deref())?),
        false => d.order.clone(),
    };
    let batch = d.batch.and_then(|bt| perm.iter().position(|&i| i == bt));
    Ok(Dyn {
        order,
        ..Builder::from_full(d.id, &out, batch)
    })
}

/// Where the batch axis `bt` of `full` lands in `out` when the Reshape keeps it whole: the
/// first axis of `out` of the batch's size with as many elements before it as before the
/// batch (a Reshape that splits or merges other axes, or adds or drops size-1 axes, as
/// PyTorch does to an LSTM's direction axis). None when the batch merges into another axis.
fn kept_batch(full: &[usize], bt: usize, out: &[usize]) -> Option<usize> {
    let before: usize = full[..bt].iter().product();
    (0..out.len()).find(|&j| out[j] == full[bt] && out[..j].iter().product::<usize>() == before)
}

/// A Slice of the last time step of a recurrent layer's sequence output, as tf2onnx writes a
/// Keras LSTM / GRU / RNN without `return_sequences`. Any other Slice of a per-sample tensor
/// is refused by name.
fn last_step(b: &mut Builder, node: &NodeProto, d: Dyn) -> Result<Value, ImportError> {
    let (starts, ends, axes, steps) = (
        ints(b.required_const(node, 1)?),
        ints(b.required_const(node, 2)?),
        b.constant(node, 3)?.map(ints).unwrap_or_else(|| vec![0]),
        b.constant(node, 4)?.map(ints).unwrap_or_else(|| vec![1]),
    );
    let steps_n = d.shape.first().copied().unwrap_or(0) as i64;
    let to_end = ends.len() == 1 && ends[0] >= steps_n && steps[..] == [1];
    match (&starts[..], &axes[..], to_end) {
        (&[start], &[ax], true) => keep_last_step(b, node, d, ax, start, true),
        _ => Err(ImportError::unsupported(node, "Slice of a per-sample tensor")),
    }
}

/// Step `index` (which must be the last) on ONNX axis `ax` of `d`, the sequence output of a
/// recurrent layer nothing else reads: the layer returns only its last output instead, so
/// nothing is computed for the other steps. `keep` keeps the axis (Slice) or drops it
/// (Gather of a scalar index, PyTorch's `y[:, -1]`).
fn keep_last_step(
    b: &mut Builder,
    node: &NodeProto,
    d: Dyn,
    ax: i64,
    index: i64,
    keep: bool,
) -> Result<Value, ImportError> {
    let refuse = || {
        ImportError::unsupported(
            node,
            "a step of a per-sample tensor (only the last step of a recurrent layer's sequence is supported)",
        )
    };
    let time_axis = usize::from(d.batch == Some(0)) as i64;
    let rank = d.shape.len() as i64 + i64::from(d.batch.is_some());
    let steps = d.shape.first().copied().unwrap_or(0) as i64;
    let ax = if ax < 0 { ax + rank } else { ax };
    let i = b
        .fusable(node, 0, &d)
        .filter(|_| d.shape.len() == 2 && d.order.is_none());
    let Some(i) = i.filter(|_| ax == time_axis && (index == -1 || index == steps - 1)) else {
        return Err(refuse());
    };
    let hidden = d.shape[1];
    match &mut b.nodes[i].op {
        FloatOp::Recurrent(r) if r.sequence_output && !r.reverse => r.sequence_output = false,
        _ => return Err(refuse()),
    }
    b.set_shape(d.id, vec![hidden]);
    let shape = if keep { vec![1, hidden] } else { vec![hidden] };
    let batch = match (keep, d.batch) {
        (false, Some(bt)) if bt as i64 > ax => Some(bt - 1),
        (_, bt) => bt,
    };
    Ok(Value::Dyn(Dyn { shape, batch, ..d }))
}

/// The order of a sample after Transpose `perm` of the full shape `full` (batch axis at
/// `batch`): element `k` of the transposed sample is element `order[k]` of the data, where
/// `before` is the order the input already had (none: the data's own).
fn reordered(
    node: &NodeProto,
    full: &[usize],
    batch: Option<usize>,
    perm: &[usize],
    before: Option<&[usize]>,
) -> Result<Vec<usize>, ImportError> {
    // The permutation of the sample's axes: output sample axis j reads input sample axis src[j].
    let sample_axis = |a: usize| a - usize::from(batch.is_some_and(|b| b < a));
    let src: Vec<usize> = perm
        .iter()
        .filter(|&&a| Some(a) != batch)
        .map(|&a| sample_axis(a))
        .collect();
    let shape: Vec<usize> = (0..full.len()).filter(|&a| Some(a) != batch).map(|a| full[a]).collect();
    let n: usize = shape.iter().product();
    if n > 1 << 24 {
        return Err(ImportError::unsupported(
            node,
            "a reordering Transpose of more than 2^24 values",
        ));
    }
    // Row-major strides of the input sample, read in the output's axis order.
    let mut strides = vec![1usize; shape.len()];
    for a in (0..shape.len().saturating_sub(1)).rev() {
        strides[a] = strides[a + 1] * shape[a + 1];
    }
    let out_shape: Vec<usize> = src.iter().map(|&a| shape[a]).collect();
    let out_strides: Vec<usize> = src.iter().map(|&a| strides[a]).collect();
    let mut order = Vec::with_capacity(n);
    let mut index = vec![0usize; out_shape.len()];
    for _ in 0..n {
        let flat: usize = index.iter().zip(&out_strides).map(|(i, s)| i * s).sum();
        order.push(before.map_or(flat, |o| o[flat]));
        for a in (0..index.len()).rev() {
            index[a] += 1;
            if index[a] < out_shape[a] {
                break;
            }
            index[a] = 0;
        }
    }
    Ok(order)
}

/// Squeeze's and Unsqueeze's axes: an attribute before opset 13, an input since.
fn squeeze_axes(b: &Builder, node: &NodeProto) -> Result<Option<Vec<i64>>, ImportError> {
    match b.opset < 13 {
        true => Attrs::new(node).ints("axes"),
        false => Ok(b.constant(node, 1)?.map(ints)),
    }
}

/// How many squeezed axes come before the batch axis `bt` (which may not be squeezed).
fn squeezed_before(b: &Builder, node: &NodeProto, full: &[usize], bt: usize) -> Result<usize, ImportError> {
    let axes: Vec<usize> = match squeeze_axes(b, node)? {
        Some(v) => v.iter().map(|&x| axis(node, x, full.len())).collect::<Result<_, _>>()?,
        None => (0..full.len()).filter(|&i| full[i] == 1 && i != bt).collect(),
    };
    if axes.contains(&bt) {
        return Err(ImportError::unsupported(node, "squeezing the batch axis"));
    }
    Ok(axes.iter().filter(|&&i| i < bt).count())
}

pub fn gather(b: &mut Builder, node: &NodeProto) -> Result<Value, ImportError> {
    let ax = Attrs::new(node).int("axis", 0)?;
    let data = b.required(node, 0)?.clone();
    let idx = b.required(node, 1)?.clone();
    match (data, idx) {
        (Value::Const(data), Value::Const(idx)) => Ok(Value::Const(gather_const(node, &data, &idx, ax)?)),
        (Value::Const(table), Value::Dyn(d)) => {
            if ax != 0 || d.id != 0 || d.order.is_some() {
                return Err(ImportError::unsupported(
                    node,
                    "Gather maps to Embedding only on axis 0 with the model's integer input as indices \
                     (not a selection of them)",
                ));
            }
            let table = table
                .into_dimensionality::<Ix2>()
                .map_err(|_| ImportError::unsupported(node, "Embedding tables must be 2-D"))?;
            let dim = table.ncols();
            let mut shape = d.shape.clone();
            shape.push(dim);
            let id = b.materialize(node, &d)?;
            Ok(Value::Dyn(b.push(
                &node.name,
                FloatOp::Embedding(EmbeddingF64 { table }),
                vec![id],
                shape,
                d.batch,
            )))
        }
        (Value::Dyn(d), Value::Const(idx)) => {
            let index = idx.iter().next().copied().unwrap_or(0.0) as i64;
            if idx.ndim() == 0 {
                if let Ok(v) = keep_last_step(b, node, d.clone(), ax, index, false) {
                    return Ok(v);
                }
            }
            let ax_u = axis(node, ax, b.full_shape(&d).len())?;
            if d.batch == Some(ax_u) {
                return Err(ImportError::unsupported(node, "a Gather along the batch axis"));
            }
            // The axes after `ax` shift by the index's rank less the one it replaces.
            let batch = d.batch.map(|bt| if bt < ax_u { bt } else { bt + idx.ndim() - 1 });
            let picked = gather_const(node, &numbers(&b, node, &d)?, &idx, ax)?;
            selected(&b, node, &d, picked, batch)
        }
        _ => Err(ImportError::unsupported(
            node,
            "Gather of a per-sample tensor by per-sample indices",
        )),
    }
}

/// Split: pieces along `axis`, of the sizes given (an input since opset 13, an attribute
/// before) or equal (the last smaller with opset 18's `num_outputs`). On a per-sample tensor
/// (packed Q/K/V split by `chunk`) each piece is a selection, like a Slice.
pub fn split(b: &mut Builder, node: &NodeProto) -> Result<Vec<Value>, ImportError> {
    let x = b.required(node, 0)?.clone();
    let full = full_of(b, &x);
    let ax = axis(node, Attrs::new(node).int("axis", 0)?, full.len())?;
    let sizes = match b.opset < 13 {
        true => Attrs::new(node).ints("split")?,
        false => b.constant(node, 1)?.map(ints),
    };
    let n = full[ax];
    let sizes = match sizes {
        Some(s) => dims(node, &s)?,
        None => {
            let k = node.output.len().max(1);
            let each = n.div_ceil(k);
            (0..k).map(|i| each.min(n.saturating_sub(i * each))).collect()
        }
    };
    if sizes.iter().sum::<usize>() != n {
        return Err(ImportError::node(
            node,
            format!("pieces {sizes:?} do not add up to {n}"),
        ));
    }
    let (data, d) = match x {
        Value::Const(c) => (c, None),
        Value::Dyn(d) if d.batch == Some(ax) => {
            return Err(ImportError::unsupported(node, "a Split along the batch axis"))
        }
        Value::Dyn(d) => (numbers(b, node, &d)?, Some(d)),
    };
    let mut start = 0;
    let mut out = Vec::with_capacity(sizes.len());
    for size in sizes {
        let piece = data.select(Axis(ax), &(start..start + size).collect::<Vec<_>>());
        start += size;
        out.push(match &d {
            None => Value::Const(piece),
            Some(d) => selected(b, node, d, piece, d.batch)?,
        });
    }
    Ok(out)
}

/// ONNX Gather on constants: the entries `idx` of `data` along axis `ax`.
fn gather_const(node: &NodeProto, data: &ArrayD<f64>, idx: &ArrayD<f64>, ax: i64) -> Result<ArrayD<f64>, ImportError> {
    let ax = axis(node, ax, data.ndim())?;
    let n = data.shape()[ax] as i64;
    let rows = idx
        .iter()
        .map(|&i| {
            let i = i as i64;
            let j = if i < 0 { i + n } else { i };
            usize::try_from(j)
                .ok()
                .filter(|&j| (j as i64) < n)
                .ok_or_else(|| ImportError::node(node, format!("index {i} is outside {n}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let picked = data.select(Axis(ax), &rows);
    let mut shape = data.shape()[..ax].to_vec();
    shape.extend_from_slice(idx.shape());
    shape.extend_from_slice(&data.shape()[ax + 1..]);
    let picked = picked
        .as_standard_layout()
        .to_owned()
        .into_shape_with_order(IxDyn(&shape));
    picked.map_err(|e| ImportError::node(node, e.to_string()))
}

/// A Gather or Slice of a per-sample tensor (BERT's and ViT's CLS token, `x[:, 0]`): the same
/// op on constants, applied to the sample's element numbers (this), gives the elements kept;
/// [`selected`] makes them the value's `order`, which a Permute materializes. The batch axis
/// has size 1 here.
fn numbers(b: &Builder, node: &NodeProto, d: &Dyn) -> Result<ArrayD<f64>, ImportError> {
    let mut full = b.full_shape(d);
    if let Some(bt) = d.batch {
        full[bt] = 1;
    }
    let n: usize = d.shape.iter().product();
    if n > 1 << 24 {
        return Err(ImportError::unsupported(
            node,
            "a Gather or Slice of more than 2^24 values",
        ));
    }
    let numbers = (0..n).map(|k| d.order.as_ref().map_or(k, |o| o[k]) as f64).collect();
    ArrayD::from_shape_vec(IxDyn(&full), numbers).map_err(|e| ImportError::node(node, e.to_string()))
}

/// The value holding the elements of `d` that `picked` (from [`numbers`]) names, with its
/// batch axis at `batch`.
fn selected(
    b: &Builder,
    node: &NodeProto,
    d: &Dyn,
    picked: ArrayD<f64>,
    batch: Option<usize>,
) -> Result<Value, ImportError> {
    if picked.is_empty() {
        return Err(ImportError::unsupported(
            node,
            "a Gather or Slice that keeps no element",
        ));
    }
    let mut out = picked.shape().to_vec();
    if let Some(bt) = batch {
        out[bt] = b.batch_size;
    }
    Ok(Value::Dyn(Dyn {
        order: Some(picked.iter().map(|&v| v as usize).collect()),
        ..Builder::from_full(d.id, &out, batch)
    }))
}

/// Shape, Concat, Slice, ConstantOfShape: shape arithmetic, folded to constants.
pub fn fold(b: &mut Builder, node: &NodeProto) -> Result<Value, ImportError> {
    let a = Attrs::new(node);
    let vector = |v: Vec<f64>| ArrayD::from_shape_vec(IxDyn(&[v.len()]), v).expect("1-D");
    match node.op_type.as_str() {
        "Shape" => {
            let full = full_of(b, b.required(node, 0)?);
            let r = full.len() as i64;
            let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
            let (s, e) = (clampi(a.int("start", 0)?), clampi(a.int("end", r)?));
            Ok(Value::Const(vector(
                full[s..e.max(s)].iter().map(|&d| d as f64).collect(),
            )))
        }
        "ConstantOfShape" => {
            let shape = dims(node, &ints(b.required_const(node, 0)?))?;
            super::check_size(node, &shape)?;
            let v = match a.tensor("value")? {
                Some(t) => to_array(t)?.iter().next().copied().unwrap_or(0.0),
                None => 0.0,
            };
            Ok(Value::Const(ArrayD::from_elem(IxDyn(&shape), v)))
        }
        "Concat" => {
            let mut parts = Vec::new();
            for i in 0..node.input.len() {
                parts.push(b.required_const(node, i)?.clone());
            }
            let rank = parts.first().map_or(1, |p| p.ndim());
            if parts.iter().any(|p| p.ndim() != rank) {
                return Err(ImportError::node(node, "inputs of different ranks"));
            }
            let ax = axis(node, a.int("axis", 0)?, rank)?;
            let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
            Ok(Value::Const(
                ndarray::concatenate(Axis(ax), &views).map_err(|e| ImportError::node(node, e.to_string()))?,
            ))
        }
        _ => {
            if let Value::Dyn(d) = b.required(node, 0)? {
                let d = d.clone();
                if let Ok(v) = last_step(b, node, d.clone()) {
                    return Ok(v);
                }
                let rank = b.full_shape(&d).len();
                for ax in slice_axes(b, node)? {
                    if d.batch == Some(axis(node, ax, rank)?) {
                        return Err(ImportError::unsupported(node, "a Slice along the batch axis"));
                    }
                }
                let picked = slice_const(b, node, numbers(b, node, &d)?)?;
                return selected(b, node, &d, picked, d.batch);
            }
            let data = b.required_const(node, 0)?.clone();
            Ok(Value::Const(slice_const(b, node, data)?))
        }
    }
}

/// Slice's `axes` (all of `starts`' when absent).
fn slice_axes(b: &Builder, node: &NodeProto) -> Result<Vec<i64>, ImportError> {
    let (starts, axes) = match b.opset < 10 {
        true => (
            Attrs::new(node).ints("starts")?.unwrap_or_default(),
            Attrs::new(node).ints("axes")?,
        ),
        false => (ints(b.required_const(node, 1)?), b.constant(node, 3)?.map(ints)),
    };
    Ok(axes.unwrap_or_else(|| (0..starts.len() as i64).collect()))
}

/// ONNX Slice (steps of 1) on a constant.
fn slice_const(b: &Builder, node: &NodeProto, data: ArrayD<f64>) -> Result<ArrayD<f64>, ImportError> {
    let a = Attrs::new(node);
    let rank = data.ndim();
    let (starts, ends, axes, steps) = if b.opset < 10 {
        (
            a.ints("starts")?.unwrap_or_default(),
            a.ints("ends")?.unwrap_or_default(),
            a.ints("axes")?,
            None,
        )
    } else {
        (
            ints(b.required_const(node, 1)?),
            ints(b.required_const(node, 2)?),
            b.constant(node, 3)?.map(ints),
            b.constant(node, 4)?.map(ints),
        )
    };
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let mut out = data;
    for (k, &ax) in axes.iter().enumerate() {
        let ax = axis(node, ax, rank)?;
        let step = steps.as_ref().and_then(|s| s.get(k).copied()).unwrap_or(1);
        let n = out.shape()[ax] as i64;
        let (start, end) = (*starts.get(k).unwrap_or(&0), *ends.get(k).unwrap_or(&n));
        let kept = slice_indices(start, end, step, n).ok_or_else(|| ImportError::node(node, "a step of 0"))?;
        out = out.select(Axis(ax), &kept);
    }
    Ok(out)
}

/// The indices ONNX Slice keeps on an axis of `n`: from `start` by `step` up to (not
/// including) `end`, negative values counting from the end, clamped as the spec says (to
/// `[0, n]` going forward, to `[-1, n - 1]` going backward). None for a step of 0.
fn slice_indices(start: i64, end: i64, step: i64, n: i64) -> Option<Vec<usize>> {
    if step == 0 {
        return None;
    }
    if n == 0 {
        return Some(Vec::new());
    }
    let from_end = |v: i64| if v < 0 { v.saturating_add(n) } else { v };
    let (lo, hi) = if step > 0 { (0, n) } else { (-1, n - 1) };
    let (mut i, end) = (from_end(start).clamp(lo.max(0), hi), from_end(end).clamp(lo, hi));
    let mut kept = Vec::new();
    while (step > 0 && i < end) || (step < 0 && i > end) {
        kept.push(i as usize);
        // A step past i64's range ends the slice.
        let Some(next) = i.checked_add(step) else { break };
        i = next;
    }
    Some(kept)
}

#[cfg(test)]
mod tests {
    use super::slice_indices;

    #[test]
    fn slice_indices_follow_onnx_clamping() {
        assert_eq!(slice_indices(1, 4, 1, 5), Some(vec![1, 2, 3]));
        assert_eq!(slice_indices(-1, i64::MIN, -1, 4), Some(vec![3, 2, 1, 0]));
        assert_eq!(slice_indices(10, 0, -2, 5), Some(vec![4, 2]));
        assert_eq!(slice_indices(1, 5, i64::MAX, 5), Some(vec![1]));
        assert_eq!(slice_indices(-1, i64::MIN, -1, 0), Some(vec![]));
        assert_eq!(slice_indices(0, 3, 0, 3), None);
    }
}
