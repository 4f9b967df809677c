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
//! `int16` precision (int16 input): W and R int16 (LE), biases i64, pre-activations Q16 (i32),
//! peepholes Q16 as i32, `h` fed back and output as int16 Q15, tables of 1,025 knots over ±8
//! (step 1/64). The state formats and the weight order are the same.
//!
//! Units are time steps, in processing order (reversed for `reverse`): each segment reads all
//! weights and carries `h` (and `c`) to the next through the state buffer.
//!
//! **Work** per step: `rows·(input + hidden)·MAC + rows·2·REQUANT + hidden·(L·LOOKUP + 8·ELEM)`
//! with `rows = gates·hidden` (GRU: `4·hidden`, its candidate rows run twice) and `L` lookups
//! per hidden unit (RNN 1, GRU 3, LSTM 5); plus, per segment, `T·input·ELEM + rows·REQUANT +
//! (5·hidden + 2·knots)·ELEM` (centring the whole input, multipliers, gate tables). In int16
//! `MAC` = 5 and the element terms double; see `work.rs`.

use alloc::borrow::Cow;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use cwnn_tensor::kernels::{accumulator_fits, centered, dot, dot_i16_le};
use cwnn_tensor::{DType, Dyadic, QTensor, QuantParams};

use crate::act::{act_data, act_data_mut, expect_act, i8_data, i8_data_mut, is_int16};

use crate::weights::{as_i8, unpack_int4, WeightReader, DYADIC_BYTES};
use crate::{work, LayerError, Result, TensorSpec, WeightFormat};

/// Scale of `h` (the output): 1/128, zero point 0.
pub const HIDDEN_QUANT: QuantParams = QuantParams {
    scale: Dyadic {
        mantissa: 1 << 30,
        shift: 37,
    },
    zero_point: 0,
};

/// Scale of `h` in `int16` precision: int16 Q15 (2^-15), zero point 0.
pub const HIDDEN_QUANT_I16: QuantParams = QuantParams {
    scale: Dyadic {
        mantissa: 1 << 30,
        shift: 45,
    },
    zero_point: 0,
};

pub(crate) const ONE: i32 = 1 << 15;
pub(crate) const TABLE_LEN: usize = 257;
/// Knots of an `int16` precision gate table (Q16 over ±8, step 1/64).
pub(crate) const I16_TABLE_LEN: usize = 1025;
/// Pre-activations saturate at ±256 in either format.
const PRE_LIMIT_I16: i64 = 1 << 24;
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
    /// Int4 W and R (int8 activations): each row's weights as nibbles, unpacked per segment.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "WeightFormat::is_native"))]
    pub weights: WeightFormat,
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
    fn row_bytes(&self, int16: bool) -> Option<usize> {
        let n = self.input_size.checked_add(self.hidden)?;
        match (int16, self.weights) {
            (true, WeightFormat::Int4) => None,
            (true, _) => n.checked_mul(2)?.checked_add(16 + 2 * DYADIC_BYTES),
            (false, WeightFormat::Int4) => (self.input_size.div_ceil(2))
                .checked_add(self.hidden.div_ceil(2))?
                .checked_add(8 + 2 * DYADIC_BYTES),
            (false, WeightFormat::Native) => n.checked_add(8 + 2 * DYADIC_BYTES),
        }
    }
    /// Weight bytes; `int16` for an int16 input.
    pub(crate) fn weight_len(&self, cell: Cell, int16: bool) -> Option<usize> {
        let h = self.hidden;
        let peep = if matches!(cell, Cell::Lstm { peepholes: true }) {
            h.checked_mul(3 * if int16 { 4 } else { 2 })?
        } else {
            0
        };
        let init = if self.initial_state {
            h.checked_mul(cell.states() * 4)?
        } else {
            0
        };
        let knots = if int16 { I16_TABLE_LEN } else { TABLE_LEN };
        let tables = if cell == Cell::Rnn { 1 } else { 2 } * knots * 2;
        let rows = cell.gates().checked_mul(h)?.checked_mul(self.row_bytes(int16)?)?;
        rows.checked_add(peep)?.checked_add(init)?.checked_add(tables)
    }
    pub(crate) fn state_len(&self, cell: Cell) -> Option<usize> {
        cell.states().checked_mul(self.hidden)
    }
    pub(crate) fn output_spec(&self, layer: &'static str, x: &TensorSpec) -> Result<TensorSpec> {
        let dtype = expect_act(layer, x)?;
        self.weights.check(layer, dtype == DType::I16)?;
        if self.hidden == 0 || self.input_size == 0 {
            return Err(LayerError::Config {
                layer,
                reason: "input_size and hidden must be ≥ 1",
            });
        }
        if dtype == DType::I8 && !accumulator_fits(self.input_size.max(self.hidden), 128, 255, 0) {
            return Err(LayerError::Config {
                layer,
                reason: "too many inputs per gate for an exact i32 sum",
            });
        }
        let quant = if dtype == DType::I16 {
            HIDDEN_QUANT_I16
        } else {
            HIDDEN_QUANT
        };
        match x.shape[..] {
            [t, i] if t > 0 && i == self.input_size => {
                let shape = if self.sequence_output {
                    vec![t, self.hidden]
                } else {
                    vec![self.hidden]
                };
                Ok(TensorSpec::new(shape, dtype, quant))
            }
            _ => Err(LayerError::InputShape {
                layer,
                expected: vec![0, self.input_size],
                actual: x.shape.clone(),
            }),
        }
    }
    pub(crate) fn macs(&self, cell: Cell, x: &TensorSpec) -> Option<u64> {
        let t = x.shape.first().copied().unwrap_or(0) as u64;
        let row = (self.input_size as u64).checked_add(self.hidden as u64)?;
        t.checked_mul(cell.gates() as u64)?
            .checked_mul(self.hidden as u64)?
            .checked_mul(row)
    }
    /// Steps of input `x`, hidden size and input size.
    fn dims(&self, x: &TensorSpec) -> (u64, usize, usize) {
        let steps = x.shape.first().copied().unwrap_or(0) as u64;
        (steps, self.hidden, self.input_size)
    }

    /// Work units (see the layers' docs): per step the gate rows (GRU computes its candidate
    /// rows twice), their rescales, the cell's lookups and element steps; and what every
    /// segment pays (centring all of `x`, reading the rows and tables) once per step.
    pub(crate) fn work(&self, cell: Cell, x: &TensorSpec) -> u64 {
        let (t, h, n) = self.dims(x);
        let (gates, lookups) = match cell {
            Cell::Rnn => (1, 1),
            Cell::Gru { .. } => (4, 3),
            Cell::Lstm { .. } => (4, 5),
        };
        let rows = work::count(&[gates, h]);
        let step = work::sum(&[
            (rows.saturating_mul((n as u64).saturating_add(h as u64)), work::mac(x)),
            (rows, work::elem(x, 2 * work::REQUANT)),
            (h as u64, work::elem(x, lookups * work::LOOKUP + 8 * work::ELEM)),
        ]);
        t.saturating_mul(step)
    }

    /// What each segment pays whatever its steps: centring the whole input, the rows'
    /// multipliers and the gate tables (and unpacking int4 rows).
    pub(crate) fn segment_work(&self, cell: Cell, x: &TensorSpec) -> u64 {
        let (t, h, n) = self.dims(x);
        let gates = match cell {
            Cell::Rnn => 1,
            Cell::Gru { .. } | Cell::Lstm { .. } => 4,
        };
        let rows = work::count(&[gates, h]);
        let knots = if is_int16(x) { I16_TABLE_LEN } else { TABLE_LEN } as u64;
        let unpack = match self.weights {
            WeightFormat::Int4 => rows.saturating_mul((n as u64).saturating_add(h as u64)),
            WeightFormat::Native => 0,
        };
        work::sum(&[
            (t.saturating_mul(n as u64), work::ELEM),
            (rows, work::REQUANT),
            ((5 * h as u64).saturating_add(2 * knots), work::ELEM),
            (unpack, work::ELEM),
        ])
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
        match x.dtype() {
            DType::I16 => self.steps::<true, I16_TABLE_LEN>(layer, cell, x, weights, units, out, state),
            _ => self.steps::<false, TABLE_LEN>(layer, cell, x, weights, units, out, state),
        }
    }

    /// The time loop, for int8 (`I16 = false`) or int16 (`I16 = true`) operands with
    /// `K`-knot tables; both are constants, so each form compiles without per-step tests of
    /// them and table lookups without bounds checks.
    #[allow(clippy::too_many_arguments)]
    fn steps<const I16: bool, const K: usize>(
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
        let cw = self.read_rows::<I16>(cell, &mut w)?;
        // The tables stay locals: a move of `[i16; K]` would be a byte-by-byte copy in Wasm.
        let sigmoid = if cell == Cell::Rnn { [0; K] } else { table::<K>(&mut w)? };
        let tanh = table::<K>(&mut w)?;
        let tables = (&sigmoid, &tanh);
        if units.start == 0 && self.initial_state {
            state.copy_from_slice(&cw.init);
        }
        // The input centred once: i32 for the int8 dot, i64 for the int16 one.
        let (xs, xw): (Vec<i32>, Vec<i64>) = if I16 {
            let zx = i64::from(x.quant.zero_point);
            let d = act_data::<i16>(layer, x)?.iter().map(|&v| i64::from(v) - zx).collect();
            (Vec::new(), d)
        } else {
            (centered(i8_data(layer, x)?, x.quant.zero_point), Vec::new())
        };
        let (hs, cs) = state.split_at_mut(h);
        let mut hq = Hq::<I16>::new(h);
        let mut pre = vec![0i32; cell.gates() * h];
        let mut rh = Hq::<I16>::new(if matches!(cell, Cell::Gru { .. }) { h } else { 0 });
        let mut ys = Vec::with_capacity(if self.sequence_output { units.len() * h } else { h });
        let mut ts = Vec::with_capacity(units.len());
        for k in units {
            let t = if self.reverse { steps - 1 - k } else { k };
            let xt = Xt {
                int8: xs.get(t * n_in..(t + 1) * n_in).unwrap_or_default(),
                int16: xw.get(t * n_in..(t + 1) * n_in).unwrap_or_default(),
            };
            hq.set(hs);
            for (p, row) in pre.iter_mut().zip(&cw.rows) {
                *p = row.input::<I16>(&xt) + row.recurrent::<I16>(&hq);
            }
            match cell {
                Cell::Rnn => {
                    for j in 0..h {
                        hs[j] = lut::<I16, K>(&tanh, pre[j]);
                    }
                }
                Cell::Gru { linear_before_reset } => {
                    cw.gru_step::<I16, K>(tables, &xt, &hq, &mut rh, &mut pre, hs, linear_before_reset)
                }
                Cell::Lstm { peepholes } => cw.lstm_step::<I16, K>(tables, &pre, hs, cs, peepholes),
            }
            if self.sequence_output || k + 1 == steps {
                ts.push(if self.sequence_output { t } else { 0 });
                ys.extend_from_slice(hs);
            }
        }
        // The outputs, at 1/128 (int8) or Q15 (int16).
        for (t, hv) in ts.into_iter().zip(ys.chunks_exact(h)) {
            if I16 {
                for (o, &s) in act_data_mut::<i16>(layer, out)?[t * h..(t + 1) * h].iter_mut().zip(hv) {
                    *o = to_h16(s) as i16;
                }
            } else {
                for (o, &s) in i8_data_mut(layer, out)?[t * h..(t + 1) * h].iter_mut().zip(hv) {
                    *o = to_h8(s);
                }
            }
        }
        Ok(())
    }

    /// Decodes the gate rows, peepholes and initial state (layout in the module doc), once
    /// per segment; the tables follow in `w`.
    fn read_rows<'a, const I16: bool>(&self, cell: Cell, w: &mut WeightReader<'a>) -> Result<CellWeights<'a>> {
        let (n_in, h) = (self.input_size, self.hidden);
        let width = if I16 { 2 } else { 1 };
        let mut rows = Vec::with_capacity(cell.gates() * h);
        for _ in 0..cell.gates() * h {
            let (wk, rk) = match self.weights {
                WeightFormat::Int4 if !I16 => (int4_row(w, n_in)?, int4_row(w, h)?),
                _ => (w.take(width * n_in)?.into(), w.take(width * h)?.into()),
            };
            let (bw, br) = if I16 {
                (w.i64()?, w.i64()?)
            } else {
                (w.i32()? as i64, w.i32()? as i64)
            };
            rows.push(GateRow {
                w: wk,
                r: rk,
                bw,
                br,
                mw: w.dyadic()?,
                mh: w.dyadic()?,
            });
        }
        // Peepholes in the pre-activation format: Q3.12 as i16, or Q16 as i32 (`int16`).
        let mut peep = vec![
            0i32;
            if matches!(cell, Cell::Lstm { peepholes: true }) {
                3 * h
            } else {
                0
            }
        ];
        for p in peep.iter_mut() {
            *p = if I16 {
                w.i32()?
            } else {
                let b = w.take(2)?;
                i16::from_le_bytes([b[0], b[1]]) as i32
            };
        }
        let mut init = vec![0i32; if self.initial_state { cell.states() * h } else { 0 }];
        for v in init.iter_mut() {
            *v = w.i32()?;
        }
        Ok(CellWeights { rows, peep, init, h })
    }
}

/// A recurrent layer's weights but its tables, decoded: gate rows, peepholes, initial state.
struct CellWeights<'a> {
    rows: Vec<GateRow<'a>>,
    peep: Vec<i32>,
    init: Vec<i32>,
    h: usize,
}

/// The sigmoid and tanh tables.
type Tables<'t, const K: usize> = (&'t [i16; K], &'t [i16; K]);

impl CellWeights<'_> {
    /// One GRU step (gate order z, r, h) from the pre-activations `pre`, updating `hs`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn gru_step<const I16: bool, const K: usize>(
        &self,
        (sigmoid, tanh): Tables<K>,
        xt: &Xt,
        hq: &Hq<I16>,
        rh: &mut Hq<I16>,
        pre: &mut [i32],
        hs: &mut [i32],
        linear_before_reset: bool,
    ) {
        let (h, rows) = (self.h, &self.rows);
        let lut = |t: &[i16; K], z: i32| lut::<I16, K>(t, z);
        for j in 0..h {
            let r = lut(sigmoid, pre[h + j]);
            rh.set_one(j, mul15(r, hs[j]));
            if linear_before_reset {
                let row = &rows[2 * h + j];
                pre[2 * h + j] = row.input::<I16>(xt) + mul15(r, row.recurrent::<I16>(hq));
            }
        }
        for j in 0..h {
            if !linear_before_reset {
                let row = &rows[2 * h + j];
                pre[2 * h + j] = row.input::<I16>(xt) + row.recurrent::<I16>(rh);
            }
            let z = lut(sigmoid, pre[j]);
            let cand = lut(tanh, pre[2 * h + j]);
            hs[j] = mul15(ONE - z, cand).wrapping_add(mul15(z, hs[j]));
        }
    }

    /// One LSTM step (gate order i, o, f, c; peepholes i, o, f), updating `hs` and `cs`.
    #[inline(always)]
    fn lstm_step<const I16: bool, const K: usize>(
        &self,
        (sigmoid, tanh): Tables<K>,
        pre: &[i32],
        hs: &mut [i32],
        cs: &mut [i32],
        peepholes: bool,
    ) {
        let (h, peep) = (self.h, &self.peep);
        let lut = |t: &[i16; K], z: i32| lut::<I16, K>(t, z);
        for j in 0..h {
            let (mut zi, mut zo, mut zf) = (pre[j], pre[h + j], pre[2 * h + j]);
            if peepholes {
                zi = zi.wrapping_add(mul15(peep[j], cs[j]));
                zf = zf.wrapping_add(mul15(peep[2 * h + j], cs[j]));
            }
            let (i, f, g) = (lut(sigmoid, zi), lut(sigmoid, zf), lut(tanh, pre[3 * h + j]));
            cs[j] = mul15(f, cs[j]).wrapping_add(mul15(i, g)).clamp(-CELL_LIMIT, CELL_LIMIT);
            if peepholes {
                zo = zo.wrapping_add(mul15(peep[h + j], cs[j]));
            }
            let o = lut(sigmoid, zo);
            // The cell state (Q15) in the pre-activation format.
            let c = if I16 { cs[j] << 1 } else { (cs[j] + 4) >> 3 };
            hs[j] = mul15(o, lut(tanh, c));
        }
    }
}

/// One step's input, centred: the int8 form's i32 values or the int16 form's i64 ones.
struct Xt<'a> {
    int8: &'a [i32],
    int16: &'a [i64],
}

/// `h` as a gate row's recurrent operand: int8 at 1/128 (i32) or int16 at Q15 (i64).
struct Hq<const I16: bool> {
    int8: Vec<i32>,
    int16: Vec<i64>,
}

impl<const I16: bool> Hq<I16> {
    fn new(n: usize) -> Self {
        Hq {
            int8: vec![0; if I16 { 0 } else { n }],
            int16: vec![0; if I16 { n } else { 0 }],
        }
    }
    /// From the Q15 state.
    fn set(&mut self, s: &[i32]) {
        for (j, &v) in s.iter().enumerate() {
            self.set_one(j, v);
        }
    }
    #[inline(always)]
    fn set_one(&mut self, j: usize, s: i32) {
        if I16 {
            self.int16[j] = to_h16(s) as i64;
        } else {
            self.int8[j] = to_h8(s) as i32;
        }
    }
}

/// The `Op` impl of a recurrent layer type with a `rnn: Recurrent` field and a `cell()`.
macro_rules! recurrent_op {
    ($ty:ty, $name:literal) => {
        impl $crate::Op for $ty {
            const NAME: &'static str = $name;
            const FAMILY: Option<$crate::Family> = Some($crate::Family::Seq);
            fn output_spec(&self, inputs: &[&$crate::TensorSpec]) -> $crate::Result<$crate::TensorSpec> {
                self.rnn.output_spec(Self::NAME, inputs[0])
            }
            fn weight_len(&self, inputs: &[&$crate::TensorSpec]) -> Option<usize> {
                self.rnn.weight_len(self.cell(), $crate::act::is_int16(inputs[0]))
            }
            fn macs(&self, inputs: &[&$crate::TensorSpec]) -> Option<u64> {
                self.rnn.macs(self.cell(), inputs[0])
            }
            fn work(&self, inputs: &[&$crate::TensorSpec]) -> u64 {
                self.rnn.work(self.cell(), inputs[0])
            }
            fn segment_work(&self, inputs: &[&$crate::TensorSpec]) -> u64 {
                self.rnn.segment_work(self.cell(), inputs[0])
            }
            fn units(&self, inputs: &[&$crate::TensorSpec]) -> Option<usize> {
                Some(inputs[0].shape[0])
            }
            fn state_len(&self, _: &[&$crate::TensorSpec]) -> Option<usize> {
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

/// One gate row's weights: int8 or int16 LE bytes, biases widened to i64.
struct GateRow<'a> {
    /// W and R as int8 (or int16 LE) bytes: borrowed from the weights, or unpacked from int4.
    w: Cow<'a, [u8]>,
    r: Cow<'a, [u8]>,
    bw: i64,
    br: i64,
    mw: Dyadic,
    mh: Dyadic,
}

impl GateRow<'_> {
    /// `W_k·(x − zp) + b_W` rescaled to the pre-activation format (Q3.12, or Q16 in `int16`).
    #[inline(always)]
    fn input<const I16: bool>(&self, xt: &Xt) -> i32 {
        if I16 {
            let acc = self.bw.wrapping_add(dot_i16_le(&self.w, xt.int16));
            self.mw.apply_i64(acc).clamp(-PRE_LIMIT_I16, PRE_LIMIT_I16) as i32
        } else {
            let acc = (self.bw as i32).wrapping_add(dot(as_i8(&self.w), xt.int8));
            self.mw.apply(acc).clamp(-(1 << 20), 1 << 20) as i32
        }
    }
    /// `R_k·h + b_R` rescaled to the pre-activation format.
    #[inline(always)]
    fn recurrent<const I16: bool>(&self, hq: &Hq<I16>) -> i32 {
        if I16 {
            let acc = self.br.wrapping_add(dot_i16_le(&self.r, &hq.int16));
            self.mh.apply_i64(acc).clamp(-PRE_LIMIT_I16, PRE_LIMIT_I16) as i32
        } else {
            let acc = (self.br as i32).wrapping_add(dot(as_i8(&self.r), &hq.int8));
            self.mh.apply(acc).clamp(-(1 << 20), 1 << 20) as i32
        }
    }
}

/// `n` int4 weights of a gate row, unpacked to int8 bytes.
fn int4_row<'a>(w: &mut WeightReader<'a>, n: usize) -> Result<Cow<'a, [u8]>> {
    let mut out = vec![0i8; n];
    unpack_int4(w.take(n.div_ceil(2))?, &mut out);
    Ok(Cow::Owned(out.into_iter().map(|v| v as u8).collect()))
}

fn table<const K: usize>(w: &mut WeightReader) -> Result<[i16; K]> {
    let mut t = [0i16; K];
    for (v, b) in t.iter_mut().zip(w.take(2 * K)?.chunks_exact(2)) {
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

/// Q15 state to the int16 output (Q15).
#[inline(always)]
fn to_h16(s: i32) -> i32 {
    s.clamp(-32767, 32767)
}

/// Table lookup with linear interpolation, Q15 out: over Q3.12 (257 knots, step 1/16) or, in
/// `int16`, over Q16 (1,025 knots, step 1/64); the input saturates to ±8.
#[inline(always)]
pub(crate) fn lut<const I16: bool, const K: usize>(t: &[i16; K], z: i32) -> i32 {
    let (bits, lim) = if I16 { (10, 1 << 19) } else { (8, 1 << 15) };
    let u = (z.clamp(-lim, lim - 1) + lim) as usize;
    let (i, frac) = (u >> bits, (u & ((1 << bits) - 1)) as i32);
    let (a, b) = (t[i.min(K - 1)] as i32, t[(i + 1).min(K - 1)] as i32);
    a + (((b - a) * frac + (1 << (bits - 1))) >> bits)
}

#[cfg(feature = "std")]
pub(crate) mod host {
    use crate::{QuantSpec, Quantize};
    use cwnn_tensor::host::requant_multiplier;
    use cwnn_tensor::{DType, QuantParams, TensorError};
    use ndarray::{s, Array1, Array2, ArrayD};

    use super::{Cell, Recurrent, I16_TABLE_LEN, ONE, TABLE_LEN};
    use crate::weights::{pack_int4, push_dyadic};
    use crate::{Gru, Layer, Lstm, Result, SimpleRnn, WeightFormat};

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
    }

    impl Quantize for RecurrentF64 {
        type Layer = Layer;

        /// int8: per-row symmetric W and R, Q3.12 gate pre-activations, 257-knot tables, `h` at
        /// 1/128. int16: int16 W and R, i64 biases, Q16 pre-activations and peepholes, `h` at
        /// Q15, 1,025-knot tables. The output scale is the layer's own (`q.output` is unused).
        fn quantize(&self, q: &QuantSpec) -> Result<(Layer, Vec<u8>)> {
            let int16 = q.dtype == DType::I16;
            let mut bytes = Vec::new();
            self.push_rows(&mut bytes, q.input.scale_f64(), (q.dtype, q.weights))?;
            self.push_state(&mut bytes, int16);
            if self.cell != CellF64::Rnn {
                bytes.extend(table_bytes(sigmoid, int16));
            }
            bytes.extend(table_bytes(f64::tanh, int16));
            let rnn = Recurrent {
                input_size: self.w.ncols(),
                hidden: self.hidden(),
                reverse: self.reverse,
                sequence_output: self.sequence_output,
                initial_state: self.h0.is_some() || self.c0.is_some(),
                weights: q.weights,
            };
            debug_assert_eq!(Some(bytes.len()), rnn.weight_len(self.layer_cell(), int16));
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
            Ok((layer, bytes))
        }
    }

    impl RecurrentF64 {
        /// The quantized layer's cell.
        fn layer_cell(&self) -> Cell {
            match self.cell {
                CellF64::Rnn => Cell::Rnn,
                CellF64::Gru { linear_before_reset } => Cell::Gru { linear_before_reset },
                CellF64::Lstm => Cell::Lstm {
                    peepholes: self.peepholes.is_some(),
                },
            }
        }

        /// The gate rows: per row symmetric W and R, biases at `s_x·s_w` and `s_h·s_r`, and
        /// the multipliers to the pre-activation format.
        fn push_rows(&self, bytes: &mut Vec<u8>, sx: f64, (dtype, format): (DType, WeightFormat)) -> Result<()> {
            let int16 = dtype == DType::I16;
            let int4 = format == WeightFormat::Int4;
            let (sh, sg) = if int16 {
                (2f64.powi(-15), 2f64.powi(-16))
            } else {
                (1.0 / 128.0, 1.0 / 4096.0)
            };
            let sym = |row: ndarray::ArrayView1<f64>| -> Result<(f64, Vec<u8>)> {
                let max = row.iter().fold(0f64, |a, v| a.max(v.abs()));
                // int4: the int8 parameters of scale max/7, so every value lands in [-7, 7].
                let qp = QuantParams::symmetric(if int4 { max * 127.0 / 7.0 } else { max }, dtype)?;
                let q = row.iter().map(|&v| cwnn_tensor::host::quantize(v, &qp, dtype));
                let b = match (int16, int4) {
                    (true, _) => q.flat_map(|v| (v as i16).to_le_bytes()).collect(),
                    (false, true) => pack_int4(q),
                    (false, false) => q.map(|v| v as i8 as u8).collect(),
                };
                Ok((qp.scale_f64(), b))
            };
            for k in 0..self.w.nrows() {
                let (sw, wq) = sym(self.w.row(k))?;
                let (sr, rq) = sym(self.r.row(k))?;
                bytes.extend(wq);
                bytes.extend(rq);
                for (b, s) in [(self.bw[k], sx * sw), (self.br[k], sh * sr)] {
                    let q = (b / s).round();
                    if q.abs() >= 2f64.powi(if int16 { 62 } else { 31 }) {
                        return Err(TensorError::InvalidQuantization("recurrent bias does not fit its integer").into());
                    }
                    match int16 {
                        true => bytes.extend_from_slice(&(q as i64).to_le_bytes()),
                        false => bytes.extend_from_slice(&(q as i32).to_le_bytes()),
                    }
                }
                push_dyadic(bytes, requant_multiplier(sx, sw, sg)?);
                push_dyadic(bytes, requant_multiplier(sh, sr, sg)?);
            }
            Ok(())
        }

        /// Peepholes in the pre-activation format and the initial state (Q15), if any.
        fn push_state(&self, bytes: &mut Vec<u8>, int16: bool) {
            let sg = if int16 { 2f64.powi(-16) } else { 1.0 / 4096.0 };
            for &v in self.peepholes.iter().flatten() {
                let q = (v / sg).round();
                match int16 {
                    true => {
                        bytes.extend_from_slice(&(q.clamp(-2f64.powi(31), 2f64.powi(31) - 1.0) as i32).to_le_bytes())
                    }
                    false => bytes.extend_from_slice(&(q.clamp(-32768.0, 32767.0) as i16).to_le_bytes()),
                }
            }
            if self.h0.is_some() || self.c0.is_some() {
                let zeros = Array1::zeros(self.hidden());
                let mut init = vec![self.h0.as_ref().unwrap_or(&zeros)];
                if self.cell == CellF64::Lstm {
                    init.push(self.c0.as_ref().unwrap_or(&zeros));
                }
                for v in init.into_iter().flatten() {
                    let q = (v * ONE as f64).round().clamp(-512.0 * ONE as f64, 512.0 * ONE as f64);
                    bytes.extend_from_slice(&(q as i32).to_le_bytes());
                }
            }
        }
    }

    /// `f` over ±8 at steps of 1/16 (entry `j` at `(j·256 − 32768)/4096`), or of 1/64 with
    /// 1,025 knots when `int16`; Q15 out.
    fn table_bytes(f: fn(f64) -> f64, int16: bool) -> Vec<u8> {
        let (n, step) = if int16 {
            (I16_TABLE_LEN, 1.0 / 64.0)
        } else {
            (TABLE_LEN, 1.0 / 16.0)
        };
        (0..n)
            .flat_map(|j| {
                let x = j as f64 * step - 8.0;
                ((f(x) * ONE as f64).round().clamp(-32767.0, 32767.0) as i16).to_le_bytes()
            })
            .collect()
    }
}
