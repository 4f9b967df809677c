#!/usr/bin/env python3
"""Writes importer/tests/data/graphs/keras_<name>/{model.onnx,input.npy,expected.npy}: small Keras
models exported by tf2onnx, as a model author coming from Keras has them, with Keras's own
output on the input. Untrained (seeded) weights: the tests check the import against Keras.
Also keras_digits_<kind>/model.onnx: a CNN, MLP with BatchNorm, LSTM and GRU trained on the
bundled digits (data/digits.csv.gz without models/digits-mlp/test.csv, which the tests keep
for their accuracy check).

Also keras_encoder/: a one-block MultiHeadAttention encoder (encoder());
`scripts/keras-graphs.py encoder` writes only that.

Run: python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install "tensorflow-cpu==2.15.1" \\
     "tf2onnx==1.16.1" "numpy<2" "onnx==1.16.2" && /tmp/tfenv/bin/python scripts/keras-graphs.py
"""
import os
import sys

import numpy as np
import tensorflow as tf
import tf2onnx

OUT = os.path.join(os.path.dirname(__file__), "..", "importer", "tests", "data", "graphs")
L = tf.keras.layers


def models():
    yield "cnn", (8, 8, 1), [  # Rescaling → Conv → MaxPool → Flatten → Dense (NHWC → Transpose)
        L.Rescaling(1 / 16.0),
        L.Conv2D(4, 3, activation="relu", padding="same"),
        L.MaxPooling2D(2),
        L.Flatten(),
        L.Dense(10, activation="softmax"),
    ]
    yield "cnn_rgb", (6, 6, 3), [  # three channels: tf2onnx transposes the input to NCHW
        L.Conv2D(4, 3, activation="relu"),
        L.Flatten(),
        L.Dense(5),
    ]
    yield "mlp_bn", (64,), [L.Dense(32), L.BatchNormalization(), L.ReLU(), L.Dense(10, activation="softmax")]
    yield "lstm", (6, 4), [L.LSTM(8), L.Dense(3)]
    yield "gru", (6, 4), [L.GRU(8), L.Dense(3)]
    yield "dense_seq", (6, 4), [L.Dense(5, activation="relu")]  # Tensordot over [T, d]


def digits():
    """The bundled digits as (train x, train y): every row of data/digits.csv.gz that is not in
    models/digits-mlp/test.csv, pixels scaled to [0, 1]."""
    root = os.path.join(os.path.dirname(__file__), "..")
    allrows = np.loadtxt(os.path.join(root, "data", "digits.csv.gz"), delimiter=",")
    test = np.loadtxt(os.path.join(root, "models", "digits-mlp", "test.csv"), delimiter=",", skiprows=1)
    held = {tuple(r) for r in test}
    train = np.array([r for r in allrows if tuple(r) not in held])
    return train[:, :64].astype(np.float32), train[:, 64].astype(np.int64)


def trained():
    x, y = digits()
    kinds = {
        "cnn": ((8, 8, 1), [L.Rescaling(1 / 16.0), L.Conv2D(8, 3, activation="relu", padding="same"),
                            L.MaxPooling2D(2), L.Flatten(), L.Dense(10, activation="softmax")]),
        "mlp_bn": ((64,), [L.Rescaling(1 / 16.0), L.Dense(32), L.BatchNormalization(), L.ReLU(),
                           L.Dense(10, activation="softmax")]),
        "lstm": ((8, 8), [L.Rescaling(1 / 16.0), L.LSTM(32), L.Dense(10, activation="softmax")]),
        "gru": ((8, 8), [L.Rescaling(1 / 16.0), L.GRU(32), L.Dense(10, activation="softmax")]),
    }
    for name, (shape, layers) in kinds.items():
        tf.random.set_seed(0)
        m = tf.keras.Sequential([L.Input(shape)] + layers)
        m.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
        m.fit(x.reshape(-1, *shape), y, epochs=30, batch_size=64, verbose=0)
        d = os.path.join(OUT, "keras_digits_" + name)
        os.makedirs(d, exist_ok=True)
        spec = (tf.TensorSpec((None, *shape), tf.float32, name="x"),)
        tf2onnx.convert.from_keras(m, input_signature=spec, opset=17, output_path=os.path.join(d, "model.onnx"))
        print("trained", name, file=sys.stderr)


class Positions(L.Layer):
    """Learned position embeddings added to `[N, T, d]` tokens."""

    def build(self, shape):
        self.table = self.add_weight(name="table", shape=shape[1:], initializer="random_normal")

    def call(self, x):
        return x + self.table


def encoder():
    """keras_encoder: a digit's 8 rows as tokens: Dense(16), learned positions, one post-norm
    block (MultiHeadAttention with 2 heads of 8, residual, LayerNormalization, Dense(32, GELU),
    Dense(16), residual, LayerNormalization), GlobalAveragePooling1D, Dense(10, softmax).
    Seeded, untrained; Keras's own output on the input."""
    tf.random.set_seed(3)
    x = L.Input((8, 8))
    h = Positions()(L.Dense(16)(x))
    a = L.MultiHeadAttention(num_heads=2, key_dim=8)(h, h)
    h = L.LayerNormalization(epsilon=1e-5)(h + a)
    f = L.Dense(16)(L.Dense(32, activation="gelu")(h))
    h = L.LayerNormalization(epsilon=1e-5)(h + f)
    m = tf.keras.Model(x, L.Dense(10, activation="softmax")(L.GlobalAveragePooling1D()(h)))
    for norm in [l for l in m.layers if isinstance(l, L.LayerNormalization)]:  # not 1s and 0s
        norm.set_weights([np.random.RandomState(4).uniform(0.5, 1.5, 16).astype(np.float32),
                          np.random.RandomState(5).normal(0, 0.2, 16).astype(np.float32)])
    x = (np.random.RandomState(6).rand(8, 8, 8) * 2).astype(np.float32)
    d = os.path.join(OUT, "keras_encoder")
    os.makedirs(d, exist_ok=True)
    spec = (tf.TensorSpec((None, 8, 8), tf.float32, name="x"),)
    tf2onnx.convert.from_keras(m, input_signature=spec, opset=17, output_path=os.path.join(d, "model.onnx"))
    np.save(os.path.join(d, "input.npy"), x)
    np.save(os.path.join(d, "expected.npy"), m(x).numpy())
    print("encoder", tf.__version__, tf2onnx.__version__, file=sys.stderr)


def main():
    tf.random.set_seed(0)
    rng = np.random.RandomState(0)
    for name, shape, layers in models():
        m = tf.keras.Sequential([L.Input(shape)] + layers)
        x = (rng.rand(4, *shape) * 2 - 1).astype(np.float32)
        if name == "cnn":
            x = (x + 1) * 8
        if name in ("lstm", "gru"):  # a state well away from 0, as a trained cell has
            x = x * 4
        if name == "mlp_bn":  # non-trivial moving statistics
            bn = m.layers[1]
            bn.set_weights([w + rng.rand(*w.shape).astype(np.float32) * 0.5 for w in bn.get_weights()])
        d = os.path.join(OUT, "keras_" + name)
        os.makedirs(d, exist_ok=True)
        spec = (tf.TensorSpec((None, *shape), tf.float32, name="x"),)
        tf2onnx.convert.from_keras(m, input_signature=spec, opset=13, output_path=os.path.join(d, "model.onnx"))
        np.save(os.path.join(d, "input.npy"), x)
        np.save(os.path.join(d, "expected.npy"), m(x).numpy())
        print(name, file=sys.stderr)
    trained()


if __name__ == "__main__":
    encoder() if sys.argv[1:] == ["encoder"] else main()
