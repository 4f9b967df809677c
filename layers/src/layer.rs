use alloc::vec::Vec;
use core::ops::Range;

use cwnn_tensor::QTensor;

use crate::*;

/// What every layer implements. Methods taking `inputs` assume [`Op::output_spec`] accepted
/// them; [`Layer`] makes sure of that before calling anything else. Sizes are checked: `None`
/// where one would not fit `usize` (`u64` for MACs), which [`Layer::plan`] refuses.
pub trait Op {
    /// Name used in errors and reports.
    const NAME: &'static str;
    /// The family a build must carry for this kernel ([`Layer::family`]); none: always built.
    const FAMILY: Option<Family> = None;
    /// Number of inputs (1, or 2 for Add/Mul of two tensors).
    fn arity(&self) -> usize {
        1
    }
    /// Validates the config against the inputs and gives the output's spec.
    fn output_spec(&self, inputs: &[&TensorSpec]) -> Result<TensorSpec>;
    /// Bytes of weights (layout in the layer's docs); none by default.
    fn weight_len(&self, _inputs: &[&TensorSpec]) -> Option<usize> {
        Some(0)
    }
    /// Multiply-accumulates of one evaluation; none by default.
    fn macs(&self, _inputs: &[&TensorSpec]) -> Option<u64> {
        Some(0)
    }
    /// Work units of one evaluation that grow with the units computed (see
    /// [`LayerPlan::work`]), saturating.
    fn work(&self, inputs: &[&TensorSpec]) -> u64;
    /// Work units every segment pays whatever its units (centring the whole input, padding,
    /// decoding tables); none by default.
    fn segment_work(&self, _inputs: &[&TensorSpec]) -> u64 {
        0
    }
    /// Independent parts of the output (rows, channels, elements) a call can compute alone.
    fn units(&self, inputs: &[&TensorSpec]) -> Option<usize>;
    /// The weight bytes that units `units` (within `0..units`) read: always one contiguous
    /// range, so a segment loads only its own slice. By default every segment reads all
    /// weights (a table, a constant, a recurrent cell).
    fn weight_range(&self, inputs: &[&TensorSpec], _units: Range<usize>) -> Option<Range<usize>> {
        Some(0..self.weight_len(inputs)?)
    }
    /// Values carried from one segment to the next (a recurrent layer's hidden and cell
    /// state); 0 for layers whose units are independent.
    fn state_len(&self, _inputs: &[&TensorSpec]) -> Option<usize> {
        Some(0)
    }
    /// Computes output units `units` into `out` (a full-size buffer of the output spec);
    /// `weights` is exactly the slice [`Op::weight_range`] names, and `state` (of
    /// [`Op::state_len`] values, zeros before the first segment) carries over between segments.
    fn forward(
        &self,
        inputs: &[&QTensor],
        weights: &[u8],
        units: Range<usize>,
        out: &mut QTensor,
        state: &mut [i32],
    ) -> Result<()>;
}

/// Layer kinds a build may leave out, by family: cargo features `conv` (Conv2D and pooling),
/// `seq` (Embedding and the recurrent layers) and `attn` (MatMul of two activations and
/// LayerNorm). The model contract builds both; a baked
/// model's runtime may carry fewer (`cwnn bake` picks the smallest that has its layers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Conv,
    Seq,
    Attn,
}

/// Whether this build carries kernels of `family`.
const fn built(family: Option<Family>) -> bool {
    match family {
        Some(Family::Conv) => cfg!(feature = "conv"),
        Some(Family::Seq) => cfg!(feature = "seq"),
        Some(Family::Attn) => cfg!(feature = "attn"),
        None => true,
    }
}

macro_rules! layers {
    ($($(#[$doc:meta])* $variant:ident($ty:ty)),* $(,)?) => {
        /// One layer of a model. An enum, not a trait object, so the contract Wasm carries
        /// one copy of each kernel and no vtables.
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        pub enum Layer {
            $($(#[$doc])* $variant($ty),)*
        }

        impl Layer {
            /// Every kind's name ([`Op::NAME`]), in declaration order.
            pub const NAMES: &'static [&'static str] = &[$(<$ty as Op>::NAME),*];
            /// The layer's name (`dense`, `conv2d`, ...).
            pub fn name(&self) -> &'static str {
                match self { $(Layer::$variant(_) => <$ty as Op>::NAME,)* }
            }
            /// Number of inputs the layer takes.
            pub fn arity(&self) -> usize {
                match self { $(Layer::$variant(l) => l.arity(),)* }
            }
            fn spec_unchecked(&self, inputs: &[&TensorSpec]) -> Result<TensorSpec> {
                match self { $(Layer::$variant(l) => l.output_spec(inputs),)* }
            }
            fn weight_len_unchecked(&self, inputs: &[&TensorSpec]) -> Option<usize> {
                match self { $(Layer::$variant(l) => l.weight_len(inputs),)* }
            }
            fn macs_unchecked(&self, inputs: &[&TensorSpec]) -> Option<u64> {
                match self { $(Layer::$variant(l) => l.macs(inputs),)* }
            }
            fn work_unchecked(&self, inputs: &[&TensorSpec]) -> u64 {
                match self { $(Layer::$variant(l) => l.work(inputs),)* }
            }
            fn segment_work_unchecked(&self, inputs: &[&TensorSpec]) -> u64 {
                match self { $(Layer::$variant(l) => l.segment_work(inputs),)* }
            }
            fn units_unchecked(&self, inputs: &[&TensorSpec]) -> Option<usize> {
                match self { $(Layer::$variant(l) => l.units(inputs),)* }
            }
            fn weight_range_unchecked(&self, inputs: &[&TensorSpec], units: Range<usize>) -> Option<Range<usize>> {
                match self { $(Layer::$variant(l) => l.weight_range(inputs, units),)* }
            }
            fn state_len_unchecked(&self, inputs: &[&TensorSpec]) -> Option<usize> {
                match self { $(Layer::$variant(l) => l.state_len(inputs),)* }
            }
            fn family_unchecked(&self) -> Option<Family> {
                match self { $(Layer::$variant(_) => <$ty as Op>::FAMILY,)* }
            }
            /// A kind whose family this build leaves out has no kernel here: its arm is a
            /// constant error, and the compiler drops the kernel.
            fn forward_unchecked(&self, inputs: &[&QTensor], weights: &[u8], units: Range<usize>, out: &mut QTensor, state: &mut [i32]) -> Result<()> {
                match self {
                    $(Layer::$variant(l) => match built(<$ty as Op>::FAMILY) {
                        true => l.forward(inputs, weights, units, out, state),
                        false => Err(LayerError::NotInBuild { layer: <$ty as Op>::NAME }),
                    },)*
                }
            }
        }

        $(impl From<$ty> for Layer {
            fn from(l: $ty) -> Layer {
                Layer::$variant(l)
            }
        })*
    };
}

layers! {
    /// Fully connected: `y = clamp(W·x + b)`, per-channel weights (int8, or int16).
    Dense(Dense),
    /// 2-D convolution (strides, padding, dilation, groups), per-channel weights (int8 or int16).
    Conv2d(Conv2d),
    /// Element-wise function (ReLU, Sigmoid, Tanh, ...): a 256-entry table in int8; an exact
    /// rescale or 1,025 interpolated knots in int16.
    Activation(Activation),
    /// Max-subtracted softmax over the last axis.
    Softmax(Softmax),
    /// Max pooling over 2-D windows.
    MaxPool2d(MaxPool2d),
    /// Average pooling over 2-D windows.
    AvgPool2d(AvgPool2d),
    /// Average over H and W of each channel.
    GlobalAvgPool(GlobalAvgPool),
    /// Reshape / Flatten: same data, new shape.
    Reshape(Reshape),
    /// Per-channel affine map `y = a·x + b`: Keras Rescaling, standalone BatchNorm.
    Affine(Affine),
    /// Element-wise sum with broadcasting.
    Add(Add),
    /// Element-wise product with broadcasting.
    Mul(Mul),
    /// Table lookup of rows by index (ONNX Gather on axis 0).
    Embedding(Embedding),
    /// Elman RNN `h = tanh(W·x + R·h + b)` over a sequence.
    SimpleRnn(SimpleRnn),
    /// GRU over a sequence (ONNX gate order z, r, h).
    Gru(Gru),
    /// LSTM over a sequence (ONNX gate order i, o, f, c; peepholes).
    Lstm(Lstm),
    /// The elements in another order by an index table (a data-reordering Transpose).
    Permute(Permute),
    /// Product of two activations, batched over heads (attention's `Q·Kᵀ` and `P·V`).
    MatMul(MatMul),
    /// Normalization over the last axis with per-channel `γ`, `β` (an exact integer root).
    LayerNorm(LayerNorm),
}

impl Layer {
    /// How the layer stores its weights: `Int4` for a Dense, Conv2d, Embedding or recurrent
    /// layer imported so, `Native` otherwise.
    pub fn weight_format(&self) -> crate::WeightFormat {
        match self {
            Layer::Dense(d) => d.weights,
            Layer::Conv2d(c) => c.weights,
            Layer::Embedding(e) => e.weights,
            Layer::SimpleRnn(l) => l.rnn.weights,
            Layer::Gru(l) => l.rnn.weights,
            Layer::Lstm(l) => l.rnn.weights,
            _ => crate::WeightFormat::Native,
        }
    }
    fn check_arity(&self, n: usize) -> Result<()> {
        if n != self.arity() {
            return Err(LayerError::InputCount {
                layer: self.name(),
                expected: self.arity(),
                actual: n,
            });
        }
        Ok(())
    }

    /// The family a build must carry for this layer's kernel ([`Family`]); none for kinds
    /// every build has (Dense, activations, softmax, element-wise and shape layers).
    pub fn family(&self) -> Option<Family> {
        self.family_unchecked()
    }

    /// Whether this build carries the layer's kernel (see [`Layer::family`]).
    pub fn in_build(&self) -> bool {
        built(self.family())
    }

    /// Validates the layer against its inputs and gives its output spec.
    pub fn output_spec(&self, inputs: &[&TensorSpec]) -> Result<TensorSpec> {
        if !self.in_build() {
            return Err(LayerError::NotInBuild { layer: self.name() });
        }
        self.check_arity(inputs.len())?;
        self.spec_unchecked(inputs)
    }

    /// A checked size, or [`LayerError::SizeOverflow`].
    fn sized<T>(&self, size: Option<T>) -> Result<T> {
        size.ok_or(LayerError::SizeOverflow { layer: self.name() })
    }

    /// What a model needs to know to store, bill and split the layer. Every size is checked
    /// (in `usize`, so 32 bits in a contract): where one would overflow the layer is refused
    /// with [`LayerError::SizeOverflow`].
    pub fn plan(&self, inputs: &[&TensorSpec]) -> Result<LayerPlan> {
        let output = self.output_spec(inputs)?;
        for x in inputs {
            self.sized(x.bytes())?;
        }
        let units = self.sized(self.units_unchecked(inputs))?;
        let weight_len = self.sized(self.weight_len_unchecked(inputs))?;
        // All units' range: then every sub-range's bounds fit too.
        self.sized(self.weight_range_unchecked(inputs, 0..units))?;
        Ok(LayerPlan {
            weight_len,
            macs: self.sized(self.macs_unchecked(inputs))?,
            work: self.work_unchecked(inputs),
            segment_work: self.segment_work_unchecked(inputs),
            units,
            state_len: self.sized(self.state_len_unchecked(inputs))?,
            output_bytes: self.sized(output.bytes())?,
            output,
        })
    }

    /// Weight bytes units `units` read (see [`Op::weight_range`]).
    pub fn weight_range(&self, inputs: &[&TensorSpec], units: Range<usize>) -> Result<Range<usize>> {
        let plan = self.plan(inputs)?;
        check_units(self.name(), &units, plan.units)?;
        self.sized(self.weight_range_unchecked(inputs, units))
    }

    /// Computes output units `units` into `out`, after checking everything: input count and
    /// specs, the unit range, the weight slice length, the output buffer and the state length.
    /// Segments of a recurrent layer must come in order, passing the same `state` along.
    pub fn forward(
        &self,
        inputs: &[&QTensor],
        weights: &[u8],
        units: Range<usize>,
        out: &mut QTensor,
        state: &mut [i32],
    ) -> Result<()> {
        // QTensor's fields are public: refuse one whose data does not fill its shape.
        for t in inputs.iter().copied().chain(core::iter::once(&*out)) {
            if TensorSpec::of(t).numel() != Some(t.len()) {
                let shape = t.shape.clone();
                return Err(LayerError::InputShape {
                    layer: self.name(),
                    expected: shape,
                    actual: alloc::vec![t.len()],
                });
            }
        }
        let specs: Vec<TensorSpec> = inputs.iter().map(|t| TensorSpec::of(t)).collect();
        let refs: Vec<&TensorSpec> = specs.iter().collect();
        let plan = self.plan(&refs)?;
        check_units(self.name(), &units, plan.units)?;
        let range = self.sized(self.weight_range_unchecked(&refs, units.clone()))?;
        if weights.len() != range.len() {
            return Err(LayerError::WeightLength {
                layer: self.name(),
                expected: range.len(),
                actual: weights.len(),
            });
        }
        if TensorSpec::of(out) != plan.output || state.len() != plan.state_len {
            return Err(LayerError::OutputSpec { layer: self.name() });
        }
        self.forward_unchecked(inputs, weights, units, out, state)
    }

    /// One whole evaluation: all units, all weights.
    pub fn run(&self, inputs: &[&QTensor], weights: &[u8]) -> Result<QTensor> {
        let specs: Vec<TensorSpec> = inputs.iter().map(|t| TensorSpec::of(t)).collect();
        let refs: Vec<&TensorSpec> = specs.iter().collect();
        let plan = self.plan(&refs)?;
        let mut out = plan.output.zeros()?;
        self.forward(
            inputs,
            weights,
            0..plan.units,
            &mut out,
            &mut alloc::vec![0; plan.state_len],
        )?;
        Ok(out)
    }
}

/// Sizes of one layer in a model: storage, work and how it splits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerPlan {
    pub output: TensorSpec,
    pub weight_len: usize,
    /// Multiply-accumulates of one evaluation (reported; the budget is [`LayerPlan::work`]).
    pub macs: u64,
    /// Work units of one evaluation, all of it (MACs, comparisons, lookups, element-wise
    /// steps, requantization, copies), where one unit is about one int8 multiply-accumulate of
    /// Dense (≈ 900 CosmWasm VM gas), saturating at `u64::MAX`. Spread evenly enough over the
    /// units that `work.div_ceil(units)` bounds each unit's share. Formulas in each layer's docs.
    pub work: u64,
    /// Work units each segment pays besides its units' share (centring the whole input,
    /// padding, decoding tables): a segment of `k` units costs
    /// `segment_work + k·work.div_ceil(units)`, a whole evaluation `segment_work + work`.
    pub segment_work: u64,
    pub units: usize,
    /// i32 values carried between segments (recurrent layers).
    pub state_len: usize,
    /// Bytes of the output activation (stored between calls at its quantized width).
    pub output_bytes: usize,
}

/// `units` as a checked range of `0..total`.
pub(crate) fn check_units(layer: &'static str, units: &Range<usize>, total: usize) -> Result<()> {
    if units.start > units.end || units.end > total {
        return Err(LayerError::Units {
            layer,
            start: units.start,
            end: units.end,
            units: total,
        });
    }
    Ok(())
}
