//! A model as a graph: the input's spec and the layers in evaluation order, each reading
//! tensors computed before it. Tensor 0 is the model input and tensor `k` the output of layer
//! `k − 1`; a layer that names no inputs reads the previous tensor (a plain sequential model).
//!
//! The contract, the importer, the CLI and the tests all walk a model through this one type:
//! [`ModelConfig::plans`] checks the wiring and sizes every layer, [`ModelConfig::run_with`]
//! evaluates it natively with the same layer code as the contract, so with the same bits.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use cwnn_tensor::QTensor;
use thiserror::Error;

use crate::{Layer, LayerError, LayerPlan, TensorSpec};

/// The network: its input and its layers in evaluation order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ModelConfig {
    pub name: String,
    pub input: TensorSpec,
    pub layers: Vec<LayerConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LayerConfig {
    pub layer: Layer,
    /// Tensors this layer reads: 0 is the model input, `k` the output of layer `k − 1`.
    /// Defaults to the previous layer's output (a plain sequential model).
    pub inputs: Option<Vec<u32>>,
}

/// Why a model's wiring or one of its layers was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GraphError {
    #[error("layer {index} reads tensor {input}, which is not computed before it")]
    Input { index: usize, input: u32 },
    #[error("layer {index}: {source}")]
    Layer { index: usize, source: LayerError },
}

impl LayerConfig {
    /// Layer number `index` reading tensors `inputs`, which are stored only when they are not
    /// the default (the previous tensor).
    pub fn reading(layer: Layer, inputs: Vec<u32>, index: usize) -> Self {
        let sequential = inputs.len() == 1 && inputs[0] as usize == index;
        LayerConfig {
            layer,
            inputs: (!sequential).then_some(inputs),
        }
    }

    /// The tensors layer number `index` reads.
    pub fn input_ids(&self, index: usize) -> Vec<u32> {
        self.inputs.clone().unwrap_or_else(|| vec![index as u32])
    }
}

impl ModelConfig {
    /// Checks that every layer reads only earlier tensors and accepts their specs; gives each
    /// layer's plan (its output spec, sizes and work).
    pub fn plans(&self) -> Result<Vec<LayerPlan>, GraphError> {
        let mut specs = vec![self.input.clone()];
        let mut plans = Vec::with_capacity(self.layers.len());
        for (index, lc) in self.layers.iter().enumerate() {
            let refs = inputs_of(&specs, lc, index)?;
            let plan = lc
                .layer
                .plan(&refs)
                .map_err(|source| GraphError::Layer { index, source })?;
            specs.push(plan.output.clone());
            plans.push(plan);
        }
        Ok(plans)
    }

    /// The spec of the model's output (its input's, for a model without layers).
    pub fn output_spec(&self) -> Result<TensorSpec, GraphError> {
        Ok(self.plans()?.pop().map_or_else(|| self.input.clone(), |p| p.output))
    }

    /// Every tensor of one evaluation (the input first), `weights(index)` giving each layer's
    /// weight bytes as it is reached.
    pub fn run_with<W, E>(
        &self,
        input: QTensor,
        mut weights: impl FnMut(usize) -> Result<W, E>,
    ) -> Result<Vec<QTensor>, E>
    where
        W: AsRef<[u8]>,
        E: From<GraphError>,
    {
        let mut tensors = vec![input];
        for (index, lc) in self.layers.iter().enumerate() {
            let w = weights(index)?;
            let inputs = inputs_of(&tensors, lc, index)?;
            let out = lc
                .layer
                .run(&inputs, w.as_ref())
                .map_err(|source| GraphError::Layer { index, source })?;
            tensors.push(out);
        }
        Ok(tensors)
    }

    /// [`ModelConfig::run_with`] over every layer's weights concatenated in layer order, as
    /// `cwnn bake` lays them out (in a baked contract, or a generated Rust module). Weights
    /// longer than the layers need are refused, shorter ones fail at the first layer short.
    pub fn run_concatenated(&self, weights: &[u8], input: QTensor) -> Result<Vec<QTensor>, GraphError> {
        let plans = self.plans()?;
        let total = plans.iter().try_fold(0usize, |s, p| s.checked_add(p.weight_len));
        if total.is_none_or(|t| t < weights.len()) {
            return Err(GraphError::Layer {
                index: plans.len().saturating_sub(1),
                source: LayerError::Weights {
                    layer: "model",
                    reason: "more weight bytes than the layers take",
                },
            });
        }
        let mut at = 0;
        self.run_with(input, |index| {
            let w = weights.get(at..at + plans[index].weight_len).ok_or(GraphError::Layer {
                index,
                source: LayerError::Weights {
                    layer: "model",
                    reason: "weights end early",
                },
            })?;
            at += w.len();
            Ok::<_, GraphError>(w)
        })
    }

    /// [`ModelConfig::run_with`] over weights held in memory, one entry per layer (a missing
    /// entry reads as no bytes, which a layer with weights refuses).
    pub fn run_all(&self, weights: &[impl AsRef<[u8]>], input: QTensor) -> Result<Vec<QTensor>, GraphError> {
        self.run_with(input, |index| {
            Ok::<_, GraphError>(weights.get(index).map_or(&[][..], |w| w.as_ref()))
        })
    }
}

/// The entries of `tensors` (specs or values) layer `index` reads.
fn inputs_of<'a, T>(tensors: &'a [T], lc: &LayerConfig, index: usize) -> Result<Vec<&'a T>, GraphError> {
    lc.input_ids(index)
        .into_iter()
        .map(|input| match input as usize {
            i if i <= index => tensors.get(i).ok_or(GraphError::Input { index, input }),
            _ => Err(GraphError::Input { index, input }),
        })
        .collect()
}
