//! A small encoder over image rows: each of the `side` rows is a token of `side` pixels.
//! Dense(d) per token + learned position embeddings, post-norm encoder blocks (multi-head
//! self-attention, residual, LayerNorm; Dense(2d)-ReLU-Dense(d), residual, LayerNorm),
//! mean pooling over tokens, Dense(10)-Softmax. Exported as the ops `torch.onnx.export` writes
//! for `nn.TransformerEncoderLayer` code (MatMul, Reshape/Transpose head split, Softmax(-1),
//! LayerNormalization at opset 17, ReduceMean).
//!
//! ReLU in the feed-forward sublayer rather than GELU: it folds into the Dense before it as a
//! clamp, so the block costs one layer less on chain, at no accuracy cost on digits.

use burn::module::{Module, Param};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use onnx_protobuf::ModelProto;

use crate::data::Dataset;
use crate::export::{Attr, Graph};
use crate::model::{dense, head, host, maybe_fq, param, scaled, weights, zeros, Classifier, CLASSES};
use crate::qat::Qat;
use crate::rng::SplitMix64;

/// Encoder blocks of `--model transformer`.
pub const BLOCKS: usize = 2;
/// Attention heads per block of `--model transformer`.
pub const HEADS: usize = 2;
/// LayerNorm's ε, as PyTorch's default.
const EPS: f32 = 1e-5;

/// One post-norm encoder block; Dense weights `[out, in]` like every trainer model.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    wq: Param<Tensor<B, 2>>,
    bq: Param<Tensor<B, 1>>,
    wk: Param<Tensor<B, 2>>,
    bk: Param<Tensor<B, 1>>,
    wv: Param<Tensor<B, 2>>,
    bv: Param<Tensor<B, 1>>,
    wo: Param<Tensor<B, 2>>,
    bo: Param<Tensor<B, 1>>,
    g1: Param<Tensor<B, 1>>,
    n1: Param<Tensor<B, 1>>,
    w1: Param<Tensor<B, 2>>,
    b1: Param<Tensor<B, 1>>,
    w2: Param<Tensor<B, 2>>,
    b2: Param<Tensor<B, 1>>,
    g2: Param<Tensor<B, 1>>,
    n2: Param<Tensor<B, 1>>,
}

fn ones<B: Backend>(n: usize, device: &B::Device) -> Param<Tensor<B, 1>> {
    param([n], vec![1.0; n], device)
}

impl<B: Backend> Block<B> {
    fn new(rng: &mut SplitMix64, d: usize, device: &B::Device) -> Self {
        let f = 2 * d;
        Block {
            wq: weights(rng, [d, d], d, device),
            bq: zeros(d, device),
            wk: weights(rng, [d, d], d, device),
            bk: zeros(d, device),
            wv: weights(rng, [d, d], d, device),
            bv: zeros(d, device),
            wo: weights(rng, [d, d], d, device),
            bo: zeros(d, device),
            g1: ones(d, device),
            n1: zeros(d, device),
            w1: weights(rng, [f, d], d, device),
            b1: zeros(f, device),
            w2: weights(rng, [d, f], f, device),
            b2: zeros(d, device),
            g2: ones(d, device),
            n2: zeros(d, device),
        }
    }

    fn forward(&self, x: Tensor<B, 3>, h: usize, fq: Qat) -> Tensor<B, 3> {
        let [n, t, d] = x.dims();
        let dh = d / h;
        // [N, T, d] → [N, H, T, dh]
        let heads = |w: &Param<Tensor<B, 2>>, b: &Param<Tensor<B, 1>>| {
            maybe_fq(tokens(x.clone(), w, b, fq), fq)
                .reshape([n, t, h, dh])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (
            heads(&self.wq, &self.bq),
            heads(&self.wk, &self.bk),
            heads(&self.wv, &self.bv),
        );
        let scores = maybe_fq(q.matmul(k.swap_dims(2, 3)).div_scalar((dh as f32).sqrt()), fq);
        let p = maybe_fq(softmax(scores, 3), fq);
        let c = maybe_fq(p.matmul(v), fq).swap_dims(1, 2).reshape([n, t, d]);
        let o = maybe_fq(tokens(c, &self.wo, &self.bo, fq), fq);
        let h = layer_norm(maybe_fq(x + o, fq), &self.g1, &self.n1, fq);
        let f = maybe_fq(relu(tokens(h.clone(), &self.w1, &self.b1, fq)), fq);
        let f = maybe_fq(tokens(f, &self.w2, &self.b2, fq), fq);
        layer_norm(maybe_fq(h + f, fq), &self.g2, &self.n2, fq)
    }
}

/// A Dense over the last axis of `[N, T, in]` (fake-quantized weights when `fq` is on).
fn tokens<B: Backend>(x: Tensor<B, 3>, w: &Param<Tensor<B, 2>>, b: &Param<Tensor<B, 1>>, fq: Qat) -> Tensor<B, 3> {
    let [n, t, i] = x.dims();
    let o = w.dims()[0];
    dense(x.reshape([n * t, i]), w.val(), b.val(), fq).reshape([n, t, o])
}

/// LayerNorm over the last axis with per-channel γ, β.
fn layer_norm<B: Backend>(x: Tensor<B, 3>, g: &Param<Tensor<B, 1>>, b: &Param<Tensor<B, 1>>, fq: Qat) -> Tensor<B, 3> {
    let centred = x.clone() - x.mean_dim(2);
    let var = centred.clone().powf_scalar(2.0).mean_dim(2);
    let z = centred / var.add_scalar(EPS).sqrt();
    maybe_fq(z * g.val().unsqueeze::<3>() + b.val().unsqueeze::<3>(), fq)
}

/// An encoder's sizes: `tokens` tokens of `features` inputs each, width `d`.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub tokens: usize,
    pub features: usize,
    pub d: usize,
    pub heads: usize,
    pub blocks: usize,
}

#[derive(Module, Debug)]
pub struct Transformer<B: Backend> {
    embed_w: Param<Tensor<B, 2>>,
    embed_b: Param<Tensor<B, 1>>,
    /// Learned position embeddings `[tokens, d]`.
    pos: Param<Tensor<B, 2>>,
    blocks: Vec<Block<B>>,
    fc_w: Param<Tensor<B, 2>>,
    fc_b: Param<Tensor<B, 1>>,
    tokens: usize,
    heads: usize,
    qat: Qat,
}

impl<B: Backend> Transformer<B> {
    /// `--model transformer` on `side`×`side` images: [`BLOCKS`] blocks of [`HEADS`] heads.
    /// `None` unless `d` is a positive multiple of the heads.
    pub fn new(side: usize, d: usize, seed: u64, device: &B::Device) -> Option<Self> {
        let shape = Shape {
            tokens: side,
            features: side,
            d,
            heads: HEADS,
            blocks: BLOCKS,
        };
        Self::with_shape(shape, seed, device)
    }

    /// Any encoder of this design (seeded initial weights). `None` unless `d` is a positive
    /// multiple of `heads`.
    pub fn with_shape(s: Shape, seed: u64, device: &B::Device) -> Option<Self> {
        if s.heads == 0 || s.d == 0 || s.d % s.heads != 0 {
            return None;
        }
        let (d, mut rng) = (s.d, SplitMix64::new(seed));
        Some(Transformer {
            embed_w: weights(&mut rng, [d, s.features], s.features, device),
            embed_b: zeros(d, device),
            pos: param([s.tokens, d], rng.uniform(s.tokens * d, 0.1), device),
            blocks: (0..s.blocks).map(|_| Block::new(&mut rng, d, device)).collect(),
            fc_w: weights(&mut rng, [CLASSES, d], d, device),
            fc_b: zeros(CLASSES, device),
            tokens: s.tokens,
            heads: s.heads,
            qat: Qat::Off,
        })
    }

    /// The float model as ONNX taking inputs `[N, tokens, features]` in units of `1 / scale`
    /// (folded into the token Dense).
    pub fn export(&self, scale: f32) -> ModelProto {
        let [d, f] = self.embed_w.dims();
        let t = self.tokens;
        let h = self.heads;
        let mut g = Graph::with_opset(17);
        let embed = transposed(&scaled(host(&self.embed_w), 1.0 / scale), d, f);
        linear(&mut g, "embed", "pixels", "e", &embed, &host(&self.embed_b), [f, d]);
        g.floats("pos", &[t, d], &host(&self.pos));
        g.node("Add", "position", &["e", "pos"], &["h0"], vec![]);
        g.ints("heads", &[0, t as i64, h as i64, (d / h) as i64]);
        g.ints("merged", &[0, t as i64, d as i64]);
        g.floats("sqrt_dh", &[], &[((d / h) as f32).sqrt()]);
        let mut x = "h0".to_string();
        for (i, block) in self.blocks.iter().enumerate() {
            x = export_block(&mut g, block, &format!("block{i}"), &x, d);
        }
        g.node(
            "ReduceMean",
            "mean_pool",
            &[&x],
            &["pooled"],
            vec![Attr::Ints("axes", vec![1]), Attr::Int("keepdims", 0)],
        );
        head(&mut g, "fc", "pooled", &host(&self.fc_w), &host(&self.fc_b), d);
        g.finish("digits_transformer", ("pixels", &[t, f]), ("probabilities", &[CLASSES]))
    }
}

impl<B: Backend> Classifier<B> for Transformer<B> {
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let n = x.dims()[0];
        let (t, f) = (self.tokens, self.embed_w.dims()[1]);
        let fq = self.qat;
        let x = maybe_fq(x.reshape([n, t, f]), fq);
        let e = maybe_fq(tokens(x, &self.embed_w, &self.embed_b, fq), fq);
        // The position table is the Add layer's constant operand, quantized on import.
        let pos = maybe_fq(self.pos.val(), fq);
        let mut h = maybe_fq(e + pos.unsqueeze::<3>(), fq);
        for block in &self.blocks {
            h = block.forward(h, self.heads, fq);
        }
        let d = h.dims()[2];
        let pooled = maybe_fq(h.mean_dim(1).reshape([n, d]), fq);
        maybe_fq(dense(pooled, self.fc_w.val(), self.fc_b.val(), fq), fq)
    }

    fn with_qat(self, qat: Qat) -> Self {
        Transformer { qat, ..self }
    }

    fn to_onnx(&self, data: &Dataset) -> ModelProto {
        self.export(data.pixel_max)
    }
}

/// `[out, in]` row-major → `[in, out]` (ONNX MatMul's layout).
fn transposed(w: &[f32], out: usize, inp: usize) -> Vec<f32> {
    (0..inp).flat_map(|i| (0..out).map(move |o| w[o * inp + i])).collect()
}

/// `y = MatMul(x, W) + b` as the exporters write a per-token Linear; `dims` `[in, out]`.
fn linear(g: &mut Graph, name: &str, x: &str, y: &str, w_in_out: &[f32], b: &[f32], dims: [usize; 2]) {
    let (wn, bn, mm) = (format!("{name}.weight"), format!("{name}.bias"), format!("{name}.mm"));
    g.floats(&wn, &dims, w_in_out);
    g.floats(&bn, &[dims[1]], b);
    g.node("MatMul", &format!("{name}_matmul"), &[x, &wn], &[&mm], vec![]);
    g.node("Add", &format!("{name}_bias"), &[&mm, &bn], &[y], vec![]);
}

fn dense_of<B: Backend>(g: &mut Graph, name: &str, x: &str, y: &str, w: &Param<Tensor<B, 2>>, b: &Param<Tensor<B, 1>>) {
    let [o, i] = w.dims();
    linear(g, name, x, y, &transposed(&host(w), o, i), &host(b), [i, o]);
}

/// One block's nodes on `x`; returns the name of its output.
fn export_block<B: Backend>(g: &mut Graph, b: &Block<B>, p: &str, x: &str, d: usize) -> String {
    let n = |s: &str| format!("{p}.{s}");
    dense_of(g, &n("q"), x, &n("q"), &b.wq, &b.bq);
    dense_of(g, &n("k"), x, &n("k"), &b.wk, &b.bk);
    dense_of(g, &n("v"), x, &n("v"), &b.wv, &b.bv);
    for (t, perm) in [("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])] {
        g.node(
            "Reshape",
            &n(&format!("{t}_split")),
            &[&n(t), "heads"],
            &[&n(&format!("{t}4"))],
            vec![],
        );
        g.node(
            "Transpose",
            &n(&format!("{t}_heads")),
            &[&n(&format!("{t}4"))],
            &[&n(&format!("{t}h"))],
            vec![Attr::Ints("perm", perm.to_vec())],
        );
    }
    g.node("MatMul", &n("scores"), &[&n("qh"), &n("kh")], &[&n("s0")], vec![]);
    g.node("Div", &n("scale"), &[&n("s0"), "sqrt_dh"], &[&n("s")], vec![]);
    g.node(
        "Softmax",
        &n("softmax"),
        &[&n("s")],
        &[&n("p")],
        vec![Attr::Int("axis", -1)],
    );
    g.node("MatMul", &n("context"), &[&n("p"), &n("vh")], &[&n("ch")], vec![]);
    g.node(
        "Transpose",
        &n("merge_heads"),
        &[&n("ch")],
        &[&n("c4")],
        vec![Attr::Ints("perm", vec![0, 2, 1, 3])],
    );
    g.node("Reshape", &n("merge"), &[&n("c4"), "merged"], &[&n("c")], vec![]);
    dense_of(g, &n("out"), &n("c"), &n("o"), &b.wo, &b.bo);
    g.node("Add", &n("residual1"), &[&n("o"), x], &[&n("r1")], vec![]);
    norm(g, &n("norm1"), &n("r1"), &n("h1"), &b.g1, &b.n1, d);
    dense_of(g, &n("ffn1"), &n("h1"), &n("f1"), &b.w1, &b.b1);
    g.node("Relu", &n("relu"), &[&n("f1")], &[&n("f2")], vec![]);
    dense_of(g, &n("ffn2"), &n("f2"), &n("f3"), &b.w2, &b.b2);
    g.node("Add", &n("residual2"), &[&n("f3"), &n("h1")], &[&n("r2")], vec![]);
    norm(g, &n("norm2"), &n("r2"), &n("y"), &b.g2, &b.n2, d);
    n("y")
}

fn norm<B: Backend>(
    g: &mut Graph,
    name: &str,
    x: &str,
    y: &str,
    gamma: &Param<Tensor<B, 1>>,
    beta: &Param<Tensor<B, 1>>,
    d: usize,
) {
    let (gn, bn) = (format!("{name}.weight"), format!("{name}.bias"));
    g.floats(&gn, &[d], &host(gamma));
    g.floats(&bn, &[d], &host(beta));
    g.node(
        "LayerNormalization",
        name,
        &[x, &gn, &bn],
        &[y],
        vec![Attr::Int("axis", -1), Attr::Float("epsilon", EPS)],
    );
}
