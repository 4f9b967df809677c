//! LSTM, GRU, RNN → one recurrent layer (one direction, default activations).

use cwnn_layers::{CellF64, RecurrentF64};
use ndarray::{Array1, Array2, ArrayD, Axis};
use onnx_protobuf::NodeProto;

use crate::float::FloatOp;
use crate::onnx::builder::{Builder, Dyn, Value};
use crate::onnx::proto::Attrs;
use crate::onnx::ImportError;

/// Direction 0 of a `[dirs, ...]` constant as a matrix.
fn first_matrix(
    node: &NodeProto,
    name: &str,
    c: &ArrayD<f64>,
    rows: usize,
    cols: usize,
) -> Result<Array2<f64>, ImportError> {
    if c.shape() != [1, rows, cols] {
        return Err(ImportError::node(
            node,
            format!("{name} has shape {:?}, expected [1, {rows}, {cols}]", c.shape()),
        ));
    }
    Ok(c.index_axis(Axis(0), 0)
        .to_owned()
        .into_dimensionality()
        .expect("checked rank"))
}

/// An initial state `[1, N, H]` that is the same for every sample.
fn initial(
    node: &NodeProto,
    name: &str,
    c: Option<&ArrayD<f64>>,
    h: usize,
) -> Result<Option<Array1<f64>>, ImportError> {
    let Some(c) = c else { return Ok(None) };
    if c.ndim() != 3 || c.shape()[0] != 1 || c.shape()[2] != h {
        return Err(ImportError::node(node, format!("{name} has shape {:?}", c.shape())));
    }
    let first: Array1<f64> = Array1::from_iter(c.index_axis(Axis(0), 0).index_axis(Axis(0), 0).iter().copied());
    if c.index_axis(Axis(0), 0)
        .outer_iter()
        .any(|row| row.iter().ne(first.iter()))
    {
        return Err(ImportError::unsupported(
            node,
            format!("{name} differs between samples"),
        ));
    }
    Ok(Some(first))
}

/// The layer and which output (0: Y, 1: Y_h) it stands for.
pub fn recurrent(b: &mut Builder, node: &NodeProto) -> Result<(usize, Value), ImportError> {
    let a = Attrs::new(node);
    let direction = a.string("direction", "forward")?;
    let reverse = match direction.as_str() {
        "forward" => false,
        "reverse" => true,
        "bidirectional" => return Err(ImportError::unsupported(node, "bidirectional")),
        other => return Err(ImportError::node(node, format!("direction '{other}'"))),
    };
    // tf2onnx spells the default activations out; anything else is a custom cell.
    let defaults: &[&str] = match node.op_type.as_str() {
        "LSTM" => &["sigmoid", "tanh", "tanh"],
        "GRU" => &["sigmoid", "tanh"],
        _ => &["tanh"],
    };
    let activations = a.strings("activations")?;
    let default_activations = activations.is_none_or(|v| {
        v.iter()
            .map(|s| s.to_lowercase())
            .eq(defaults.iter().map(|s| s.to_string()))
    });
    if !default_activations || a.has("clip") || a.int("input_forget", 0)? != 0 {
        return Err(ImportError::unsupported(
            node,
            "custom activations, clip or input_forget (only the defaults are supported)",
        ));
    }
    let layout = a.int("layout", 0)?;
    let x = b.dynamic(node, 0)?;
    let full = b.full_shape(&x);
    let batch_at = if layout == 0 { 1 } else { 0 };
    if full.len() != 3 || x.batch != Some(batch_at) {
        return Err(ImportError::unsupported(
            node,
            format!("X must be a sequence with the batch on axis {batch_at}; it is {full:?}"),
        ));
    }
    let (t, f) = (x.shape[0], x.shape[1]);
    let used = |i: usize| {
        node.output
            .get(i)
            .is_some_and(|o| !o.is_empty() && b.consumers.contains_key(o))
    };
    if used(2) {
        return Err(ImportError::unsupported(node, "the Y_c output"));
    }
    if used(0) && used(1) {
        return Err(ImportError::unsupported(node, "both Y and Y_h are read; use one"));
    }
    let sequence_output = used(0);
    let rec = RecurrentF64 {
        reverse,
        sequence_output,
        ..cell(b, node, &a, t, f)?
    };
    let hidden = rec.hidden();
    let id = b.materialize(node, &x)?;
    let (shape, onnx_shape) = if sequence_output {
        (vec![t, hidden], vec![t, 1, hidden])
    } else {
        (vec![hidden], vec![1, hidden])
    };
    let y = b.push(&node.name, FloatOp::Recurrent(rec), vec![id], shape, None);
    // Y is [T, 1, N, H] (layout 0) or [N, T, 1, H]; Y_h is [1, N, H] or [N, 1, H].
    let batch = match (sequence_output, layout) {
        (true, 0) => 2,
        (false, 0) => 1,
        _ => 0,
    };
    let out = Value::Dyn(Dyn {
        shape: onnx_shape,
        batch: Some(batch),
        ..y
    });
    Ok((if sequence_output { 0 } else { 1 }, out))
}

/// The cell's parameters for a sequence of `t` steps of `f` features: W, R, biases, initial
/// state and peepholes (forward, last output only; the caller sets both).
fn cell(b: &Builder, node: &NodeProto, a: &Attrs, t: usize, f: usize) -> Result<RecurrentF64, ImportError> {
    let op = node.op_type.as_str();
    let gates = match op {
        "LSTM" => 4,
        "GRU" => 3,
        _ => 1,
    };
    let w = b.required_const(node, 1)?.clone();
    let hidden = w.shape().get(1).copied().unwrap_or(0) / gates;
    if hidden == 0 || a.int("hidden_size", hidden as i64)? != hidden as i64 {
        return Err(ImportError::node(node, "hidden_size does not match W"));
    }
    let w = first_matrix(node, "W", &w, gates * hidden, f)?;
    let r = first_matrix(node, "R", b.required_const(node, 2)?, gates * hidden, hidden)?;
    let (bw, br) = match b.constant(node, 3)? {
        None => (Array1::zeros(gates * hidden), Array1::zeros(gates * hidden)),
        Some(bias) if bias.shape() == [1, 2 * gates * hidden] => {
            let v: Vec<f64> = bias.iter().copied().collect();
            let (lo, hi) = v.split_at(gates * hidden);
            (Array1::from(lo.to_vec()), Array1::from(hi.to_vec()))
        }
        Some(bias) => return Err(ImportError::node(node, format!("B has shape {:?}", bias.shape()))),
    };
    if let Some(lens) = b.constant(node, 4)? {
        if lens.iter().any(|&l| l as usize != t) {
            return Err(ImportError::unsupported(
                node,
                "sequence_lens shorter than the sequence",
            ));
        }
    }
    let h0 = initial(node, "initial_h", b.constant(node, 5)?, hidden)?;
    let (c0, peepholes) = if op == "LSTM" {
        let c0 = initial(node, "initial_c", b.constant(node, 6)?, hidden)?;
        let p = match b.constant(node, 7)? {
            None => None,
            Some(p) if p.shape() == [1, 3 * hidden] => Some(Array1::from_iter(p.iter().copied())),
            Some(p) => return Err(ImportError::node(node, format!("P has shape {:?}", p.shape()))),
        };
        (c0, p)
    } else {
        (None, None)
    };
    let cell = match op {
        "LSTM" => CellF64::Lstm,
        "GRU" => CellF64::Gru {
            linear_before_reset: a.int("linear_before_reset", 0)? != 0,
        },
        _ => CellF64::Rnn,
    };
    Ok(RecurrentF64 {
        cell,
        w,
        r,
        bw,
        br,
        peepholes,
        h0,
        c0,
        reverse: false,
        sequence_output: false,
    })
}
