#!/usr/bin/env python3
"""Writes importer/tests/data/graphs/torch_<name>/{model.onnx,model.onnx.data,input.npy,
expected.npy}: a small PyTorch CNN and LSTM exported by PyTorch 2's default exporter
(`torch.onnx.export(..., dynamo=True)`, opset 20), which keeps the weights as external data
beside the graph, with PyTorch's own output on the input. Seeded, untrained weights.
Also torch_digits_<kind>/: the same CNN and LSTM trained on the bundled digits
(data/digits.csv.gz without models/digits-mlp/test.csv, which the tests keep for accuracy).

Also torch_encoder_<pool>/: a one-block nn.TransformerEncoderLayer classifier (encoders()),
and torch_bert/: a tiny Hugging Face BERT classifier (bert(); needs `transformers` too).
`scripts/torch-graphs.py encoders` writes only those.

Run: python3 -m venv /tmp/ptenv && /tmp/ptenv/bin/pip install torch onnxscript "onnx==1.17.0" \\
     numpy && /tmp/ptenv/bin/python scripts/torch-graphs.py
"""
import os
import sys

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "importer", "tests", "data", "graphs")


class Cnn(torch.nn.Module):
    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv(x / self.scale)), 2)
        return torch.softmax(self.fc(x.flatten(1)), -1)


class Lstm(torch.nn.Module):
    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale
        self.lstm = torch.nn.LSTM(8, 16, batch_first=True)
        self.fc = torch.nn.Linear(16, 10)

    def forward(self, x):
        y, _ = self.lstm(x / self.scale)
        return self.fc(y[:, -1])


class Encoder(torch.nn.Module):
    """A digit's 8 rows as tokens: a Linear embedding, learned positions, one
    nn.TransformerEncoderLayer (2 heads, GELU feed-forward), then mean or CLS (`h[:, 0]`)
    pooling and a Linear head; `causal` passes a square subsequent mask."""

    def __init__(self, pool="mean", causal=False, norm_first=False):
        super().__init__()
        self.embed = torch.nn.Linear(8, 16)
        self.pos = torch.nn.Parameter(torch.randn(8, 16) * 0.5)
        self.block = torch.nn.TransformerEncoderLayer(
            16, 2, 32, dropout=0.0, activation="gelu", batch_first=True, norm_first=norm_first
        )
        for norm in (self.block.norm1, self.block.norm2):  # not the untrained 1s and 0s
            torch.nn.init.uniform_(norm.weight, 0.5, 1.5)
            torch.nn.init.normal_(norm.bias, 0, 0.2)
        self.head = torch.nn.Linear(16, 10)
        self.pool, self.causal = pool, causal
        self.register_buffer("mask", torch.nn.Transformer.generate_square_subsequent_mask(8))

    def forward(self, x):
        h = self.embed(x) + self.pos
        h = self.block(h, src_mask=self.mask if self.causal else None, is_causal=self.causal)
        return self.head(h.mean(1) if self.pool == "mean" else h[:, 0])


def encoders():
    """torch_encoder_mean (post-norm, mean pooling) and torch_encoder_cls (pre-norm, causal mask,
    CLS pooling), seeded and untrained, with PyTorch's output on the input."""
    for name, kw in [("mean", {}), ("cls", dict(pool="cls", causal=True, norm_first=True))]:
        torch.manual_seed(1)
        model = Encoder(**kw).eval()
        x = torch.rand(8, 8, 8) * 2
        d = os.path.join(OUT, "torch_encoder_" + name)
        export(model, x, d)
        np.save(os.path.join(d, "input.npy"), x.numpy())
        np.save(os.path.join(d, "expected.npy"), model(x).detach().numpy())
        print("encoder", name, torch.__version__)


class Logits(torch.nn.Module):
    """A Hugging Face classifier called on token ids alone, returning its logits."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids):
        return self.model(input_ids=ids).logits


def bert():
    """torch_bert: Hugging Face's BertForSequenceClassification (2 layers, hidden 16, 2 heads,
    intermediate 32, a vocabulary of 40, 3 labels) built from its config, so seeded and
    untrained with nothing downloaded; eager attention; called on 8 token ids."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(2)
    cfg = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=16, num_labels=3)
    cfg._attn_implementation = "eager"
    model = BertForSequenceClassification(cfg).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.LayerNorm):  # not the untrained 1s and 0s
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.normal_(m.bias, 0, 0.2)
    ids = torch.randint(0, 40, (8, 8))
    d = os.path.join(OUT, "torch_bert")
    export(Logits(model), ids, d)
    np.save(os.path.join(d, "input.npy"), ids.numpy())
    np.save(os.path.join(d, "expected.npy"), Logits(model)(ids).detach().numpy())
    print("bert", torch.__version__)


def export(model, x, d):
    os.makedirs(d, exist_ok=True)
    batch = torch.export.Dim("batch")
    program = torch.onnx.export(model, (x,), dynamo=True, dynamic_shapes=({0: batch},))
    program.save(os.path.join(d, "model.onnx"), external_data=True)


def trained():
    root = os.path.join(os.path.dirname(__file__), "..")
    rows = np.loadtxt(os.path.join(root, "data", "digits.csv.gz"), delimiter=",")
    test = np.loadtxt(os.path.join(root, "models", "digits-mlp", "test.csv"), delimiter=",", skiprows=1)
    held = {tuple(r) for r in test}
    train = np.array([r for r in rows if tuple(r) not in held])
    x, y = torch.tensor(train[:, :64], dtype=torch.float32), torch.tensor(train[:, 64], dtype=torch.long)
    for name, model, shape in [("cnn", Cnn(16.0), (-1, 1, 8, 8)), ("lstm", Lstm(16.0), (-1, 8, 8))]:
        torch.manual_seed(0)
        xs = x.reshape(shape)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(60):
            for i in torch.randperm(len(xs)).split(64):
                out = model(xs[i])
                loss = torch.nn.functional.cross_entropy(torch.log(out + 1e-9) if name == "cnn" else out, y[i])
                opt.zero_grad()
                loss.backward()
                opt.step()
        export(model.eval(), xs[:4], os.path.join(OUT, "torch_digits_" + name))
        print("trained", name)


def main():
    torch.manual_seed(0)
    for name, model, shape in [("cnn", Cnn(), (4, 1, 8, 8)), ("lstm", Lstm(), (4, 8, 8))]:
        x = torch.rand(*shape) * 2
        d = os.path.join(OUT, "torch_" + name)
        export(model, x, d)
        np.save(os.path.join(d, "input.npy"), x.numpy())
        np.save(os.path.join(d, "expected.npy"), model(x).detach().numpy())
        print(name, torch.__version__)
    trained()


if __name__ == "__main__":
    if sys.argv[1:] == ["encoders"]:
        encoders()
        bert()
    else:
        main()
