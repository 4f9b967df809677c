//! cwnn's kernels behind one entry point, `dispatch(op, input) -> output`, compiled both
//! natively (rlib) and to a plain Wasm module (cdylib, MVP features, no imports).
//!
//! Any byte string is a valid input: dimensions come from the first bytes (reduced to small
//! ranges), values from the rest (zero once exhausted). So a fuzzer or proptest can throw
//! random bytes at both builds and require identical output bits, error paths included.
//! Output: one status byte (0 = ok, 1 = the kernel refused its input) then the result bytes.
extern crate alloc;

use alloc::vec::Vec;
use cwnn_layers::{
    Activation, ActivationKind, Add, Affine, AvgPool2d, Constant, Conv2d, Dense, Embedding, GlobalAvgPool, Gru, Layer,
    LayerError, LayerNorm, LayerPlan, Lstm, MatMul, MaxPool2d, Mul, Permute, Recurrent, Reshape, SimpleRnn, Softmax,
    TensorSpec, WeightFormat, Window2d, INDEX_QUANT,
};
use cwnn_tensor::kernels::{self, Clamp, Conv2dGeometry};
use cwnn_tensor::{Dyadic, QTensor, QuantParams, Result, TensorData};

/// Operation codes understood by [`dispatch`].
pub mod op {
    pub const MATVEC_I8: u32 = 0;
    pub const MATVEC_I8_I16: u32 = 1;
    pub const MATMUL_I8: u32 = 2;
    pub const CONV2D_I8: u32 = 3;
    pub const REQUANT_I8: u32 = 4;
    pub const REQUANT_I16: u32 = 5;
    pub const CAST_I32_I8: u32 = 6;
    pub const CAST_I32_I16: u32 = 7;
    pub const LUT_I8: u32 = 8;
    pub const LUT_I32: u32 = 9;
    pub const ARGMAX_I8: u32 = 10;
    pub const SOFTMAX_I8: u32 = 11;
    pub const DYADIC_APPLY: u32 = 12;
    /// First layer op: `LAYER + k` runs layer kind `k` of [`LAYER_NAMES`] through
    /// `cwnn_layers::Layer::forward`, split into two segments at a random unit.
    pub const LAYER: u32 = 13;
    pub const LAYER_NAMES: &[&str] = cwnn_layers::Layer::NAMES;
    /// Number of operations.
    pub const COUNT: u32 = LAYER + LAYER_NAMES.len() as u32;
    /// Benchmark ops, outside the determinism range: one full-size layer with generated
    /// weights. `BENCH_DENSE` reads `n_in: u16 LE, n_out: u16 LE`; `BENCH_CONV` reads
    /// `channels_in, channels_out, kernel, size` (u8 each; "same" padding).
    pub const BENCH_DENSE: u32 = 100;
    pub const BENCH_CONV: u32 = 101;
    /// Name of an op code.
    pub fn name(op: u32) -> &'static str {
        const KERNELS: [&str; LAYER as usize] = [
            "matvec_i8",
            "matvec_i8_i16",
            "matmul_i8",
            "conv2d_i8",
            "requant_i8",
            "requant_i16",
            "cast_i32_i8",
            "cast_i32_i16",
            "lut_i8",
            "lut_i32",
            "argmax_i8",
            "softmax_i8",
            "dyadic_apply",
        ];
        match op {
            o if o < LAYER => KERNELS[o as usize],
            o if o < COUNT => LAYER_NAMES[(o - LAYER) as usize],
            BENCH_DENSE => "bench_dense",
            BENCH_CONV => "bench_conv",
            _ => "unknown",
        }
    }
}

/// Reads values from a byte string; past its end every read is 0.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        let b = self.bytes.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    /// A dimension in `1..=max`.
    fn dim(&mut self, max: u8) -> usize {
        1 + (self.u8() % max) as usize
    }
    fn i8(&mut self) -> i8 {
        self.u8() as i8
    }
    fn i16(&mut self) -> i16 {
        i16::from_le_bytes([self.u8(), self.u8()])
    }
    fn i32(&mut self) -> i32 {
        i32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn vec<T>(&mut self, n: usize, mut f: impl FnMut(&mut Self) -> T) -> Vec<T> {
        (0..n).map(|_| f(self)).collect()
    }
    /// A multiplier, valid most of the time (shift 0 and 63 exercise the refusal path).
    fn dyadic(&mut self) -> Dyadic {
        Dyadic {
            mantissa: self.i32(),
            shift: self.u8() % 64,
        }
    }
    /// An int8 zero point.
    fn zp(&mut self) -> i32 {
        self.i8() as i32
    }
    fn clamp(&mut self) -> Clamp {
        let (a, b) = (self.i16() as i32, self.i16() as i32);
        Clamp {
            lo: a.min(b),
            hi: a.max(b),
        }
    }
}

fn bytes_of<T: Copy>(v: &[T], to: impl Fn(T) -> Vec<u8>) -> Vec<u8> {
    v.iter().flat_map(|&x| to(x)).collect()
}

fn i32s(v: &[i32]) -> Vec<u8> {
    bytes_of(v, |x| x.to_le_bytes().to_vec())
}

/// Runs operation `op` on arguments decoded from `input`.
pub fn dispatch(op: u32, input: &[u8]) -> Vec<u8> {
    let mut r = Reader { bytes: input, pos: 0 };
    let res: Result<Vec<u8>> = match op {
        op::MATVEC_I8 | op::MATVEC_I8_I16 => matvec_case(op, &mut r),
        op::MATMUL_I8 => matmul_case(&mut r),
        op::CONV2D_I8 => conv2d_case(&mut r),
        op::REQUANT_I8 | op::REQUANT_I16 => requant_case(op, &mut r),
        op::CAST_I32_I8 | op::CAST_I32_I16 => cast_case(op, &mut r),
        op::LUT_I8 => lut_i8_case(&mut r),
        op::LUT_I32 => lut_i32_case(&mut r),
        op::ARGMAX_I8 => argmax_case(&mut r),
        op::SOFTMAX_I8 => softmax_case(&mut r),
        op::DYADIC_APPLY => dyadic_case(&mut r),
        o if (op::LAYER..op::COUNT).contains(&o) => return framed(layer_case(o - op::LAYER, &mut r)),
        op::BENCH_DENSE | op::BENCH_CONV => return framed(bench_case(op, &mut r)),
        _ => Err(cwnn_tensor::TensorError::InvalidShape("unknown op")),
    };
    framed(res)
}

fn matvec_case(op: u32, r: &mut Reader) -> Result<Vec<u8>> {
    let (rows, cols) = (r.dim(48), r.dim(96));
    let zp = r.zp();
    let has_bias = r.u8() & 1 == 1;
    let w = r.vec(rows * cols, Reader::i8);
    let bias = r.vec(rows, Reader::i32);
    let mut out = alloc::vec![0i32; rows];
    let b = has_bias.then_some(&bias[..]);
    if op == op::MATVEC_I8 {
        let x = r.vec(cols, Reader::i8);
        kernels::matvec(&w, &x, zp, b, &mut out)
    } else {
        let x = r.vec(cols, Reader::i16);
        kernels::matvec(&w, &x, r.i16() as i32, b, &mut out)
    }
    .map(|_| i32s(&out))
}

fn matmul_case(r: &mut Reader) -> Result<Vec<u8>> {
    let (m, n, k) = (r.dim(6), r.dim(24), r.dim(40));
    let zp = r.zp();
    let w = r.vec(n * k, Reader::i8);
    let a = r.vec(m * k, Reader::i8);
    let bias = r.vec(n, Reader::i32);
    let mut out = alloc::vec![0i32; m * n];
    kernels::matmul(&w, &a, m, zp, Some(&bias), &mut out).map(|_| i32s(&out))
}

fn conv2d_case(r: &mut Reader) -> Result<Vec<u8>> {
    let groups = r.dim(3);
    let g = Conv2dGeometry {
        in_channels: groups * r.dim(3),
        in_h: r.dim(12),
        in_w: r.dim(12),
        out_channels: groups * r.dim(4),
        kernel_h: r.dim(4),
        kernel_w: r.dim(4),
        stride_h: r.dim(3),
        stride_w: r.dim(3),
        dilation_h: r.dim(2),
        dilation_w: r.dim(2),
        pad_top: r.u8() as usize % 3,
        pad_left: r.u8() as usize % 3,
        pad_bottom: r.u8() as usize % 3,
        pad_right: r.u8() as usize % 3,
        groups,
    };
    if g.validate().is_err() {
        Err(cwnn_tensor::TensorError::InvalidShape("conv geometry"))
    } else {
        let c0 = r.u8() as usize % g.out_channels;
        let c1 = c0 + 1 + r.u8() as usize % (g.out_channels - c0);
        let zp = r.zp();
        let x = r.vec(g.input_len().unwrap_or(0), Reader::i8);
        let w = r.vec((c1 - c0) * g.weights_per_channel(), Reader::i8);
        let bias = r.vec(c1 - c0, Reader::i32);
        let mut out = alloc::vec![0i32; (c1 - c0) * g.out_h() * g.out_w()];
        kernels::conv2d(&g, &x, zp, &w, Some(&bias), c0..c1, &mut out).map(|_| i32s(&out))
    }
}

fn requant_case(op: u32, r: &mut Reader) -> Result<Vec<u8>> {
    let (channels, inner) = (r.dim(8), r.dim(32));
    let ms = r.vec(channels, Reader::dyadic);
    let (zp, clamp) = (r.i16() as i32, r.clamp());
    let acc = r.vec(channels * inner, Reader::i32);
    if op == op::REQUANT_I8 {
        let mut out = alloc::vec![0i8; acc.len()];
        kernels::requantize_per_channel(&acc, &ms, zp, clamp, &mut out)
            .map(|_| bytes_of(&out, |x| x.to_le_bytes().to_vec()))
    } else {
        let mut out = alloc::vec![0i16; acc.len()];
        kernels::requantize(&acc, ms[0], zp, clamp, &mut out).map(|_| bytes_of(&out, |x| x.to_le_bytes().to_vec()))
    }
}

fn cast_case(op: u32, r: &mut Reader) -> Result<Vec<u8>> {
    let n = r.dim(128);
    let x = r.vec(n, Reader::i32);
    if op == op::CAST_I32_I8 {
        let mut out = alloc::vec![0i8; n];
        kernels::saturating_cast(&x, &mut out).map(|_| bytes_of(&out, |v| v.to_le_bytes().to_vec()))
    } else {
        let mut out = alloc::vec![0i16; n];
        kernels::saturating_cast(&x, &mut out).map(|_| bytes_of(&out, |v| v.to_le_bytes().to_vec()))
    }
}

fn lut_i8_case(r: &mut Reader) -> Result<Vec<u8>> {
    let n = r.dim(128);
    let mut table = [0i8; 256];
    table.iter_mut().for_each(|t| *t = r.i8());
    let x = r.vec(n, Reader::i8);
    let mut out = alloc::vec![0i8; n];
    kernels::lut(&x, &table, &mut out).map(|_| bytes_of(&out, |v| v.to_le_bytes().to_vec()))
}

fn lut_i32_case(r: &mut Reader) -> Result<Vec<u8>> {
    let n = r.dim(128);
    let mut table = [0i32; 256];
    table.iter_mut().for_each(|t| *t = r.i32());
    let x = r.vec(n, Reader::i8);
    let mut out = alloc::vec![0i32; n];
    kernels::lut(&x, &table, &mut out).map(|_| i32s(&out))
}

fn argmax_case(r: &mut Reader) -> Result<Vec<u8>> {
    let n = r.u8() as usize; // 0 is allowed: argmax of nothing
    let x = r.vec(n, Reader::i8);
    Ok(match kernels::argmax(&x) {
        Some(i) => (i as u32).to_le_bytes().to_vec(),
        None => alloc::vec![0xff; 4],
    })
}

fn softmax_case(r: &mut Reader) -> Result<Vec<u8>> {
    let n = r.dim(64);
    // Mostly valid tables: a decreasing run from EXP_ONE with random decrements; one in
    // eight starts at 0, an all-zero table the kernel must refuse.
    let mut table = [0i32; 256];
    let mut e = if r.u8().is_multiple_of(8) { 0 } else { kernels::EXP_ONE };
    for t in table.iter_mut() {
        *t = e;
        e = (e - r.u8() as i32 * 4).max(0);
    }
    let x = r.vec(n, Reader::i8);
    let mut out = alloc::vec![0i8; n];
    kernels::softmax_i8(&x, &table, &mut out).map(|_| bytes_of(&out, |v| v.to_le_bytes().to_vec()))
}

fn dyadic_case(r: &mut Reader) -> Result<Vec<u8>> {
    let n = r.dim(64);
    let m = r.dyadic();
    let xs = r.vec(n, Reader::i32);
    m.validate()
        .map(|m| bytes_of(&xs, |x| m.apply(x).to_le_bytes().to_vec()))
}

/// A full-size Dense or Conv2d layer run whole: the same code a contract runs, for fuel and
/// time per MAC. After the header come the layer's weight bytes and then its int8 input, both
/// used in place (so the fuel is the layer's, not the reading's). See `bench_input`.
fn bench_case(op: u32, r: &mut Reader) -> core::result::Result<Vec<u8>, LayerError> {
    let qp = QuantParams {
        scale: Dyadic {
            mantissa: 1 << 30,
            shift: 30,
        },
        zero_point: 0,
    };
    let clamp = Clamp { lo: -128, hi: 127 };
    let (layer, x_shape) = if op == op::BENCH_DENSE {
        let n_in = u16::from_le_bytes([r.u8(), r.u8()]).max(1) as usize;
        let n_out = u16::from_le_bytes([r.u8(), r.u8()]).max(1) as usize;
        let d = Dense {
            in_features: n_in,
            out_features: n_out,
            clamp,
            output: qp,
            weights: WeightFormat::Native,
        };
        (Layer::Dense(d), alloc::vec![n_in])
    } else {
        let (c_in, c_out, k, hw) = (r.dim(64), r.dim(64), r.dim(7), r.dim(64));
        let p = k / 2;
        let window = Window2d {
            kernel: [k, k],
            strides: [1, 1],
            dilations: [1, 1],
            pads: [p, p, k - 1 - p, k - 1 - p],
        };
        let conv = Conv2d {
            out_channels: c_out,
            window,
            groups: 1,
            clamp,
            output: qp,
            weights: WeightFormat::Native,
        };
        (Layer::Conv2d(conv), alloc::vec![c_in, hw, hw])
    };
    let spec = TensorSpec::new(x_shape.clone(), cwnn_tensor::DType::I8, qp);
    let plan = layer.plan(&[&spec])?;
    let rest = r.bytes.get(r.pos..).unwrap_or_default();
    let n: usize = x_shape.iter().product();
    if rest.len() != plan.weight_len + n {
        return Err(LayerError::WeightLength {
            layer: "bench",
            expected: plan.weight_len + n,
            actual: rest.len(),
        });
    }
    let (weights, x) = rest.split_at(plan.weight_len);
    let x = QTensor {
        shape: x_shape,
        data: TensorData::I8(x.iter().map(|&b| b as i8).collect()),
        quant: qp,
    };
    let y = layer.run(&[&x], weights)?;
    Ok(y.data.to_le_bytes())
}

/// An input for `BENCH_DENSE` (`header = [n_in, n_out]`) or `BENCH_CONV`
/// (`[c_in, c_out, kernel, size]`): pseudo-random int8 weights and input, small biases, valid
/// multipliers, deterministic.
pub fn bench_input(op: u32, dims: [usize; 4]) -> Vec<u8> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut byte = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as u8
    };
    let (mut out, unit, units, n) = if op == op::BENCH_DENSE {
        let [n_in, n_out, ..] = dims;
        let mut h = (n_in as u16).to_le_bytes().to_vec();
        h.extend((n_out as u16).to_le_bytes());
        (h, n_in, n_out, n_in)
    } else {
        let [c_in, c_out, k, hw] = dims;
        let h = alloc::vec![(c_in - 1) as u8, (c_out - 1) as u8, (k - 1) as u8, (hw - 1) as u8];
        (h, c_in * k * k, c_out, c_in * hw * hw)
    };
    for _ in 0..units {
        out.extend((0..unit).map(|_| byte()));
        out.extend((byte() as i32 - 128).to_le_bytes());
        out.extend((1i32 << 30).to_le_bytes());
        out.push(40);
    }
    out.extend((0..n).map(|_| byte()));
    out
}

/// Status byte (0 ok, 1 refused) then the output bytes.
fn framed<E>(res: core::result::Result<Vec<u8>, E>) -> Vec<u8> {
    match res {
        Ok(mut v) => {
            v.insert(0, 0);
            v
        }
        Err(_) => alloc::vec![1],
    }
}

impl Reader<'_> {
    /// Int8 quantization parameters.
    fn qp(&mut self) -> QuantParams {
        QuantParams {
            scale: Dyadic {
                mantissa: self.i32() & i32::MAX,
                shift: 1 + self.u8() % 62,
            },
            zero_point: self.zp(),
        }
    }
    /// An int8 tensor, or int16 with an int16 zero point when `int16`.
    fn tensor(&mut self, shape: Vec<usize>, int16: bool) -> QTensor {
        let n = shape.iter().product();
        let mut quant = self.qp();
        let data = if int16 {
            quant.zero_point = self.i16() as i32;
            TensorData::I16(self.vec(n, Reader::i16))
        } else {
            TensorData::I8(self.vec(n, Reader::i8))
        };
        QTensor { data, shape, quant }
    }
    fn window(&mut self) -> Window2d {
        let (kh, kw) = (self.dim(3), self.dim(3));
        Window2d {
            kernel: [kh, kw],
            strides: [self.dim(2), self.dim(2)],
            dilations: [self.dim(2), 1],
            pads: [
                self.u8() as usize % kh,
                self.u8() as usize % kw,
                self.u8() as usize % kh,
                self.u8() as usize % kw,
            ],
        }
    }
}

/// Builds layer kind `kind` (see [`op::LAYER_NAMES`]) with inputs and weights from random bytes,
/// evaluates it in two segments split at a random unit, and returns the output's bytes.
/// Random weights also exercise the refusal paths (invalid shifts, corrupt tables, bad indices).
fn layer_case(kind: u32, r: &mut Reader) -> core::result::Result<Vec<u8>, LayerError> {
    let case = layer_setup(kind, r)?;
    let refs: Vec<&QTensor> = case.inputs.iter().collect();
    let specs: Vec<TensorSpec> = case.inputs.iter().map(TensorSpec::of).collect();
    let spec_refs: Vec<&TensorSpec> = specs.iter().collect();
    let plan = case.layer.plan(&spec_refs)?;
    let cut = r.u8() as usize % (plan.units + 1);
    let mut out = plan.output.zeros()?;
    let mut state = alloc::vec![0; plan.state_len];
    for seg in [0..cut, cut..plan.units] {
        let range = case.layer.weight_range(&spec_refs, seg.clone())?;
        case.layer
            .forward(&refs, &case.weights[range], seg, &mut out, &mut state)?;
    }
    Ok(out.data.to_le_bytes())
}

/// One random layer: the layer, its inputs and its weights.
pub struct LayerCase {
    pub layer: Layer,
    pub inputs: Vec<QTensor>,
    pub weights: Vec<u8>,
}

/// The layer of kind `kind` that `input` describes (the bytes [`dispatch`] takes for op
/// `op::LAYER + kind`), for hosts that run it elsewhere (the gas tests run it in the contract).
pub fn layer_case_of(kind: u32, input: &[u8]) -> core::result::Result<LayerCase, LayerError> {
    layer_setup(kind, &mut Reader { bytes: input, pos: 0 })
}

/// Draws layer kind `kind`, its inputs and its weights (see [`layer_case`]).
fn layer_setup(kind: u32, r: &mut Reader) -> core::result::Result<LayerCase, LayerError> {
    // Half the cases of the layers that have an int16 form (all but Embedding) run in int16.
    let int16 = kind != 11 && r.u8() & 1 == 1;
    let mut out = r.qp();
    if int16 {
        out.zero_point = r.i16() as i32;
    }
    let (layer, inputs): (Layer, Vec<QTensor>) = match kind {
        0 => dense_case(r, int16, out),
        1 => conv_case(r, int16, out),
        2 => activation_case(r, int16, out),
        // Three cases in four with a mask of 1 to 3 rows (random bits).
        3 => (
            Layer::Softmax(Softmax {
                mask_rows: (r.u8() % 4) as u32,
            }),
            {
                let s = alloc::vec![r.dim(3), r.dim(32)];
                alloc::vec![r.tensor(s, int16)]
            },
        ),
        4 | 5 => pool_case(kind, r, int16),
        6 => (Layer::GlobalAvgPool(GlobalAvgPool {}), {
            let s = alloc::vec![r.dim(4), r.dim(8), r.dim(8)];
            alloc::vec![r.tensor(s, int16)]
        }),
        7 => {
            let (a, b) = (r.dim(6), r.dim(6));
            let x = r.tensor(alloc::vec![a, b], int16);
            (
                Layer::Reshape(Reshape {
                    shape: alloc::vec![a * b],
                }),
                alloc::vec![x],
            )
        }
        8 => {
            let (channels, inner) = (r.dim(4), r.dim(16));
            let x = r.tensor(alloc::vec![channels, inner], int16);
            (Layer::Affine(Affine { channels, output: out }), alloc::vec![x])
        }
        9 | 10 => binary_case(kind, r, int16, out),
        11 => embedding_case(r, out),
        12..=14 => recurrent_case(kind, r, int16),
        15 => permute_case(r, int16),
        16 => activation_matmul_case(r, int16, out),
        17 => (Layer::LayerNorm(LayerNorm { output: out }), {
            let s = alloc::vec![r.dim(4), r.dim(32)];
            alloc::vec![r.tensor(s, int16)]
        }),
        _ => {
            return Err(LayerError::Config {
                layer: "kernels",
                reason: "no random case for this layer kind (vm/kernels layer_setup)",
            })
        }
    };
    debug_assert_eq!(layer.name(), op::LAYER_NAMES[kind as usize]);
    let specs: Vec<TensorSpec> = inputs.iter().map(TensorSpec::of).collect();
    let spec_refs: Vec<&TensorSpec> = specs.iter().collect();
    let plan = layer.plan(&spec_refs)?;
    let weights = match kind {
        3 => {
            let mut t = softmax_tables(r, int16);
            let mask = plan.weight_len.saturating_sub(t.len());
            t.extend(r.vec(mask, Reader::u8));
            t
        }
        15 => permute_indices(r, plan.units, inputs[0].len()),
        17 => layer_norm_weights(r, plan.weight_len),
        _ => {
            let mut w = r.vec(plan.weight_len, Reader::u8);
            fix_shifts(&layer, &plan, int16, &mut w, r);
            w
        }
    };
    Ok(LayerCase { layer, inputs, weights })
}

/// Int4 weights for half the int8 cases of the layers that have them (Dense, Conv2d,
/// Embedding and the recurrent layers).
fn weight_format(r: &mut Reader, int16: bool) -> WeightFormat {
    match !int16 && r.u8() & 1 == 1 {
        true => WeightFormat::Int4,
        false => WeightFormat::Native,
    }
}

fn dense_case(r: &mut Reader, int16: bool, output: QuantParams) -> (Layer, Vec<QTensor>) {
    let weights = weight_format(r, int16);
    let (in_features, out_features, rows) = (r.dim(64), r.dim(32), r.dim(3));
    let c = r.clamp();
    let clamp = Clamp {
        lo: c.lo >> 8,
        hi: c.hi >> 8,
    };
    let d = Dense {
        in_features,
        out_features,
        clamp,
        output,
        weights,
    };
    (
        Layer::Dense(d),
        alloc::vec![r.tensor(alloc::vec![rows, in_features], int16)],
    )
}

fn conv_case(r: &mut Reader, int16: bool, output: QuantParams) -> (Layer, Vec<QTensor>) {
    let weights = weight_format(r, int16);
    let groups = r.dim(2);
    let out_channels = groups * r.dim(3);
    let kernel = [r.dim(3), r.dim(3)];
    let strides = [r.dim(2), r.dim(2)];
    let dilations = [r.dim(2), 1];
    let pads = [0; 4].map(|_| r.u8() as usize % 2);
    let conv = Conv2d {
        out_channels,
        window: Window2d {
            kernel,
            strides,
            dilations,
            pads,
        },
        groups,
        clamp: Clamp::full::<i8>(),
        output,
        weights,
    };
    let shape = alloc::vec![groups * r.dim(3), 2 + r.dim(8), 2 + r.dim(8)];
    (Layer::Conv2d(conv), alloc::vec![r.tensor(shape, int16)])
}

fn activation_case(r: &mut Reader, int16: bool, output: QuantParams) -> (Layer, Vec<QTensor>) {
    // Tanh is a table (int8) or knots (int16); LeakyReLU in int16 is a rescale.
    let kind = match r.u8() & 1 {
        1 => ActivationKind::LeakyRelu,
        _ => ActivationKind::Tanh,
    };
    let s = alloc::vec![r.dim(64)];
    (
        Layer::Activation(Activation { kind, output }),
        alloc::vec![r.tensor(s, int16)],
    )
}

fn pool_case(kind: u32, r: &mut Reader, int16: bool) -> (Layer, Vec<QTensor>) {
    let window = r.window();
    let shape = alloc::vec![r.dim(3), 3 + r.dim(8), 3 + r.dim(8)];
    let layer = match kind {
        4 => Layer::MaxPool2d(MaxPool2d { window }),
        _ => Layer::AvgPool2d(AvgPool2d {
            window,
            count_include_pad: r.u8() & 1 == 1,
        }),
    };
    (layer, alloc::vec![r.tensor(shape, int16)])
}

fn binary_case(kind: u32, r: &mut Reader, int16: bool, output: QuantParams) -> (Layer, Vec<QTensor>) {
    const SHAPES: [(&[usize], &[usize]); 4] =
        [(&[3, 4], &[3, 4]), (&[3, 4], &[4]), (&[2, 3, 1], &[1, 5]), (&[6], &[1])];
    let (sa, sb) = SHAPES[r.u8() as usize % 4];
    let a = r.tensor(sa.to_vec(), int16);
    let b = r.tensor(sb.to_vec(), int16);
    let constant = (r.u8() & 1 == 1).then(|| Constant {
        shape: sb.to_vec(),
        quant: b.quant,
    });
    let inputs = match constant {
        Some(_) => alloc::vec![a],
        None => alloc::vec![a, b],
    };
    let layer = match kind {
        9 => Layer::Add(Add {
            multipliers: [r.i32() >> 8, r.i32() >> 8],
            shift: 20 + r.u8() % 20,
            constant,
            output,
        }),
        _ => Layer::Mul(Mul {
            multiplier: r.dyadic(),
            constant,
            output,
        }),
    };
    (layer, inputs)
}

fn recurrent_case(kind: u32, r: &mut Reader, int16: bool) -> (Layer, Vec<QTensor>) {
    let weights = weight_format(r, int16);
    let rnn = Recurrent {
        input_size: r.dim(6),
        hidden: r.dim(8),
        reverse: r.u8() & 1 == 1,
        sequence_output: r.u8() & 1 == 1,
        initial_state: r.u8() & 1 == 1,
        weights,
    };
    let steps = r.dim(12);
    let x = r.tensor(alloc::vec![steps, rnn.input_size], int16);
    let layer = match kind {
        12 => Layer::SimpleRnn(SimpleRnn { rnn }),
        13 => Layer::Gru(Gru {
            rnn,
            linear_before_reset: r.u8() & 1 == 1,
        }),
        _ => Layer::Lstm(Lstm {
            rnn,
            peepholes: r.u8() & 1 == 1,
        }),
    };
    (layer, alloc::vec![x])
}

/// A reordering of the input, or (one case in two) a selection of any size, such as a CLS token.
fn permute_case(r: &mut Reader, int16: bool) -> (Layer, Vec<QTensor>) {
    let (a, b, c) = (r.dim(4), r.dim(4), r.dim(4));
    let x = r.tensor(alloc::vec![a, b, c], int16);
    let shape = match r.u8() & 1 {
        0 => alloc::vec![c, a, b],
        _ => alloc::vec![r.dim((2 * a * b * c) as u8)],
    };
    (Layer::Permute(Permute { shape }), alloc::vec![x])
}

/// Two activations for a MatMul: a batch of heads (or one operand shared), either one
/// transposed.
fn activation_matmul_case(r: &mut Reader, int16: bool, output: QuantParams) -> (Layer, Vec<QTensor>) {
    let (h, m, k, n) = (r.dim(3), r.dim(8), r.dim(24), r.dim(8));
    let (transpose_a, transpose_b, shared) = (r.u8() & 1 == 1, r.u8() & 1 == 1, r.u8() % 4);
    let shape = |lead: bool, rows: usize, cols: usize, t: bool| {
        let mut s = if lead { alloc::vec![h] } else { alloc::vec![] };
        s.extend(if t { [cols, rows] } else { [rows, cols] });
        s
    };
    let a = r.tensor(shape(shared != 1, m, k, transpose_a), int16);
    let b = r.tensor(shape(shared != 2, k, n, transpose_b), int16);
    let layer = MatMul {
        transpose_a,
        transpose_b,
        multiplier: r.dyadic(),
        output,
    };
    (Layer::MatMul(layer), alloc::vec![a, b])
}

/// LayerNorm's weights: mostly valid (the ε term below 2^60, shifts in 1..=62); one case in
/// eight keeps its drawn ε term (a refusal path when above 2^60).
fn layer_norm_weights(r: &mut Reader, len: usize) -> Vec<u8> {
    let mut w = r.vec(len, Reader::u8);
    if !r.u8().is_multiple_of(8) {
        w[7] &= 0x0f;
    }
    for u in w[8..].chunks_exact_mut(13) {
        u[4] = 1 + u[4] % 62;
    }
    w
}

/// A Permute's index table: `n` random indices into the input's `len` elements; one case in
/// eight has one outside it (a refusal path).
fn permute_indices(r: &mut Reader, n: usize, len: usize) -> Vec<u8> {
    let broken = r.u8().is_multiple_of(8);
    let mut w = Vec::with_capacity(4 * n);
    for k in 0..n {
        let i = match (broken, k) {
            (true, 0) => len as u32,
            _ => ((r.u8() as usize * 31 + k) % len) as u32,
        };
        w.extend_from_slice(&i.to_le_bytes());
    }
    w
}

fn embedding_case(r: &mut Reader, output: QuantParams) -> (Layer, Vec<QTensor>) {
    let weights = weight_format(r, false);
    let (vocab, dim, n) = (r.dim(16), r.dim(8), r.dim(8));
    // Indices in [-vocab, vocab); one case in eight has one outside (a refusal path).
    let mut idx = r.vec(n, |r| (r.u8() as i32 % (2 * vocab as i32)) - vocab as i32);
    if r.u8().is_multiple_of(8) {
        idx[0] = vocab as i32;
    }
    let t = QTensor {
        shape: alloc::vec![n],
        data: TensorData::I32(idx),
        quant: INDEX_QUANT,
    };
    let layer = Embedding {
        vocab,
        dim,
        output,
        weights,
    };
    (Layer::Embedding(layer), alloc::vec![t])
}

/// Softmax's weights: in int16 a multiplier and mostly valid power-of-two knots (falling from
/// 2^30, ≥ 2^29); in int8 a mostly valid exp table, as for `SOFTMAX_I8`.
fn softmax_tables(r: &mut Reader, int16: bool) -> Vec<u8> {
    if int16 {
        let mut t = Vec::with_capacity(5 + 257 * 4);
        t.extend_from_slice(&(r.i32() & i32::MAX).to_le_bytes());
        t.push(1 + r.u8() % 62);
        let mut k: u32 = if r.u8().is_multiple_of(8) { 0 } else { 1 << 30 };
        for _ in 0..257 {
            t.extend_from_slice(&k.to_le_bytes());
            k -= (r.u8() as u32 * 8192).min(k);
        }
        return t;
    }
    let mut e = if r.u8().is_multiple_of(8) { 0 } else { kernels::EXP_ONE };
    let mut t = Vec::with_capacity(1024);
    for _ in 0..256 {
        t.extend_from_slice(&e.to_le_bytes());
        e = (e - r.u8() as i32 * 4).max(0);
    }
    t
}

/// Multiplier shifts sit at fixed offsets of each unit of random weights: makes them mostly
/// valid (1..=62) so most cases compute, leaving one unit in eight as drawn (an
/// invalid-weights path).
fn fix_shifts(layer: &Layer, plan: &LayerPlan, int16: bool, w: &mut [u8], r: &mut Reader) {
    // Dense and Conv2d units (int8, int4 or int16) end with their multiplier's shift.
    let (unit, at) = match layer {
        Layer::Dense(_) | Layer::Conv2d(_) => (
            plan.weight_len / plan.units.max(1),
            plan.weight_len / plan.units.max(1) - 1,
        ),
        Layer::Affine(_) => (13, 4),
        // `[m_pos][m_neg][lo][hi]`: the second shift is fixed below.
        Layer::Activation(a) if int16 && a.kind == ActivationKind::LeakyRelu => {
            w[9] = 1 + w[9] % 62;
            (18, 4)
        }
        _ => (0, 0),
    };
    if unit > 0 {
        for (k, u) in w.chunks_exact_mut(unit).enumerate() {
            if k % 8 != 7 || !r.u8().is_multiple_of(4) {
                u[at] = 1 + u[at] % 62;
            }
        }
    }
    // Recurrent gate rows: `[W: input][R: hidden][b_W, b_R][m_W][m_H]`, int8 weights and
    // i32 biases or int16 and i64; two shifts each, at the same offsets from the end.
    let (rnn, gates) = match layer {
        Layer::SimpleRnn(SimpleRnn { rnn }) => (rnn, 1),
        Layer::Gru(Gru { rnn, .. }) => (rnn, 3),
        Layer::Lstm(Lstm { rnn, .. }) => (rnn, 4),
        _ => return,
    };
    let row = match (int16, rnn.weights) {
        (true, _) => 2 * (rnn.input_size + rnn.hidden) + 26,
        (false, WeightFormat::Int4) => rnn.input_size.div_ceil(2) + rnn.hidden.div_ceil(2) + 18,
        (false, WeightFormat::Native) => rnn.input_size + rnn.hidden + 18,
    };
    for u in w.chunks_exact_mut(row).take(gates * rnn.hidden) {
        u[row - 6] = 1 + u[row - 6] % 62;
        u[row - 1] = 1 + u[row - 1] % 62;
    }
}

#[cfg(target_arch = "wasm32")]
mod wasm_abi {
    //! The module's exports: allocate an input buffer, run, read `[len: u32 LE][bytes]`.
    use alloc::vec::Vec;

    #[no_mangle]
    pub extern "C" fn cwnn_alloc(len: u32) -> *mut u8 {
        let mut v = Vec::<u8>::with_capacity(len as usize);
        let p = v.as_mut_ptr();
        core::mem::forget(v);
        p
    }

    /// Frees a buffer from [`cwnn_alloc`] or [`cwnn_run`] (`cap` is its capacity).
    ///
    /// # Safety
    /// `ptr`/`cap` must come from this module's allocations.
    #[no_mangle]
    pub unsafe extern "C" fn cwnn_free(ptr: *mut u8, cap: u32) {
        drop(Vec::from_raw_parts(ptr, 0, cap as usize));
    }

    /// Runs `op` on `len` bytes at `ptr` (consumed) and returns `[len: u32][output]`.
    ///
    /// # Safety
    /// `ptr` must come from [`cwnn_alloc`] with capacity `len`.
    #[no_mangle]
    pub unsafe extern "C" fn cwnn_run(op: u32, ptr: *mut u8, len: u32) -> *mut u8 {
        let input = Vec::from_raw_parts(ptr, len as usize, len as usize);
        let out = super::dispatch(op, &input);
        let mut framed = Vec::with_capacity(out.len() + 4);
        framed.extend_from_slice(&(out.len() as u32).to_le_bytes());
        framed.extend_from_slice(&out);
        framed.shrink_to_fit();
        let p = framed.as_mut_ptr();
        core::mem::forget(framed);
        p
    }
}
