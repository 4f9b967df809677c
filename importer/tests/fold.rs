//! Constant folding of the shape and state arithmetic exporters emit (Expand, Tile, Range,
//! Equal, Where, Reduce*): each graph adds a folded constant to the input, so the imported
//! f64 model must compute `x + c` with the constant as ONNX defines it; on a per-sample tensor
//! the same ops are named errors.

use cwnn_importer::onnx::{self, ImportError, Options};
use ndarray::{ArrayD, IxDyn};
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_shape_proto::{dimension, Dimension};
use onnx_protobuf::{
    type_proto, AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

fn tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = dims.to_vec();
    t.data_type = 1;
    t.float_data = values.to_vec();
    t
}

fn ints(name: &str, dims: &[i64], values: &[i64]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = dims.to_vec();
    t.data_type = 7;
    t.int64_data = values.to_vec();
    t
}

fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.name = output.into();
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = vec![output.into()];
    n.attribute = attrs;
    n
}

fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INTS.into();
    a.ints = v.to_vec();
    a
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INT.into();
    a.i = v;
    a
}

fn value(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    shape.dim = dims
        .iter()
        .map(|d| {
            let mut dim = Dimension::new();
            dim.value = Some(match d {
                Some(v) => dimension::Value::DimValue(*v),
                None => dimension::Value::DimParam("N".into()),
            });
            dim
        })
        .collect();
    let mut t = type_proto::Tensor::new();
    t.elem_type = 1;
    t.shape = Some(shape).into();
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(t));
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_ = Some(ty).into();
    v
}

/// `y = x + c` for an input `x` of shape `[N, 3]`, with `c` computed by `nodes` from
/// `initializers`.
fn model(nodes: Vec<NodeProto>, initializers: Vec<TensorProto>) -> Vec<u8> {
    let mut g = GraphProto::new();
    g.name = "fold".into();
    g.node = nodes;
    g.node.push(node("Add", &["x", "c"], "y", vec![]));
    g.initializer = initializers;
    g.input = vec![value("x", &[None, Some(3)])];
    g.output = vec![value("y", &[None, Some(3)])];
    bytes(g, 17)
}

/// `g` as a model at `opset`, encoded.
fn bytes(g: GraphProto, opset: i64) -> Vec<u8> {
    let mut id = OperatorSetIdProto::new();
    id.version = opset;
    let mut m = ModelProto::new();
    m.ir_version = 8;
    m.opset_import = vec![id];
    m.graph = Some(g).into();
    m.write_to_bytes().unwrap()
}

/// The folded constant: the imported model's output minus its input.
fn folded(bytes: &[u8]) -> Vec<f64> {
    let m = onnx::import(bytes, &Options::default()).unwrap();
    let x = ArrayD::from_shape_vec(IxDyn(&[3]), vec![0.5, -1.0, 2.0]).unwrap();
    (m.forward(&x) - &x).iter().copied().collect()
}

#[test]
fn expand_then_reduce_sum() {
    // Expand [1, 2, 3] to [2, 3], then sum over axis 0 (axes as an input, opset 13+).
    let nodes = vec![
        node("Expand", &["v", "shape"], "e", vec![]),
        node("ReduceSum", &["e", "axis0"], "c", vec![attr_int("keepdims", 0)]),
    ];
    let inits = vec![
        tensor("v", &[3], &[1.0, 2.0, 3.0]),
        ints("shape", &[2], &[2, 1]),
        ints("axis0", &[1], &[0]),
    ];
    assert_eq!(folded(&model(nodes, inits)), [2.0, 4.0, 6.0]);
}

#[test]
fn where_equal_range_and_tile() {
    // Where(Range(0, 3, 1) == [0, 5, 2], Tile([7], 3), [1, 2, 3]) = [7, 2, 7].
    let nodes = vec![
        node("Range", &["start", "limit", "delta"], "r", vec![]),
        node("Equal", &["r", "probe"], "mask", vec![]),
        node("Tile", &["seven", "three"], "sevens", vec![]),
        node("Where", &["mask", "sevens", "v"], "c", vec![]),
    ];
    let inits = vec![
        tensor("start", &[], &[0.0]),
        tensor("limit", &[], &[3.0]),
        tensor("delta", &[], &[1.0]),
        tensor("probe", &[3], &[0.0, 5.0, 2.0]),
        tensor("seven", &[1], &[7.0]),
        ints("three", &[1], &[3]),
        tensor("v", &[3], &[1.0, 2.0, 3.0]),
    ];
    assert_eq!(folded(&model(nodes, inits)), [7.0, 2.0, 7.0]);
}

#[test]
fn reduce_mean_max_min_prod_over_attribute_axes() {
    let m = [1.0, 2.0, 3.0, 4.0, -1.0, 6.0];
    for (op, want) in [
        ("ReduceMean", [2.5, 0.5, 4.5]),
        ("ReduceMax", [4.0, 2.0, 6.0]),
        ("ReduceMin", [1.0, -1.0, 3.0]),
        ("ReduceProd", [4.0, -2.0, 18.0]),
    ] {
        let nodes = vec![node(
            op,
            &["m"],
            "c",
            vec![attr_ints("axes", &[0]), attr_int("keepdims", 0)],
        )];
        assert_eq!(folded(&model(nodes, vec![tensor("m", &[2, 3], &m)])), want, "{op}");
    }
}

#[test]
fn folds_are_named_errors_on_per_sample_tensors_and_bad_constants() {
    let per_sample = model(
        vec![node("Expand", &["x", "shape"], "c", vec![])],
        vec![ints("shape", &[2], &[1, 3])],
    );
    let e = onnx::import(&per_sample, &Options::default()).unwrap_err();
    assert!(matches!(e, ImportError::Unsupported { .. }), "{e}");
    // A Range that never ends, and a Tile far too large, are refused before any allocation.
    let endless = model(
        vec![node("Range", &["s", "l", "d"], "c", vec![])],
        vec![
            tensor("s", &[], &[0.0]),
            tensor("l", &[], &[3.0]),
            tensor("d", &[], &[0.0]),
        ],
    );
    assert!(onnx::import(&endless, &Options::default())
        .unwrap_err()
        .to_string()
        .contains("no range"));
    let huge = model(
        vec![node("Tile", &["v", "n"], "c", vec![])],
        vec![tensor("v", &[3], &[1.0, 2.0, 3.0]), ints("n", &[1], &[1 << 40])],
    );
    assert!(onnx::import(&huge, &Options::default())
        .unwrap_err()
        .to_string()
        .contains("too large"));
}

/// A constant that folds into the layer before it must not change what another reader of
/// that layer's output sees. Identity hands a tensor on under a new name: here the scaled
/// branch reads `S` through it and the Add reads `S` itself, so `y = S + 2·S = 3·S` and the 2
/// stays a layer of its own (folding it into the Dense would give `4·S`).
#[test]
fn a_scale_is_not_folded_into_a_tensor_another_node_reads_through_an_alias() {
    let mut g = GraphProto::new();
    g.name = "alias".into();
    g.node = vec![
        node("MatMul", &["x", "w"], "s", vec![]),
        node("Identity", &["s"], "i", vec![]),
        node("Mul", &["i", "two"], "m", vec![]),
        node("Add", &["s", "m"], "y", vec![]),
    ];
    g.initializer = vec![
        tensor("w", &[3, 3], &[1.0, 0.5, 0.0, -1.0, 2.0, 0.25, 0.0, 1.0, -0.5]),
        tensor("two", &[], &[2.0]),
    ];
    g.input = vec![value("x", &[None, Some(3)])];
    g.output = vec![value("y", &[None, Some(3)])];
    let model = onnx::import(&bytes(g, 17), &Options::default()).unwrap();
    let x = ArrayD::from_shape_vec(IxDyn(&[3]), vec![0.5, -1.0, 2.0]).unwrap();
    // x·W = [1.5, 0.25, -1.25]
    assert_eq!(
        model.forward(&x).iter().copied().collect::<Vec<_>>(),
        [4.5, 0.75, -3.75]
    );
    let kinds: Vec<&str> = model.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds, ["dense", "mul", "add"]);
}

/// ReduceMean of a per-sample tensor (mean pooling) is a layer: over the tokens of `[T, N, d]`
/// (the batch axis second: a Transpose made the input time-major) the output keeps the batch axis,
/// with and without `keepdims`; over the batch axis it is a named error.
#[test]
fn reduce_mean_of_a_tensor_pools_around_the_batch_axis() {
    // A per-channel constant added after the mean broadcasts only where the batch axis is right.
    let graph = |keep: i64, axes: &[i64], out: &[Option<i64>], c: &[i64]| {
        let mut g = GraphProto::new();
        g.name = "pool".into();
        g.node = vec![
            node("Transpose", &["x"], "t", vec![attr_ints("perm", &[1, 0, 2])]),
            node(
                "ReduceMean",
                &["t"],
                "y",
                vec![attr_ints("axes", axes), attr_int("keepdims", keep)],
            ),
            node("Add", &["y", "c"], "z", vec![]),
        ];
        g.initializer = vec![tensor("c", c, &vec![1.0; c.iter().product::<i64>() as usize])];
        g.input = vec![value("x", &[None, Some(2), Some(3)])];
        g.output = vec![value("z", out)];
        bytes(g, 17)
    };
    // One sample is [T = 2, d = 3]; the mean over T.
    let x = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1.0, 2.0, 3.0, 5.0, -2.0, 0.5]).unwrap();
    for (keep, out) in [(0, vec![None, Some(3)]), (1, vec![Some(1), None, Some(3)])] {
        let m = onnx::import(&graph(keep, &[0], &out, &[3]), &Options::default()).unwrap();
        let y = m.forward(&x);
        assert_eq!(
            y.iter().copied().collect::<Vec<_>>(),
            [4.0, 1.0, 2.75],
            "keepdims {keep}"
        );
        let kinds: Vec<&str> = m.nodes.iter().map(|n| n.op.kind()).collect();
        assert_eq!(kinds[..2], ["permute", "global_avg_pool"], "keepdims {keep}");
    }
    // Over d, the last axis: no data moves, so a reshape and no permute; the output is
    // [T, N], the batch axis still second.
    let m = onnx::import(&graph(0, &[-1], &[Some(2), None], &[2, 1]), &Options::default()).unwrap();
    assert_eq!(
        m.forward(&x).iter().copied().collect::<Vec<_>>(),
        [3.0, 1.0 + 3.5 / 3.0]
    );
    let kinds: Vec<&str> = m.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds[..2], ["reshape", "global_avg_pool"]);
    let e = onnx::import(&graph(0, &[1], &[Some(2), Some(3)], &[3]), &Options::default()).unwrap_err();
    assert!(e.to_string().contains("a mean over the batch axis"), "{e}");
}

/// `Where(pad, −∞, x)` is a mask only for a Softmax that alone reads it: anything else reading
/// it is a named error (an Add would compute `x − ∞`, not the fill). Before opset 13 a Softmax
/// over the flattened sample takes no mask (its rows are not the mask's) and computes as ONNX.
#[test]
fn a_mask_is_a_mask_only_for_a_softmax_over_its_rows() {
    let graph = |opset: i64, softmax: bool| {
        let mut g = GraphProto::new();
        g.name = "mask".into();
        let mut nodes = vec![node("Where", &["pad", "fill", "x"], "m", vec![])];
        if softmax {
            nodes.push(node("Softmax", &["m"], "y", vec![attr_int("axis", 1)]));
        }
        g.node = nodes;
        let mut pad = TensorProto::new();
        pad.name = "pad".into();
        pad.dims = vec![1, 2];
        pad.data_type = 9;
        pad.int32_data = vec![0, 1];
        g.initializer = vec![pad, tensor("fill", &[], &[f32::NEG_INFINITY])];
        g.input = vec![value("x", &[None, Some(2), Some(2)])];
        g.output = vec![value(if softmax { "y" } else { "m" }, &[None, Some(2), Some(2)])];
        bytes(g, opset)
    };
    let e = onnx::import(&graph(13, false), &Options::default()).unwrap_err();
    assert!(e.to_string().contains("only a Softmax reads"), "{e}");
    // Opset 12: one softmax over all four values; the padded column's two get 0.
    let m = onnx::import(&graph(12, true), &Options::default()).unwrap();
    let x = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![0.0, 5.0, 0.0, -1.0]).unwrap();
    let y: Vec<f64> = m.forward(&x).iter().copied().collect();
    assert_eq!((y[1], y[3]), (0.0, 0.0));
    assert!((y[0] - 0.5).abs() < 1e-12 && (y[2] - 0.5).abs() < 1e-12, "{y:?}");
}

/// A Gather that picks one token twice is a selection, not a reordering: the Dense after a
/// Flatten reads both copies (folding it into the Dense's columns would keep only one).
#[test]
fn a_repeated_selection_is_not_folded_into_a_dense() {
    let mut g = GraphProto::new();
    g.name = "repeat".into();
    g.node = vec![
        node("Gather", &["x", "ones"], "p", vec![attr_int("axis", 1)]),
        node("Flatten", &["p"], "f", vec![]),
        node("MatMul", &["f", "w"], "y", vec![]),
    ];
    let w: Vec<f32> = (0..8).map(|i| i as f32).collect();
    g.initializer = vec![ints("ones", &[2], &[1, 1]), tensor("w", &[8, 1], &w)];
    g.input = vec![value("x", &[None, Some(2), Some(4)])];
    g.output = vec![value("y", &[None, Some(1)])];
    let m = onnx::import(&bytes(g, 17), &Options::default()).unwrap();
    let x = ArrayD::from_shape_vec(IxDyn(&[2, 4]), vec![9.0, 9.0, 9.0, 9.0, 1.0, 2.0, 3.0, 4.0]).unwrap();
    // Token 1 twice: Σ w[0..4]·x₁ + Σ w[4..8]·x₁.
    let want: f64 = (0..8).map(|i| i as f64 * [1.0, 2.0, 3.0, 4.0][i % 4]).sum();
    assert_eq!(m.forward(&x).iter().copied().collect::<Vec<_>>(), [want]);
    let kinds: Vec<&str> = m.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds, ["permute", "dense"]);
}

/// A Softmax over another axis than the last is moved last and back (opset 13), but not before
/// opset 13 (`axis` flattens what follows it) and not with a mask: named errors.
#[test]
fn a_softmax_over_another_axis_moves_it_last_only_where_that_is_its_meaning() {
    let graph = |opset: i64, mask: bool, rank: usize| {
        let mut g = GraphProto::new();
        g.name = "axis".into();
        let input = if mask { "m" } else { "x" };
        let axis = rank as i64 - 2;
        g.node = vec![node("Softmax", &[input], "y", vec![attr_int("axis", axis)])];
        if mask {
            g.node.insert(0, node("Add", &["x", "causal"], "m", vec![]));
        }
        g.initializer = vec![tensor("causal", &[2, 2], &[0.0, f32::NEG_INFINITY, 0.0, 0.0])];
        let dims: Vec<Option<i64>> = [None].into_iter().chain(vec![Some(2); rank - 1]).collect();
        g.input = vec![value("x", &dims)];
        g.output = vec![value("y", &dims)];
        bytes(g, opset)
    };
    let m = onnx::import(&graph(13, false, 3), &Options::default()).unwrap();
    let x = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![0.0, 1.0, 0.0, -1.0]).unwrap();
    let y: Vec<f64> = m.forward(&x).iter().copied().collect();
    // Each column sums to 1; column 0 holds two equal values.
    assert!((y[0] - 0.5).abs() < 1e-12 && (y[2] - 0.5).abs() < 1e-12, "{y:?}");
    assert!((y[1] + y[3] - 1.0).abs() < 1e-12 && y[1] > 0.88, "{y:?}");
    // Opset 12 over [N, 2, 2, 2] from axis 2: a row of 4 per (N, 2), not a softmax along axis 2.
    for (opset, mask, rank) in [(12, false, 4), (13, true, 3)] {
        let e = onnx::import(&graph(opset, mask, rank), &Options::default()).unwrap_err();
        assert!(
            e.to_string().contains("softmax over axis"),
            "opset {opset}, mask {mask}: {e}"
        );
    }
}

/// One Reshape that merges the batch (`[N, T, d] → [N·T, d]`), read by three MatMuls whose
/// outputs each go back to `[N, T, ·]` (tf2onnx shares the Reshape of Keras' Q, K and V): each
/// gets its batch back, so the product of two of them imports.
#[test]
fn a_shared_merge_of_the_batch_comes_back_for_every_reader() {
    let mut g = GraphProto::new();
    g.name = "shared".into();
    g.node = vec![node("Reshape", &["x", "rows"], "r", vec![])];
    for p in ["q", "k", "v"] {
        g.node
            .push(node("MatMul", &["r", &format!("w{p}")], &format!("{p}0"), vec![]));
        g.node.push(node("Reshape", &[&format!("{p}0"), "back"], p, vec![]));
    }
    g.node
        .push(node("Transpose", &["k"], "kt", vec![attr_ints("perm", &[0, 2, 1])]));
    g.node.push(node("MatMul", &["q", "kt"], "s", vec![]));
    g.node.push(node("MatMul", &["s", "v"], "y", vec![]));
    let eye: Vec<f32> = (0..4).map(|i| if i % 3 == 0 { 1.0 } else { 0.0 }).collect();
    g.initializer = vec![
        ints("rows", &[2], &[-1, 2]),
        ints("back", &[3], &[-1, 3, 2]),
        tensor("wq", &[2, 2], &eye),
        tensor("wk", &[2, 2], &eye),
        tensor("wv", &[2, 2], &eye),
    ];
    g.input = vec![value("x", &[None, Some(3), Some(2)])];
    g.output = vec![value("y", &[None, Some(3), Some(2)])];
    let m = onnx::import(&bytes(g, 17), &Options::default()).unwrap();
    let x = ArrayD::from_shape_vec(IxDyn(&[3, 2]), vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0]).unwrap();
    // (x·xᵀ)·x with the identity projections.
    let want = [2.0, 1.0, 1.0, 2.0, 3.0, 3.0];
    assert_eq!(m.forward(&x).iter().copied().collect::<Vec<_>>(), want);
}
