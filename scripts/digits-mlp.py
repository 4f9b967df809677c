#!/usr/bin/env python3
"""Regenerates models/digits-mlp/ (the demo model): a small MLP (64 → 32 ReLU → 10, softmax)
trained with plain NumPy on data/digits.csv.gz, exported to ONNX (opset 13, Gemm/Relu/Softmax,
symbolic batch), with a fixed 80/20 split written as CSV (64 pixels 0-16, then `label`).

    python3 -m venv /tmp/v && /tmp/v/bin/pip install numpy onnx==1.22.0
    /tmp/v/bin/python scripts/digits-mlp.py
"""
import gzip
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

root = os.path.join(os.path.dirname(__file__), "..")
out = os.path.join(root, "models/digits-mlp")
rows = np.loadtxt(gzip.open(os.path.join(root, "data/digits.csv.gz")), delimiter=",")
x, y = rows[:, :64], rows[:, 64].astype(int)
rng = np.random.default_rng(7)
perm = rng.permutation(len(x))
n_test = len(x) // 5
test, train = perm[:n_test], perm[n_test:]

# Train on x/16; the scale is folded into the first layer afterwards.
xt, yt = x[train] / 16.0, np.eye(10)[y[train]]
w1 = rng.normal(0, np.sqrt(2 / 64), (64, 32)); b1 = np.zeros(32)
w2 = rng.normal(0, np.sqrt(2 / 32), (32, 10)); b2 = np.zeros(10)
params = [w1, b1, w2, b2]
m = [np.zeros_like(p) for p in params]; v = [np.zeros_like(p) for p in params]
for step in range(1, 1501):
    idx = rng.choice(len(xt), 128, replace=False)
    xb, yb = xt[idx], yt[idx]
    h = np.maximum(xb @ w1 + b1, 0)
    z = h @ w2 + b2
    p = np.exp(z - z.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
    dz = (p - yb) / len(xb)
    dh = (dz @ w2.T) * (h > 0)
    grads = [xb.T @ dh, dh.sum(0), h.T @ dz, dz.sum(0)]
    for i, (pa, g) in enumerate(zip(params, grads)):
        g = g + 1e-4 * pa
        m[i] = 0.9 * m[i] + 0.1 * g; v[i] = 0.999 * v[i] + 0.001 * g * g
        pa -= 0.01 * (m[i] / (1 - 0.9 ** step)) / (np.sqrt(v[i] / (1 - 0.999 ** step)) + 1e-8)

def predict(xs):
    h = np.maximum(xs / 16.0 @ w1 + b1, 0)
    return (h @ w2 + b2).argmax(1)

acc = (predict(x[test]) == y[test]).mean()
f32 = lambda a, name: numpy_helper.from_array(a.astype(np.float32), name)
graph = helper.make_graph(
    [
        helper.make_node("Gemm", ["pixels", "w1", "b1"], ["h1"], name="dense1"),
        helper.make_node("Relu", ["h1"], ["a1"], name="relu1"),
        helper.make_node("Gemm", ["a1", "w2", "b2"], ["logits"], name="dense2"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=-1),
    ],
    "digits_mlp",
    [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 64])],
    [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
    [f32(w1 / 16.0, "w1"), f32(b1, "b1"), f32(w2, "w2"), f32(b2, "b2")],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="cwnn scripts/digits-mlp.py")
model.ir_version = 8
onnx.checker.check_model(model)
os.makedirs(out, exist_ok=True)
onnx.save(model, os.path.join(out, "model.onnx"))
header = ",".join([f"p{i}" for i in range(64)] + ["label"])
fmt = ["%d"] * 65
np.savetxt(os.path.join(out, "test.csv"), np.c_[x[test], y[test]], fmt=fmt, delimiter=",", header=header, comments="")
np.savetxt(os.path.join(out, "calibration.csv"), x[train[:200]], fmt="%d", delimiter=",")
print(f"float top-1 on {len(test)} test digits: {acc:.4f}")
