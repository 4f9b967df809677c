//! The machinery SimpleRNN, GRU and LSTM share: gate rows, gate tables, state, the time loop.
//!
//! Number formats: gate pre-activations Q3.12 (i16 range, ±8), gate values and the carried
//! hidden and cell state Q15 in i32 (1.0 = 2^15; the cell state is clamped to ±512), the
//! output `h` int8 at scale 1/128. Sigmoid and tanh are 257-entry int16 tables over Q3.12 with
//! linear interpolation (step 1/16; interpolation error ≤ 4·10^-4 for tanh, ≤ 6·10^-5 for
//! sigmoid), built on the host and stored in the weights.
//!
//! Weights, in order: `gates·hidden` rows `[W_k: i8 × input][R_k: i8 × hidden][b_W: i32]
//! [b_R: i32][m_W: dyadic][m_H: dyadic]` in ONNX gate order; LSTM peepholes `3·hidden × i16`
//! (Q3.12, order i, o, f); the initial state if given (`hidden × i32` h0, and c0 for LSTM, Q15);
//! the sigmoid table (GRU, LSTM) and the tanh table (`257 × i16` each).
//!
//! Units are time steps, in processing order (reversed for `reverse`): each segment reads all
//! weights and carries `h` (and `c`) to the next through the state buffer.

use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use cwnn_tensor::kernels::{accumulator_fits, centered, dot};
use cwnn_tensor::{DType, Dyadic, QTensor, QuantParams};

use crate::spec::{expect_i8, i8_data, i8_data_mut, WeightReader, DYADIC_BYTES};
use crate::{LayerError, Result, TensorSpec};

/// Scale of `h` (the output): 1/128, zero point 0.
pub const HIDDEN_QUANT: QuantParams = QuantParams {
    scale: Dyadic {
        mantissa: 1 << 30,
        shift: 37,
    },
    zero_point: 0,
};

pub(crate) const ONE: i32 = 1 << 15;
pub(crate) const TABLE_LEN: usize = 257;
const CELL_LIMIT: i32 = 512 * ONE;

/// Options every recurrent layer has (ONNX attributes and optional inputs, batch 1, one
/// direction; a bidirectional ONNX node becomes two layers).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Recurrent {
    #[cfg_attr(feature = "serde", serde(with = "crate::dims::dim"))]
    #[cfg_attr(feature = "schema", schemars(with = "u32"))]
    pub input_size: usize,
    #[cfg_attr(feature = "serde", serde(with = "crate::dims::dim"))]
    #[cfg_attr(feature = "schema", schemars(with = "u32"))]
    pub hidden: usize,
    /// Read the sequence from its end (ONNX `direction = "reverse"`).
    pub reverse: bool,
    /// Output every step's `h` (`[T, hidden]`, ONNX `Y`) or only the last (`[hidden]`, `Y_h`).
    pub sequence_output: bool,
    /// Initial `h` (and `c`) are in the weights; otherwise they are 0.
    pub initial_state: bool,
}

/// What differs between the three cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cell {
    Rnn,
    Gru { linear_before_reset: bool },
    Lstm { peepholes: bool },
}

impl Cell {
    pub(crate) fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Gru { .. } => 3,
            Cell::Lstm { .. } => 4,
        }
    }
    fn states(self) -> usize {
        if matches!(self, Cell::Lstm { .. }) {
            2
        } else {
            1
        }
    }
}

impl Recurrent {
    fn row_bytes(&self) -> usize {
        self.input_size + self.hidden + 8 + 2 * DYADIC_BYTES
    }
    pub(crate) fn weight_len(&self, cell: Cell) -> usize {
        let h = self.hidden;
        let peep = if matches!(cell, Cell::Lstm { peepholes: true }) {
            3 * h * 2
        } else {
            0
        };
        let init = if self.initial_state { cell.states() * h * 4 } else { 0 };
        let tables = if cell == Cell::Rnn { 1 } else { 2 } * TABLE_LEN * 2;
        cell.gates() * h * self.row_bytes() + peep + init + tables
    }
    pub(crate) fn state_len(&self, cell: Cell) -> usize {
        cell.states() * self.hidden
    }
    pub(crate) fn output_spec(&self, layer: &'static str, x: &TensorSpec) -> Result<TensorSpec> {
        expect_i8(layer, x)?;
        if self.hidden == 0 || self.input_size == 0 {
            return Err(LayerError::Config {
                layer,
                reason: "input_size and hidden must be ≥ 1",
            });
        }
        if !accumulator_fits(self.input_size.max(self.hidden), 128, 255, 0) {
            return Err(LayerError::Config {
                layer,
                reason: "too many inputs per gate for an exact i32 sum",
            });
        }
        match x.shape[..] {
            [t, i] if t > 0 && i == self.input_size => {
                let shape = if self.sequence_output {
                    vec![t, self.hidden]
                } else {
                    vec![self.hidden]
                };
                Ok(TensorSpec::new(shape, DType::I8, HIDDEN_QUANT))
            }
            _ => Err(LayerError::InputShape {
                layer,
                expected: vec![0, self.input_size],
                actual: x.shape.clone(),
            }),
        }
    }
    pub(crate) fn macs(&self, cell: Cell, x: &TensorSpec) -> u64 {
        let t = x.shape.first().copied().unwrap_or(0) as u64;
        t * (cell.gates() * self.hidden * (self.input_size + self.hidden)) as u64
    }

    /// Runs time steps `units` (processing order).
    #[allow(clippy::too_many_arguments)] // Op::forward's arguments plus the layer name and cell.
    pub(crate) fn forward(
        &self,
        layer: &'static str,
        cell: Cell,
        x: &QTensor,
        weights: &[u8],
        units: Range<usize>,
        out: &mut QTensor,
        state: &mut [i32],
    ) -> Result<()> {
        let (n_in, h) = (self.input_size, self.hidden);
        let steps = x.shape[0];
        let mut w = WeightReader::new(layer, weights);
        let mut rows = Vec::with_capacity(cell.gates() * h);
        for _ in 0..cell.gates() * h {
            rows.push(GateRow {
                w: w.i8s(n_in)?,
                r: w.i8s(h)?,
                bw: w.i32()?,
                br: w.i32()?,
                mw: w.dyadic()?,
                mh: w.dyadic()?,
            });
        }
        let mut peep = vec![
            0i32;
            if matches!(cell, Cell::Lstm { peepholes: true }) {
                3 * h
            } else {
                0
            }
        ];
        for p in peep.iter_mut() {
            let b = w.take(2)?;
            *p = i16::from_le_bytes([b[0], b[1]]) as i32;
        }
        let mut init = vec![0i32; if self.initial_state { cell.states() * h } else { 0 }];
        for v in init.iter_mut() {
            *v = w.i32()?;
        }
        let sigmoid = if cell == Cell::Rnn {
            [0; TABLE_LEN]
        } else {
            table(&mut w)?
        };
        let tanh = table(&mut w)?;
        if units.start == 0 && self.initial_state {
            state.copy_from_slice(&init);
        }
        let xs = centered(i8_data(layer, x)?, x.quant.zero_point);
        let y = i8_data_mut(layer, out)?;
        let (hs, cs) = state.split_at_mut(h);
        let mut h8 = vec![0i32; h];
        let mut pre = vec![0i32; cell.gates() * h];
        let mut rh = vec![0i32; if matches!(cell, Cell::Gru { .. }) { h } else { 0 }];
        for k in units {
            let t = if self.reverse { steps - 1 - k } else { k };
            let xt = &xs[t * n_in..(t + 1) * n_in];
            for (v, &s) in h8.iter_mut().zip(hs.iter()) {
                *v = to_h8(s) as i32;
            }
            for (p, row) in pre.iter_mut().zip(&rows) {
                *p = row.input(xt) + row.recurrent(&h8);
            }
            match cell {
                Cell::Rnn => {
                    for j in 0..h {
                        hs[j] = lut(&tanh, pre[j]);
                    }
                }
                Cell::Gru { linear_before_reset } => {
                    // Gate order z, r, h.
                    for j in 0..h {
                        let r = lut(&sigmoid, pre[h + j]);
                        rh[j] = to_h8(mul15(r, hs[j])) as i32;
                        if linear_before_reset {
                            pre[2 * h + j] = rows[2 * h + j].input(xt) + mul15(r, rows[2 * h + j].recurrent(&h8));
                        }
                    }
                    for j in 0..h {
                        if !linear_before_reset {
                            pre[2 * h + j] = rows[2 * h + j].input(xt) + rows[2 * h + j].recurrent(&rh);
                        }
                        let z = lut(&sigmoid, pre[j]);
                        let cand = lut(&tanh, pre[2 * h + j]);
                        hs[j] = mul15(ONE - z, cand).wrapping_add(mul15(z, hs[j]));
                    }
                }
                Cell::Lstm { peepholes } => {
                    // Gate order i, o, f, c; peepholes i, o, f.
                    for j in 0..h {
                        let (mut zi, mut zo, mut zf) = (pre[j], pre[h + j], pre[2 * h + j]);
                        if peepholes {
                            zi = zi.wrapping_add(mul15(peep[j], cs[j]));
                            zf = zf.wrapping_add(mul15(peep[2 * h + j], cs[j]));
                        }
                        let (i, f, g) = (lut(&sigmoid, zi), lut(&sigmoid, zf), lut(&tanh, pre[3 * h + j]));
                        cs[j] = mul15(f, cs[j]).wrapping_add(mul15(i, g)).clamp(-CELL_LIMIT, CELL_LIMIT);
                        if peepholes {
                            zo = zo.wrapping_add(mul15(peep[h + j], cs[j]));
                        }
                        let o = lut(&sigmoid, zo);
                        hs[j] = mul15(o, lut(&tanh, (cs[j] + 4) >> 3));
                    }
                }
            }
            if self.sequence_output {
                for (o, &s) in y[t * h..(t + 1) * h].iter_mut().zip(hs.iter()) {
                    *o = to_h8(s);
                }
            } else if k + 1 == steps {
                for (o, &s) in y.iter_mut().zip(hs.iter()) {
                    *o = to_h8(s);
                }
            }
        }
        Ok(())
    }
}

/// The `Op` impl of a recurrent layer type with a `rnn: Recurrent` field and a `cell()`.
macro_rules! recurrent_op {
    ($ty:ty, $name:literal) => {
        impl $crate::Op for $ty {
            const NAME: &'static str = $name;
            fn output_spec(&self, inputs: &[&$crate::TensorSpec]) -> $crate::Result<$crate::TensorSpec> {
                self.rnn.output_spec(Self::NAME, inputs[0])
            }
            fn weight_len(&self, _: &[&$crate::TensorSpec]) -> usize {
                self.rnn.weight_len(self.cell())
            }
            fn macs(&self, inputs: &[&$crate::TensorSpec]) -> u64 {
                self.rnn.macs(self.cell(), inputs[0])
            }
            fn units(&self, inputs: &[&$crate::TensorSpec]) -> usize {
                inputs[0].shape[0]
            }
            fn state_len(&self, _: &[&$crate::TensorSpec]) -> usize {
                self.rnn.state_len(self.cell())
            }
            fn forward(
                &self,
                inputs: &[&cwnn_tensor::QTensor],
                weights: &[u8],
                units: core::ops::Range<usize>,
                out: &mut cwnn_tensor::QTensor,
                state: &mut [i32],
            ) -> $crate::Result<()> {
                self.rnn
                    .forward(Self::NAME, self.cell(), inputs[0], weights, units, out, state)
            }
        }
    };
}
pub(crate) use recurrent_op;

/// One gate row's weights.
struct GateRow<'a> {
    w: &'a [i8],
    r: &'a [i8],
    bw: i32,
    br: i32,
    mw: Dyadic,
    mh: Dyadic,
}

impl GateRow<'_> {
    /// `W_k·(x − zp) + b_W` rescaled to Q3.12.
    fn input(&self, xt: &[i32]) -> i32 {
        self.mw
            .apply(self.bw.wrapping_add(dot(self.w, xt)))
            .clamp(-(1 << 20), 1 << 20) as i32
    }
    /// `R_k·h + b_R` rescaled to Q3.12.
    fn recurrent(&self, h8: &[i32]) -> i32 {
        self.mh
            .apply(self.br.wrapping_add(dot(self.r, h8)))
            .clamp(-(1 << 20), 1 << 20) as i32
    }
}

fn table(w: &mut WeightReader) -> Result<[i16; TABLE_LEN]> {
    let mut t = [0i16; TABLE_LEN];
    for v in t.iter_mut() {
        let b = w.take(2)?;
        *v = i16::from_le_bytes([b[0], b[1]]);
    }
    Ok(t)
}

/// `round_half_up(a·b / 2^15)` for Q15 operands, truncated to i32. Arithmetic on values that
/// come from uploaded weights (initial state, tables) wraps instead of trapping, so any bytes
/// give defined, identical results natively and in Wasm.
#[inline(always)]
pub(crate) fn mul15(a: i32, b: i32) -> i32 {
    ((a as i64 * b as i64 + (1 << 14)) >> 15) as i32
}

/// Q15 state to the int8 output at 1/128.
#[inline(always)]
fn to_h8(s: i32) -> i8 {
    (s.saturating_add(128) >> 8).clamp(-127, 127) as i8
}

/// Table lookup with linear interpolation: Q3.12 in (saturated to ±8), Q15 out.
#[inline(always)]
pub(crate) fn lut(t: &[i16; TABLE_LEN], z: i32) -> i32 {
    let u = (z.clamp(-32768, 32767) + 32768) as usize;
    let (i, frac) = (u >> 8, (u & 255) as i32);
    let (a, b) = (t[i] as i32, t[(i + 1).min(TABLE_LEN - 1)] as i32);
    a + (((b - a) * frac + 128) >> 8)
}

#[cfg(feature = "std")]
pub(crate) mod host {
    use cwnn_tensor::host::requant_multiplier;
    use cwnn_tensor::{DType, QuantParams, TensorError};
    use ndarray::{s, Array1, Array2, ArrayD};

    use super::{Cell, Recurrent, ONE, TABLE_LEN};
    use crate::spec::push_dyadic;
    use crate::{Gru, Layer, Lstm, Result, SimpleRnn};

    /// Which recurrent cell, with its f64-only options.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum CellF64 {
        Rnn,
        Gru { linear_before_reset: bool },
        Lstm,
    }

    /// A recurrent layer in f64 (ONNX semantics, default activations: sigmoid gates, tanh).
    #[derive(Clone, Debug)]
    pub struct RecurrentF64 {
        pub cell: CellF64,
        /// `gates·hidden × input`, ONNX gate order (LSTM i, o, f, c; GRU z, r, h).
        pub w: Array2<f64>,
        /// `gates·hidden × hidden`.
        pub r: Array2<f64>,
        pub bw: Array1<f64>,
        pub br: Array1<f64>,
        /// LSTM peepholes `[p_i, p_o, p_f]` (3·hidden).
        pub peepholes: Option<Array1<f64>>,
        pub h0: Option<Array1<f64>>,
        pub c0: Option<Array1<f64>>,
        pub reverse: bool,
        pub sequence_output: bool,
    }

    fn sigmoid(v: f64) -> f64 {
        1.0 / (1.0 + (-v).exp())
    }

    impl RecurrentF64 {
        pub fn hidden(&self) -> usize {
            self.r.ncols()
        }
        /// Over a `[T, input]` sequence: `[T, hidden]` or the last `[hidden]`.
        pub fn forward(&self, x: &ArrayD<f64>) -> ArrayD<f64> {
            let h_n = self.hidden();
            let t_n = x.shape()[0];
            let mut h = self.h0.clone().unwrap_or_else(|| Array1::zeros(h_n));
            let mut c = self.c0.clone().unwrap_or_else(|| Array1::zeros(h_n));
            let mut y = Array2::zeros((t_n, h_n));
            let x2 = x.view().into_dimensionality::<ndarray::Ix2>().expect("[T, input]");
            for k in 0..t_n {
                let t = if self.reverse { t_n - 1 - k } else { k };
                let zx = self.w.dot(&x2.row(t)) + &self.bw;
                let gate = |g: usize, hv: &Array1<f64>| {
                    zx.slice(s![g * h_n..(g + 1) * h_n]).to_owned()
                        + self.r.slice(s![g * h_n..(g + 1) * h_n, ..]).dot(hv)
                        + self.br.slice(s![g * h_n..(g + 1) * h_n])
                };
                h = match self.cell {
                    CellF64::Rnn => gate(0, &h).mapv(f64::tanh),
                    CellF64::Gru { linear_before_reset } => {
                        let z = gate(0, &h).mapv(sigmoid);
                        let r = gate(1, &h).mapv(sigmoid);
                        let cand = if linear_before_reset {
                            let rec = self.r.slice(s![2 * h_n.., ..]).dot(&h) + self.br.slice(s![2 * h_n..]);
                            (zx.slice(s![2 * h_n..]).to_owned() + &r * &rec).mapv(f64::tanh)
                        } else {
                            gate(2, &(&r * &h)).mapv(f64::tanh)
                        };
                        (1.0 - &z) * &cand + &z * &h
                    }
                    CellF64::Lstm => {
                        let p = self.peepholes.clone().unwrap_or_else(|| Array1::zeros(3 * h_n));
                        let pi = p.slice(s![..h_n]).to_owned();
                        let po = p.slice(s![h_n..2 * h_n]).to_owned();
                        let pf = p.slice(s![2 * h_n..]).to_owned();
                        let i = (gate(0, &h) + &pi * &c).mapv(sigmoid);
                        let f = (gate(2, &h) + &pf * &c).mapv(sigmoid);
                        let g = gate(3, &h).mapv(f64::tanh);
                        c = &f * &c + &i * &g;
                        let o = (gate(1, &h) + &po * &c).mapv(sigmoid);
                        &o * &c.mapv(f64::tanh)
                    }
                };
                y.row_mut(t).assign(&h);
            }
            if self.sequence_output {
                y.into_dyn()
            } else {
                h.into_dyn()
            }
        }

        /// The quantized layer for an input at `x_qp`: per-row symmetric W and R, Q3.12 gate
        /// pre-activations, tables built here.
        pub fn quantize(&self, x_qp: &QuantParams) -> Result<(Layer, Vec<u8>)> {
            let h_n = self.hidden();
            let (sx, sh, sg) = (x_qp.scale_f64(), 1.0 / 128.0, 1.0 / 4096.0);
            let mut bytes = Vec::new();
            for k in 0..self.w.nrows() {
                let sym = |row: ndarray::ArrayView1<f64>| -> Result<(f64, Vec<u8>)> {
                    let qp = QuantParams::symmetric(row.iter().fold(0f64, |a, v| a.max(v.abs())), DType::I8)?;
                    Ok((qp.scale_f64(), crate::spec::quantize_i8(row.iter(), &qp)))
                };
                let (sw, wq) = sym(self.w.row(k))?;
                let (sr, rq) = sym(self.r.row(k))?;
                bytes.extend(wq);
                bytes.extend(rq);
                for (b, s) in [(self.bw[k], sx * sw), (self.br[k], sh * sr)] {
                    let q = (b / s).round();
                    if q.abs() >= 2f64.powi(31) {
                        return Err(TensorError::InvalidQuantization("recurrent bias does not fit i32").into());
                    }
                    bytes.extend_from_slice(&(q as i32).to_le_bytes());
                }
                push_dyadic(&mut bytes, requant_multiplier(sx, sw, sg)?);
                push_dyadic(&mut bytes, requant_multiplier(sh, sr, sg)?);
            }
            if let Some(p) = &self.peepholes {
                for &v in p {
                    bytes.extend_from_slice(&((v * 4096.0).round().clamp(-32768.0, 32767.0) as i16).to_le_bytes());
                }
            }
            let initial_state = self.h0.is_some() || self.c0.is_some();
            if initial_state {
                let zeros = Array1::zeros(h_n);
                let mut init = vec![self.h0.as_ref().unwrap_or(&zeros)];
                if self.cell == CellF64::Lstm {
                    init.push(self.c0.as_ref().unwrap_or(&zeros));
                }
                for v in init.into_iter().flatten() {
                    bytes.extend_from_slice(
                        &((v * ONE as f64).round().clamp(-512.0 * ONE as f64, 512.0 * ONE as f64) as i32).to_le_bytes(),
                    );
                }
            }
            if self.cell != CellF64::Rnn {
                bytes.extend(table_bytes(sigmoid));
            }
            bytes.extend(table_bytes(f64::tanh));
            let rnn = Recurrent {
                input_size: self.w.ncols(),
                hidden: h_n,
                reverse: self.reverse,
                sequence_output: self.sequence_output,
                initial_state,
            };
            let layer = match self.cell {
                CellF64::Rnn => Layer::SimpleRnn(SimpleRnn { rnn }),
                CellF64::Gru { linear_before_reset } => Layer::Gru(Gru {
                    rnn,
                    linear_before_reset,
                }),
                CellF64::Lstm => Layer::Lstm(Lstm {
                    rnn,
                    peepholes: self.peepholes.is_some(),
                }),
            };
            debug_assert_eq!(
                bytes.len(),
                match &layer {
                    Layer::SimpleRnn(l) => l.rnn.weight_len(Cell::Rnn),
                    Layer::Gru(l) => l.rnn.weight_len(Cell::Gru {
                        linear_before_reset: l.linear_before_reset
                    }),
                    Layer::Lstm(l) => l.rnn.weight_len(Cell::Lstm { peepholes: l.peepholes }),
                    _ => 0,
                }
            );
            Ok((layer, bytes))
        }
    }

    /// `f` over Q3.12 at steps of 1/16 (entry `j` at `(j·256 − 32768)/4096`), Q15 out.
    fn table_bytes(f: fn(f64) -> f64) -> Vec<u8> {
        (0..TABLE_LEN)
            .flat_map(|j| {
                let x = (j as f64 * 256.0 - 32768.0) / 4096.0;
                ((f(x) * ONE as f64).round().clamp(-32767.0, 32767.0) as i16).to_le_bytes()
            })
            .collect()
    }
}
