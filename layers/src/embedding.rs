//! Embedding (ONNX Gather on axis 0 of a constant table, Keras Embedding): int32 indices
//! `[...]` → int8 rows `[..., dim]`. Negative indices count from the end, as in ONNX; an index
//! outside `[−vocab, vocab)` is a named error. The output keeps the table's quantization.
//! **Bound**: ½ LSB of the table scale. Units: indices; every segment reads the whole table.
//!
//! Int4 weights (`weights: int4`): the table symmetric over its largest `|value|`, scale
//! `max/7`, each row `⌈dim/2⌉` bytes of nibbles `w + 8` (value `2j` in the low nibble); the
//! output is int8 `w` at that scale (bound ½ of it), half the bytes to read.
//!
//! **Work**: `|idx|·(dim·ELEM + REQUANT)` (a row copy and an index check per index); see
//! `work.rs`.

use core::ops::Range;

use cwnn_tensor::{DType, Dyadic, QTensor, QuantParams, TensorData};

use crate::weights::{as_i8, unpack_int4};

use crate::act::i8_data_mut;
use crate::{work, LayerError, Op, Result, TensorSpec, WeightFormat};

/// Quantization of an index tensor: the integers are the indices.
pub const INDEX_QUANT: QuantParams = QuantParams {
    scale: Dyadic::ONE,
    zero_point: 0,
};

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Embedding {
    #[cfg_attr(feature = "serde", serde(with = "crate::dims::dim"))]
    #[cfg_attr(feature = "schema", schemars(with = "u32"))]
    pub vocab: usize,
    #[cfg_attr(feature = "serde", serde(with = "crate::dims::dim"))]
    #[cfg_attr(feature = "schema", schemars(with = "u32"))]
    pub dim: usize,
    /// The table's quantization, which the output keeps.
    pub output: QuantParams,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "WeightFormat::is_native"))]
    pub weights: WeightFormat,
}

impl Embedding {
    /// Bytes of one table row.
    fn row_bytes(&self) -> usize {
        match self.weights {
            WeightFormat::Int4 => self.dim.div_ceil(2),
            WeightFormat::Native => self.dim,
        }
    }
}

impl Op for Embedding {
    const NAME: &'static str = "embedding";
    const FAMILY: Option<crate::Family> = Some(crate::Family::Seq);

    fn output_spec(&self, inputs: &[&TensorSpec]) -> Result<TensorSpec> {
        if inputs[0].dtype != DType::I32 {
            return Err(LayerError::InputDType {
                layer: Self::NAME,
                expected: "i32 indices",
                actual: inputs[0].dtype.name(),
            });
        }
        if self.vocab == 0 || self.dim == 0 || self.vocab > i32::MAX as usize {
            return Err(LayerError::Config {
                layer: Self::NAME,
                reason: "vocab and dim must be ≥ 1 (vocab < 2^31)",
            });
        }
        let mut shape = inputs[0].shape.clone();
        shape.push(self.dim);
        Ok(TensorSpec::new(shape, DType::I8, self.output))
    }
    fn weight_len(&self, _: &[&TensorSpec]) -> Option<usize> {
        self.vocab.checked_mul(self.row_bytes())
    }
    fn work(&self, inputs: &[&TensorSpec]) -> u64 {
        let per = (self.dim as u64)
            .saturating_mul(work::ELEM)
            .saturating_add(work::REQUANT);
        work::sum(&[(work::numel(inputs[0]), per)])
    }
    fn units(&self, inputs: &[&TensorSpec]) -> Option<usize> {
        inputs[0].numel()
    }
    fn forward(
        &self,
        inputs: &[&QTensor],
        weights: &[u8],
        units: Range<usize>,
        out: &mut QTensor,
        _: &mut [i32],
    ) -> Result<()> {
        let TensorData::I32(idx) = &inputs[0].data else {
            return Err(LayerError::InputDType {
                layer: Self::NAME,
                expected: "i32 indices",
                actual: inputs[0].dtype().name(),
            });
        };
        let (v, d, rb) = (self.vocab as i64, self.dim, self.row_bytes());
        let table = weights
            .get(..self.vocab.saturating_mul(rb))
            .ok_or(LayerError::Weights {
                layer: Self::NAME,
                reason: "weights end early",
            })?;
        let y = i8_data_mut(Self::NAME, out)?;
        for u in units {
            let i = idx[u] as i64;
            let row = if i < 0 { i + v } else { i };
            if !(0..v).contains(&row) {
                return Err(LayerError::InputValue {
                    layer: Self::NAME,
                    reason: "index outside [-vocab, vocab)",
                });
            }
            let (row, yu) = (&table[row as usize * rb..][..rb], &mut y[u * d..(u + 1) * d]);
            match self.weights {
                WeightFormat::Native => yu.copy_from_slice(as_i8(row)),
                WeightFormat::Int4 => unpack_int4(row, yu),
            }
        }
        Ok(())
    }
}

#[cfg(feature = "std")]
mod host {
    use crate::{QuantSpec, Quantize};
    use ndarray::{Array2, ArrayD, Axis};

    use super::Embedding;
    use crate::weights::{covering, pack_int4, quantize_i8};
    use crate::{Result, WeightFormat};
    use cwnn_tensor::{DType, QuantParams};

    #[derive(Clone, Debug)]
    pub struct EmbeddingF64 {
        /// `vocab × dim`.
        pub table: Array2<f64>,
    }

    impl EmbeddingF64 {
        /// The int4 table: int8 parameters of scale `max|table|/7` (zero point 0) and each
        /// row's nibbles.
        fn int4(&self) -> Result<(QuantParams, Vec<u8>)> {
            let max = self.table.iter().fold(0f64, |a, v| a.max(v.abs()));
            let qp = QuantParams::symmetric(max * 127.0 / 7.0, DType::I8)?;
            let s = qp.scale_f64();
            let mut bytes = Vec::with_capacity(self.table.len() / 2 + self.table.nrows());
            for row in self.table.rows() {
                bytes.extend(pack_int4(row.iter().map(|&v| (v / s).round().clamp(-7.0, 7.0) as i32)));
            }
            Ok((qp, bytes))
        }

        pub fn forward(&self, idx: &ArrayD<i64>) -> ArrayD<f64> {
            let v = self.table.nrows() as i64;
            let rows: Vec<usize> = idx
                .iter()
                .map(|&i| if i < 0 { (i + v) as usize } else { i as usize })
                .collect();
            let mut shape = idx.shape().to_vec();
            shape.push(self.table.ncols());
            self.table.select(Axis(0), &rows).into_shape_with_order(shape).unwrap()
        }
    }

    impl Quantize for EmbeddingF64 {
        type Layer = Embedding;

        /// Quantizes the table over its own range (int4: symmetric, `max/7`); the output keeps
        /// that quantization.
        fn quantize(&self, q: &QuantSpec) -> Result<(Embedding, Vec<u8>)> {
            q.int8_only(<Embedding as crate::Op>::NAME)?;
            let (vocab, dim) = self.table.dim();
            let (output, bytes) = match q.weights {
                WeightFormat::Native => {
                    let qp = covering(self.table.iter())?;
                    (qp, quantize_i8(self.table.iter(), &qp))
                }
                WeightFormat::Int4 => self.int4()?,
            };
            let weights = q.weights;
            Ok((
                Embedding {
                    vocab,
                    dim,
                    output,
                    weights,
                },
                bytes,
            ))
        }
    }
}

#[cfg(feature = "std")]
pub use host::EmbeddingF64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::Layer;
    use crate::{QuantSpec, Quantize};
    use proptest::prelude::*;

    fn indices(idx: Vec<i32>) -> QTensor {
        let n = idx.len();
        QTensor::new(vec![n], TensorData::I32(idx), INDEX_QUANT).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn bound_against_f64(vocab in 1usize..20, dim in 1usize..8, raw in proptest::collection::vec(any::<i32>(), 1..10),
                             vals in proptest::collection::vec(-2f64..2.0, 160), cuts in proptest::collection::vec(any::<u16>(), 0..4),
                             int4 in any::<bool>()) {
            let f = EmbeddingF64 { table: ndarray::Array2::from_shape_vec((vocab, dim), vals[..vocab * dim].to_vec()).unwrap() };
            let idx: Vec<i32> = raw.iter().map(|r| r.rem_euclid(2 * vocab as i32) - vocab as i32).collect();
            let reference = f.forward(&ndarray::ArrayD::from_shape_vec(vec![idx.len()], idx.iter().map(|&i| i as i64).collect()).unwrap());
            let format = if int4 { WeightFormat::Int4 } else { WeightFormat::Native };
            let (layer, weights) = f.quantize(&QuantSpec::int8(INDEX_QUANT, INDEX_QUANT).with_weights(format)).unwrap();
            let s = layer.output.scale_f64();
            if int4 {
                prop_assert_eq!(weights.len(), vocab * dim.div_ceil(2));
                let max = f.table.iter().fold(0f64, |a, v| a.max(v.abs()));
                prop_assert!((s - max / 7.0).abs() <= 1e-9 * (1.0 + max), "int4 scale {} for max {}", s, max);
            }
            let layer = Layer::Embedding(layer);
            let x = indices(idx);
            let y = layer.run(&[&x], &weights).unwrap();
            for (&got, &want) in dequant(&y).iter().zip(reference.iter()) {
                prop_assert!((got - want).abs() <= s / 2.0 + 1e-12);
            }
            assert_segments_match(&layer, &[&x], &weights, &cuts);
        }
    }

    #[test]
    fn out_of_range_index_is_a_named_error() {
        let f = EmbeddingF64 {
            table: ndarray::Array2::zeros((3, 2)),
        };
        let (layer, weights) = f.quantize(&QuantSpec::int8(INDEX_QUANT, INDEX_QUANT)).unwrap();
        let err = Layer::Embedding(layer)
            .run(&[&indices(vec![0, 3])], &weights)
            .unwrap_err();
        assert!(matches!(err, LayerError::InputValue { .. }));
    }
}
