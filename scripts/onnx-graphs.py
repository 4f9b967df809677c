#!/usr/bin/env python3
"""Regenerates importer/tests/data/graphs/: whole graphs the way exporters write them, with
outputs from ONNX's reference evaluator, for the importer's differential tests (graph cleaning
and fusion: BatchNorm into Conv, MatMul+Add into Dense, PyTorch's Shape/Gather/Concat flatten,
Dropout/Identity, an LSTM over image rows, an Embedding, an skl2onnx-style label branch, an
attention head, and an encoder block's two sublayers: 2-head attention and the GELU
feed-forward; GELU and LayerNorm decompositions, attention masks, CLS pooling by Gather and
by Slice, and a packed Q/K/V projection split in three).

    python3 -m venv /tmp/v && /tmp/v/bin/pip install numpy onnx==1.22.0
    /tmp/v/bin/python scripts/onnx-graphs.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

root = os.path.join(os.path.dirname(__file__), "..", "importer/tests/data/graphs")
rng = np.random.default_rng(11)
f32 = lambda a: np.asarray(a, dtype=np.float32)
init = lambda name, a: numpy_helper.from_array(a, name)


def save(name, nodes, inputs, outputs, inits, x, opset=13, under=root):
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    out = os.path.join(under, name)
    os.makedirs(out, exist_ok=True)
    onnx.save(model, os.path.join(out, "model.onnx"))
    np.save(os.path.join(out, "input.npy"), x)
    y = ReferenceEvaluator(model).run(None, {inputs[0].name: x})[0]
    np.save(os.path.join(out, "expected.npy"), y.astype(np.float32))
    print(name, x.shape, "->", y.shape)


# A CNN as PyTorch exports it: Conv, BatchNorm, Relu, MaxPool, x.view(x.size(0), -1),
# MatMul + Add, Dropout, Identity, Softmax.
save(
    "cnn_bn",
    [
        helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("BatchNormalization", ["c", "g", "be", "mu", "var"], ["bn"], epsilon=1e-5, name="bn"),
        helper.make_node("Relu", ["bn"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        helper.make_node("Shape", ["p"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["p", "shape"], ["flat"], name="flatten"),
        helper.make_node("MatMul", ["flat", "fw"], ["mm"], name="fc"),
        helper.make_node("Add", ["mm", "fb"], ["logits"], name="fc_bias"),
        helper.make_node("Dropout", ["logits"], ["d"], name="dropout"),
        helper.make_node("Identity", ["d"], ["i"]),
        helper.make_node("Softmax", ["i"], ["y"], axis=1, name="softmax"),
    ],
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
    [
        init("cw", f32(rng.normal(0, 0.4, (4, 1, 3, 3)))),
        init("cb", f32(rng.normal(0, 0.1, 4))),
        init("g", f32(rng.uniform(0.5, 1.5, 4))),
        init("be", f32(rng.normal(0, 0.2, 4))),
        init("mu", f32(rng.normal(0, 0.2, 4))),
        init("var", f32(rng.uniform(0.5, 2.0, 4))),
        init("zero", np.array(0, dtype=np.int64)),
        init("axes0", np.array([0], dtype=np.int64)),
        init("minus1", np.array([-1], dtype=np.int64)),
        init("fw", f32(rng.normal(0, 0.3, (64, 10)))),
        init("fb", f32(rng.normal(0, 0.1, 10))),
    ],
    f32(rng.uniform(0, 1, (6, 1, 8, 8))),
    # Opset 15: the reference evaluator runs BatchNormalization 9 to 14 with batch statistics.
    opset=15,
)

# An LSTM reading one image row per step: [N, T, F] -> Transpose -> LSTM -> Y_h -> Squeeze -> Gemm.
H = 12
save(
    "lstm_rows",
    [
        helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
        helper.make_node("LSTM", ["t", "W", "R", "B"], ["", "h"], hidden_size=H, name="lstm"),
        helper.make_node("Squeeze", ["h", "axes0"], ["hs"]),
        helper.make_node("Gemm", ["hs", "fw", "fb"], ["y"], transB=1, name="fc"),
    ],
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 8])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
    [
        init("W", f32(rng.normal(0, 0.3, (1, 4 * H, 8)))),
        init("R", f32(rng.normal(0, 0.3, (1, 4 * H, H)))),
        init("B", f32(rng.normal(0, 0.1, (1, 8 * H)))),
        init("axes0", np.array([0], dtype=np.int64)),
        init("fw", f32(rng.normal(0, 0.4, (10, H)))),
        init("fb", f32(rng.normal(0, 0.1, 10))),
    ],
    f32(rng.uniform(0, 1, (5, 8, 8))),
)

# Token ids through a Gather table (Embedding), Flatten, Gemm, Tanh.
save(
    "embedding",
    [
        helper.make_node("Gather", ["table", "ids"], ["e"], axis=0, name="embed"),
        helper.make_node("Flatten", ["e"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["z"], name="fc"),
        helper.make_node("Tanh", ["z"], ["y"]),
    ],
    [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", 5])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
    [
        init("table", f32(rng.normal(0, 1, (20, 4)))),
        init("fw", f32(rng.normal(0, 0.3, (20, 3)))),
        init("fb", f32(rng.normal(0, 0.1, 3))),
    ],
    rng.integers(-20, 20, (7, 5)).astype(np.int64),
)

# An skl2onnx-style classifier: probabilities plus an ArgMax label branch (not mappable, so
# the test keeps only `probabilities` with --output). Opset 9 attributes (Squeeze axes).
save(
    "classifier_label",
    [
        helper.make_node("MatMul", ["x", "w"], ["z0"]),
        helper.make_node("Add", ["z0", "b"], ["z"]),
        helper.make_node("Softmax", ["z"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["probabilities"], ["a"], axis=1, keepdims=1),
        helper.make_node("Squeeze", ["a"], ["label"], axes=[1]),
    ],
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
    [
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3]),
        helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
    ],
    [init("w", f32(rng.normal(0, 1, (6, 3)))), init("b", f32(rng.normal(0, 0.5, 3)))],
    f32(rng.normal(0, 1, (8, 6))),
    opset=9,
)


def projections():
    """The Q, K and V projections of `x` as PyTorch's Linear exports them: MatMul + Add."""
    return [
        helper.make_node("MatMul", ["x", "wq"], ["q0"]),
        helper.make_node("Add", ["q0", "bq"], ["q"]),
        helper.make_node("MatMul", ["x", "wk"], ["k0"]),
        helper.make_node("Add", ["k0", "bk"], ["k"]),
        helper.make_node("MatMul", ["x", "wv"], ["v0"]),
        helper.make_node("Add", ["v0", "bv"], ["v"]),
    ]


# One attention head as hand-written PyTorch attention exports it: Q, K, V projections
# (MatMul + Add), K.transpose(-2, -1), Q·Kᵀ scaled by 1/√d, Softmax over the keys, ·V, the
# residual and LayerNormalization (opset 17).
T, D = 6, 8
save(
    "attention_head",
    projections()
    + [
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s0"], name="scores"),
        helper.make_node("Mul", ["s0", "scale"], ["s"]),
        helper.make_node("Softmax", ["s"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["c"], name="context"),
        helper.make_node("Add", ["c", "x"], ["r"], name="residual"),
        helper.make_node("LayerNormalization", ["r", "g", "be"], ["y"], axis=-1, epsilon=1e-5, name="norm"),
    ],
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", T, D])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", T, D])],
    [
        init("wq", f32(rng.normal(0, 0.4, (D, D)))),
        init("bq", f32(rng.normal(0, 0.1, D))),
        init("wk", f32(rng.normal(0, 0.4, (D, D)))),
        init("bk", f32(rng.normal(0, 0.1, D))),
        init("wv", f32(rng.normal(0, 0.4, (D, D)))),
        init("bv", f32(rng.normal(0, 0.1, D))),
        init("scale", f32([1 / np.sqrt(D)])),
        init("g", f32(rng.uniform(0.5, 1.5, D))),
        init("be", f32(rng.normal(0, 0.2, D))),
    ],
    f32(rng.normal(0, 1, (16, T, D))),
    opset=17,
)


def scores():
    """`q`, `k`, `v` split into heads by Reshape + Transpose (`k` transposed for the product),
    and the scaled scores `s` = qh·kh / √d."""
    return [
        helper.make_node("Reshape", ["q", "heads"], ["q4"]),
        helper.make_node("Transpose", ["q4"], ["qh"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["k", "heads"], ["k4"]),
        helper.make_node("Transpose", ["k4"], ["kh"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["v", "heads"], ["v4"]),
        helper.make_node("Transpose", ["v4"], ["vh"], perm=[0, 2, 1, 3]),
        helper.make_node("MatMul", ["qh", "kh"], ["s0"], name="scores"),
        helper.make_node("Div", ["s0", "sqrt_d"], ["s"]),
    ]


def attention(y, qkv=projections):
    """A 2-head attention sublayer on `x` as nn.MultiheadAttention-style code writes it: heads
    split with Reshape + Transpose, [N, H, T, d] products, heads merged back, the output
    projection, the residual and LayerNormalization into `y`."""
    return qkv() + scores() + [
        helper.make_node("Softmax", ["s"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "vh"], ["ch"], name="context"),
        helper.make_node("Transpose", ["ch"], ["c4"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["c4", "merged"], ["c"]),
        helper.make_node("MatMul", ["c", "wo"], ["o0"]),
        helper.make_node("Add", ["o0", "bo"], ["o"]),
        helper.make_node("Add", ["o", "x"], ["r1"]),
        helper.make_node("LayerNormalization", ["r1", "g1", "b1"], [y], axis=-1, name="norm1"),
    ]


def feed_forward(x, y):
    """The feed-forward sublayer on `x`: Dense, GELU (opset 20), Dense, the residual and
    LayerNormalization into `y`."""
    return [
        helper.make_node("MatMul", [x, "w1"], ["f0"]),
        helper.make_node("Add", ["f0", "c1"], ["f1"]),
        helper.make_node("Gelu", ["f1"], ["f2"]),
        helper.make_node("MatMul", ["f2", "w2"], ["f3"]),
        helper.make_node("Add", ["f3", "c2"], ["f4"]),
        helper.make_node("Add", ["f4", x], ["r2"]),
        helper.make_node("LayerNormalization", ["r2", "g2", "b2"], [y], axis=-1, name="norm2"),
    ]


def attention_inits(r, d):
    """The weights attention() reads, drawn from `r` in this order (the fixtures depend on it):
    Q, K, V projections, head shapes for the module's T, H, DH, output projection, LayerNorm."""
    w = lambda: f32(r.normal(0, 0.4, (d, d)))
    return [
        init("wq", w()),
        init("bq", f32(r.normal(0, 0.1, d))),
        init("wk", w()),
        init("bk", f32(r.normal(0, 0.1, d))),
        init("wv", w()),
        init("bv", f32(r.normal(0, 0.1, d))),
        init("heads", np.array([0, T, H, DH], dtype=np.int64)),
        init("merged", np.array([0, T, d], dtype=np.int64)),
        init("sqrt_d", f32([np.sqrt(DH)])),
        init("wo", w()),
        init("bo", f32(r.normal(0, 0.1, d))),
        init("g1", f32(r.uniform(0.5, 1.5, d))),
        init("b1", f32(r.normal(0, 0.2, d))),
    ]


# The two sublayers of an encoder block, each on its own.
H, DH = 2, 4
D2 = H * DH
save(
    "mha_block",
    attention("y"),
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", T, D2])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", T, D2])],
    attention_inits(rng, D2),
    f32(rng.normal(0, 1, (16, T, D2))),
    opset=17,
)

save(
    "ffn_block",
    feed_forward("x", "y"),
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", T, D2])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", T, D2])],
    [
        init("w1", f32(rng.normal(0, 0.4, (D2, 2 * D2)))),
        init("c1", f32(rng.normal(0, 0.1, 2 * D2))),
        init("w2", f32(rng.normal(0, 0.4, (2 * D2, D2)))),
        init("c2", f32(rng.normal(0, 0.1, D2))),
        init("g2", f32(rng.uniform(0.5, 1.5, D2))),
        init("b2", f32(rng.normal(0, 0.2, D2))),
    ],
    f32(rng.normal(0, 1, (16, T, D2))),
    opset=20,
)

# GELU as exporters wrote it before ONNX had Gelu (torch.onnx below opset 20, tf2onnx, Hugging
# Face BERT): x·0.5·(1 + erf(x/√2)) after a Dense.
save(
    "gelu_erf",
    [
        helper.make_node("MatMul", ["x", "w"], ["h0"]),
        helper.make_node("Add", ["h0", "b"], ["h"]),
        helper.make_node("Div", ["h", "sqrt2"], ["d"]),
        helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["e1"]),
        helper.make_node("Mul", ["h", "e1"], ["m"]),
        helper.make_node("Mul", ["m", "half"], ["y"]),
    ],
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 12])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16])],
    [
        init("w", f32(rng.normal(0, 0.5, (12, 16)))),
        init("b", f32(rng.normal(0, 0.2, 16))),
        init("sqrt2", f32([np.sqrt(2.0)])),
        init("one", f32([1.0])),
        init("half", f32([0.5])),
    ],
    f32(rng.normal(0, 1, (32, 12))),
    opset=17,
)

# For benches/RESULTS.md: one whole encoder block at the trainer's size (8 tokens of 32, 2
# heads, feed-forward 64): attention, residual and LayerNormalization, GELU feed-forward,
# residual and LayerNormalization. Gas depends on shapes, not values.
g = np.random.default_rng(17)
T, H, DH, F = 8, 2, 16, 64
D = H * DH
w = lambda *s: f32(g.normal(0, 1 / np.sqrt(s[0]), s))
save(
    "encoder_block",
    attention("n1") + feed_forward("n1", "y"),
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", T, D])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", T, D])],
    [
        init("wq", w(D, D)),
        init("bq", f32(np.zeros(D))),
        init("wk", w(D, D)),
        init("bk", f32(np.zeros(D))),
        init("wv", w(D, D)),
        init("bv", f32(np.zeros(D))),
        init("heads", np.array([0, T, H, DH], dtype=np.int64)),
        init("merged", np.array([0, T, D], dtype=np.int64)),
        init("sqrt_d", f32([np.sqrt(DH)])),
        init("wo", w(D, D)),
        init("bo", f32(np.zeros(D))),
        init("g1", f32(np.ones(D))),
        init("b1", f32(np.zeros(D))),
        init("w1", w(D, F)),
        init("c1", f32(np.zeros(F))),
        init("w2", w(F, D)),
        init("c2", f32(np.zeros(D))),
        init("g2", f32(np.ones(D))),
        init("b2", f32(np.zeros(D))),
    ],
    f32(g.normal(0, 1, (8, T, D))),
    opset=20,
    under=os.path.join(os.path.dirname(__file__), "..", "benches/data"),
)

# Decompositions the importer fuses back into one op (importer/src/onnx/fuse.rs), each after a
# Dense. GELU's tanh form as Hugging Face's gelu_new exports (constants first):
# 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
g = np.random.default_rng(23)
save(
    "gelu_tanh",
    [
        helper.make_node("MatMul", ["x", "w"], ["h0"]),
        helper.make_node("Add", ["h0", "b"], ["h"]),
        helper.make_node("Mul", ["half", "h"], ["hh"]),
        helper.make_node("Pow", ["h", "three"], ["h3"]),
        helper.make_node("Mul", ["c", "h3"], ["ch3"]),
        helper.make_node("Add", ["h", "ch3"], ["inner"]),
        helper.make_node("Mul", ["k", "inner"], ["arg"]),
        helper.make_node("Tanh", ["arg"], ["t"], name="tanh"),
        helper.make_node("Add", ["one", "t"], ["t1"]),
        helper.make_node("Mul", ["hh", "t1"], ["y"]),
    ],
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 12])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16])],
    [
        init("w", f32(g.normal(0, 0.5, (12, 16)))),
        init("b", f32(g.normal(0, 0.2, 16))),
        init("half", f32(0.5)),
        init("three", f32(3.0)),
        init("c", f32(0.044715)),
        init("k", f32(np.sqrt(2 / np.pi))),
        init("one", f32(1.0)),
    ],
    f32(g.normal(0, 1, (32, 12))),
    opset=13,
)

# LayerNormalization as PyTorch writes it below opset 17 (and BERT-style code does by hand):
# ReduceMean, Sub, Pow 2, ReduceMean, Add ε, Sqrt, Div, Mul γ, Add β over the last axis.
save(
    "layer_norm_decomposed",
    [
        helper.make_node("MatMul", ["x", "w"], ["h0"]),
        helper.make_node("Add", ["h0", "b"], ["h"]),
        helper.make_node("ReduceMean", ["h"], ["mu"], axes=[-1], name="norm"),
        helper.make_node("Sub", ["h", "mu"], ["d"]),
        helper.make_node("Pow", ["d", "two"], ["d2"]),
        helper.make_node("ReduceMean", ["d2"], ["var"], axes=[-1]),
        helper.make_node("Add", ["var", "eps"], ["ve"]),
        helper.make_node("Sqrt", ["ve"], ["sd"]),
        helper.make_node("Div", ["d", "sd"], ["z"]),
        helper.make_node("Mul", ["z", "gamma"], ["zg"]),
        helper.make_node("Add", ["zg", "beta"], ["y"]),
    ],
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6, 12])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6, 16])],
    [
        init("w", f32(g.normal(0, 0.5, (12, 16)))),
        init("b", f32(g.normal(0, 0.2, 16))),
        init("two", f32(2.0)),
        init("eps", f32(1e-5)),
        init("gamma", f32(g.normal(1, 0.2, 16))),
        init("beta", f32(g.normal(0, 0.2, 16))),
    ],
    f32(g.normal(0, 1, (8, 6, 12))),
    opset=13,
)


def masked_heads(mask_nodes):
    """2-head self-attention on `x` [N, 6, 8] up to the context `y`, with `mask_nodes` taking the
    scaled scores `s` to the masked scores `sm` before Softmax."""
    return (
        [
            helper.make_node("MatMul", ["x", "wq"], ["q"]),
            helper.make_node("MatMul", ["x", "wk"], ["k"]),
            helper.make_node("MatMul", ["x", "wv"], ["v"]),
        ]
        + scores()
        + mask_nodes
        + [
            helper.make_node("Softmax", ["sm"], ["p"], axis=-1, name="softmax"),
            helper.make_node("MatMul", ["p", "vh"], ["ch"], name="context"),
            helper.make_node("Transpose", ["ch"], ["c4"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", ["c4", "merged"], ["y"]),
        ]
    )


def masked_inits(extra):
    return [
        init("wq", f32(g.normal(0, 0.5, (8, 8)))),
        init("wk", f32(g.normal(0, 0.5, (8, 8)))),
        init("wv", f32(g.normal(0, 0.5, (8, 8)))),
        init("heads", np.array([0, 6, 2, 4], dtype=np.int64)),
        init("merged", np.array([0, 6, 8], dtype=np.int64)),
        init("sqrt_d", f32([2.0])),
    ] + extra


# Masks on attention scores, as exporters write them: a causal mask added (PyTorch's
# generate_square_subsequent_mask: −∞ above the diagonal), and a padding mask by masked_fill
# (Where(pad, −∞, scores); here the last two of 6 tokens are padding).
io = (
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6, 8])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6, 8])],
)
save(
    "attention_causal",
    masked_heads([helper.make_node("Add", ["s", "causal"], ["sm"], name="causal_mask")]),
    *io,
    masked_inits([init("causal", f32(np.triu(np.full((6, 6), -np.inf), 1)))]),
    f32(g.normal(0, 1, (16, 6, 8))),
    opset=17,
)
save(
    "attention_padded",
    masked_heads([helper.make_node("Where", ["pad", "minus_inf", "s"], ["sm"], name="padding_mask")]),
    *io,
    masked_inits(
        [
            numpy_helper.from_array(np.array([[False] * 4 + [True] * 2]), "pad"),
            init("minus_inf", f32(-np.inf)),
        ]
    ),
    f32(g.normal(0, 1, (16, 6, 8))),
    opset=17,
)

# Classifying by the first (CLS) token after an attention sublayer. Hugging Face's BERT pooler
# as torch.onnx writes `hidden[:, 0]`: Gather(axis 1, scalar index 0), Dense + Tanh, then the
# classifier. A ViT-style head as `x[:, :1]` writes it: Slice on the token axis, Flatten.
g = np.random.default_rng(29)
T, H, DH = 6, 2, 4
D2 = H * DH
cls_inits = attention_inits(g, D2) + [
    init("wp", f32(g.normal(0, 0.4, (D2, D2)))),
    init("bp", f32(g.normal(0, 0.1, D2))),
    init("wc", f32(g.normal(0, 0.4, (D2, 3)))),
    init("bc", f32(g.normal(0, 0.1, 3))),
]
classifier = lambda x: [
    helper.make_node("MatMul", [x, "wp"], ["p0"]),
    helper.make_node("Add", ["p0", "bp"], ["p1"]),
    helper.make_node("Tanh", ["p1"], ["p2"], name="pooler"),
    helper.make_node("MatMul", ["p2", "wc"], ["o0c"]),
    helper.make_node("Add", ["o0c", "bc"], ["y"]),
]
save(
    "bert_cls",
    attention("n1") + [helper.make_node("Gather", ["n1", "zero"], ["cls"], axis=1, name="cls")] + classifier("cls"),
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", T, D2])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
    cls_inits + [init("zero", np.array(0, dtype=np.int64))],
    f32(g.normal(0, 1, (16, T, D2))),
    opset=17,
)
save(
    "vit_cls_slice",
    attention("n1")
    + [
        helper.make_node("Slice", ["n1", "start", "end", "axis1"], ["cls1"], name="cls"),
        helper.make_node("Flatten", ["cls1"], ["cls"]),
    ]
    + classifier("cls"),
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", T, D2])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
    cls_inits
    + [
        init("start", np.array([0], dtype=np.int64)),
        init("end", np.array([1], dtype=np.int64)),
        init("axis1", np.array([1], dtype=np.int64)),
    ],
    f32(g.normal(0, 1, (16, T, D2))),
    opset=17,
)


def packed_projections():
    """Q, K and V from one packed projection, split by `qkv.chunk(3, -1)` (ONNX Split)."""
    return [
        helper.make_node("MatMul", ["x", "wqkv"], ["qkv0"]),
        helper.make_node("Add", ["qkv0", "bqkv"], ["qkv"]),
        helper.make_node("Split", ["qkv", "thirds"], ["q", "k", "v"], axis=-1, name="chunk"),
    ]


# Attention with one packed Q/K/V projection split into three, as `qkv.chunk(3, -1)` exports.
g = np.random.default_rng(31)
save(
    "attention_packed",
    attention("y", packed_projections),
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", T, D2])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", T, D2])],
    [
        init("wqkv", f32(g.normal(0, 0.4, (D2, 3 * D2)))),
        init("bqkv", f32(g.normal(0, 0.1, 3 * D2))),
        init("thirds", np.array([D2] * 3, dtype=np.int64)),
        init("heads", np.array([0, T, H, DH], dtype=np.int64)),
        init("merged", np.array([0, T, D2], dtype=np.int64)),
        init("sqrt_d", f32([np.sqrt(DH)])),
        init("wo", f32(g.normal(0, 0.4, (D2, D2)))),
        init("bo", f32(g.normal(0, 0.1, D2))),
        init("g1", f32(g.uniform(0.5, 1.5, D2))),
        init("b1", f32(g.normal(0, 0.2, D2))),
    ],
    f32(g.normal(0, 1, (16, T, D2))),
    opset=17,
)
