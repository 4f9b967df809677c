//! The evaluation engine: whole models for `Predict`, budgeted layer segments for jobs.

use std::ops::Range;

use cosmwasm_std::{Api, Binary, StdResult, Storage};
use cwnn_layers::{Layer, LayerError, TensorSpec};
use cwnn_tensor::{DType, QTensor, TensorData};

use crate::error::ContractError;
use crate::msg::{PredictResponse, WorkBudget};
use crate::state::{baked, load_bytes, save_bytes, Job, Model, CHUNK_BYTES, JOB_STATE, JOB_TENSORS, WEIGHTS};

/// Spec of tensor `id` (0 = input, k = output of layer k − 1).
pub(crate) fn tensor_spec(model: &Model, id: u32) -> &TensorSpec {
    match id {
        0 => &model.config.input,
        k => &model.outputs[k as usize - 1],
    }
}

/// Work of one unit of layer `index`: the layer's work spread evenly over its units.
pub(crate) fn unit_work(model: &Model, index: usize) -> u64 {
    model.work[index].div_ceil(model.units[index].max(1))
}

/// The input tensor from a message's `input` (values, each in the input's type) or
/// `input_bytes` (little-endian bytes at the type's width): exactly one of them, of the input's
/// element count.
pub fn input_tensor(spec: &TensorSpec, values: Vec<i32>, bytes: Option<Binary>) -> Result<QTensor, ContractError> {
    let data = match (bytes, values.is_empty()) {
        (Some(_), false) => return Err(ContractError::Input("give `input` or `input_bytes`, not both")),
        (Some(b), true) => bytes_data(spec, &b)?,
        (None, _) => values_data(spec.dtype, values)?,
    };
    if Some(data.len()) != spec.numel() {
        return Err(ContractError::Input(
            "length differs from the input shape's element count",
        ));
    }
    QTensor::new(spec.shape.clone(), data, spec.quant)
        .map_err(|_| ContractError::Input("does not match the input spec"))
}

/// Checks the byte count before decoding, so an oversized `input_bytes` costs no copy.
fn bytes_data(spec: &TensorSpec, b: &[u8]) -> Result<TensorData, ContractError> {
    let w = spec.dtype.bytes();
    if !b.len().is_multiple_of(w) {
        return Err(ContractError::Input(
            "input_bytes is not a whole number of the input's integer type",
        ));
    }
    if Some(b.len() / w) != spec.numel() {
        return Err(ContractError::Input(
            "length differs from the input shape's element count",
        ));
    }
    TensorData::from_le_bytes(spec.dtype, b).map_err(|_| ContractError::Input("does not match the input spec"))
}

fn values_data(dtype: DType, values: Vec<i32>) -> Result<TensorData, ContractError> {
    if values.iter().any(|v| !(dtype.min()..=dtype.max()).contains(v)) {
        return Err(ContractError::Input("a value lies outside the input's integer type"));
    }
    Ok(match dtype {
        DType::I8 => TensorData::I8(values.into_iter().map(|v| v as i8).collect()),
        DType::I16 => TensorData::I16(values.into_iter().map(|v| v as i16).collect()),
        DType::I32 => TensorData::I32(values),
    })
}

/// A tensor as the caller sees it: spec and values widened to i32.
pub(crate) fn response_of(t: &QTensor) -> PredictResponse {
    PredictResponse {
        output: TensorSpec::of(t),
        data: t.data.to_i32s(),
    }
}

/// Weight bytes `range` of layer `layer`: a slice of the payload in a baked contract, else
/// read from storage, only the chunks that overlap it. A range inside one chunk is that
/// chunk's buffer, not a copy: without bulk memory a Wasm copy costs hundreds of gas per byte.
pub(crate) fn read_weights(storage: &dyn Storage, model: &Model, layer: u32, range: Range<u64>) -> StdResult<Weights> {
    if range.is_empty() {
        return Ok(Weights::default());
    }
    if let Some(p) = baked() {
        let start = model.weight_bytes[..layer as usize].iter().sum::<u64>();
        let r = (start + range.start) as usize..(start + range.end) as usize;
        return p
            .weights
            .get(r)
            .map(Weights::Baked)
            .ok_or_else(|| cosmwasm_std::StdError::generic_err("baked weights shorter than the layer"));
    }
    let first = range.start / CHUNK_BYTES;
    let last = range.end.div_ceil(CHUNK_BYTES);
    let mut buf = load_bytes(storage, &WEIGHTS, (layer, first as u32))?;
    for k in first + 1..last {
        buf.extend(load_bytes(storage, &WEIGHTS, (layer, k as u32))?);
    }
    let start = (range.start - first * CHUNK_BYTES) as usize;
    let end = start + (range.end - range.start) as usize;
    if end > buf.len() {
        return Err(cosmwasm_std::StdError::generic_err(
            "stored weights shorter than the layer",
        ));
    }
    Ok(Weights::Stored { buf, range: start..end })
}

/// Bytes read by [`read_weights`].
pub(crate) enum Weights {
    Stored { buf: Vec<u8>, range: Range<usize> },
    Baked(&'static [u8]),
}

impl Default for Weights {
    fn default() -> Self {
        Weights::Baked(&[])
    }
}

impl AsRef<[u8]> for Weights {
    fn as_ref(&self) -> &[u8] {
        match self {
            Weights::Stored { buf, range } => &buf[range.clone()],
            Weights::Baked(b) => b,
        }
    }
}

/// Tells a debugging host (cwnn's gas report, on cosmwasm-vm) where each layer starts, so it
/// can attribute gas per layer within one call. A chain ignores it; each costs a host call.
fn mark(api: &dyn Api, layer: Option<usize>) {
    match layer {
        Some(i) => api.debug(&format!("cwnn:layer:{i}")),
        None => api.debug("cwnn:end"),
    }
}

/// The whole model in one go, refused up front when it exceeds `budget`.
pub(crate) fn run_model(
    storage: &dyn Storage,
    api: &dyn Api,
    model: &Model,
    input: QTensor,
    budget: &WorkBudget,
) -> Result<QTensor, ContractError> {
    let sum = |v: &[u64]| v.iter().fold(0u64, |a, &b| a.saturating_add(b));
    let work = sum(&model.work).saturating_add(sum(&model.segment_work));
    let weight_bytes = sum(&model.weight_bytes);
    let segments = model.config.layers.len() as u64;
    if work > budget.max_work || weight_bytes > budget.max_weight_bytes || segments > budget.max_segments as u64 {
        return Err(ContractError::OverBudget {
            work,
            weight_bytes,
            max_work: budget.max_work,
            max_weight_bytes: budget.max_weight_bytes,
        });
    }
    let mut tensors = model.config.run_with(input, |index| {
        mark(api, Some(index));
        read_weights(storage, model, index as u32, 0..model.weight_bytes[index]).map_err(ContractError::from)
    })?;
    mark(api, None);
    tensors
        .pop()
        .ok_or(ContractError::InvalidConfig("a model needs at least one layer"))
}

/// What one call may still do.
pub(crate) struct Budget {
    work: u64,
    bytes: u64,
    segments: u32,
}

impl Budget {
    /// A call's budget: the model's, further capped by the caller's `steps`.
    pub(crate) fn new(b: &WorkBudget, steps: Option<u32>) -> Self {
        Budget {
            work: b.max_work,
            bytes: b.max_weight_bytes,
            segments: steps.map_or(b.max_segments, |s| s.min(b.max_segments)),
        }
    }
}

/// The longest run of units from `start` that fits `budget` (None when not even one does): a
/// segment costs `segment_work` plus `unit_work` per unit.
fn fit(
    layer: &Layer,
    specs: &[&TensorSpec],
    start: usize,
    total: usize,
    (unit_work, segment_work): (u64, u64),
    budget: &Budget,
) -> Result<Option<Range<usize>>, LayerError> {
    let Some(left) = budget.work.checked_sub(segment_work) else {
        return Ok(None);
    };
    let by_work = match unit_work {
        0 => total - start,
        m => (total - start).min((left / m).try_into().unwrap_or(usize::MAX)),
    };
    let bytes = |n: usize| layer.weight_range(specs, start..start + n).map(|r| r.len() as u64);
    if budget.segments == 0 || by_work == 0 || bytes(1)? > budget.bytes {
        return Ok(None);
    }
    // Weight bytes grow with the unit count: binary search the largest count that fits.
    let (mut lo, mut hi) = (1, by_work);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if bytes(mid)? <= budget.bytes {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(Some(start..start + lo))
}

pub(crate) fn load_tensor(
    storage: &dyn Storage,
    model: &Model,
    job_id: u64,
    id: u32,
) -> Result<QTensor, ContractError> {
    let spec = tensor_spec(model, id);
    let bytes = load_bytes(storage, &JOB_TENSORS, (job_id, id))?;
    let data = TensorData::from_le_bytes(spec.dtype, &bytes).map_err(|_| ContractError::Input("stored tensor"))?;
    QTensor::new(spec.shape.clone(), data, spec.quant).map_err(|_| ContractError::Input("stored tensor"))
}

fn i32s_to_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes_to_i32s(b: &[u8]) -> Vec<i32> {
    b.chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Runs as many segments of job `job_id` as `budget` allows, then stores what later calls
/// need: tensors a remaining layer reads, the partial output of an unfinished layer and a
/// recurrent layer's state. Intermediate tensors used up within the call are never written.
/// `input` is the fresh input of a job that starts now. Gives the output once finished.
pub(crate) fn advance(
    storage: &mut dyn Storage,
    api: &dyn Api,
    model: &Model,
    job_id: u64,
    job: &mut Job,
    mut budget: Budget,
    input: Option<QTensor>,
) -> Result<Option<QTensor>, ContractError> {
    let n = model.config.layers.len() as u32;
    // Tensors of this call by id (0 = input, k = output of layer k − 1), and which of them
    // the call computed (and so may need to write).
    let mut cache: Vec<Option<QTensor>> = vec![None; n as usize + 1];
    let mut computed = vec![false; n as usize + 1];
    if let Some(t) = input {
        cache[0] = Some(t);
        computed[0] = true;
    }
    let mut carried: Option<Vec<i32>> = None;
    while job.layer < n {
        let index = job.layer as usize;
        for id in model.config.layers[index].input_ids(index) {
            if cache[id as usize].is_none() {
                cache[id as usize] = Some(load_tensor(storage, model, job_id, id)?);
            }
        }
        let Some((out, state)) = run_layer(storage, api, model, job_id, job, &mut budget, &cache)? else {
            break;
        };
        cache[index + 1] = Some(out);
        computed[index + 1] = true;
        if job.unit < model.units[index] {
            carried = (!state.is_empty()).then_some(state);
            break;
        }
        job.layer += 1;
        job.unit = 0;
    }
    mark(api, None);
    save_job_tensors(storage, model, job_id, job, &cache, &computed)?;
    match &carried {
        Some(state) => save_bytes(storage, &JOB_STATE, job_id, &i32s_to_bytes(state)),
        None if job.has_state => JOB_STATE.remove(storage, job_id),
        None => {}
    }
    job.has_state = carried.is_some();
    Ok(cache.pop().flatten().filter(|_| job.layer == n))
}

/// Runs the job's current layer from its current unit for as many segments as `budget`
/// allows, its inputs in `cache`: the (partial) output and the recurrent state, or None when
/// not even one unit fits.
fn run_layer(
    storage: &dyn Storage,
    api: &dyn Api,
    model: &Model,
    job_id: u64,
    job: &mut Job,
    budget: &mut Budget,
    cache: &[Option<QTensor>],
) -> Result<Option<(QTensor, Vec<i32>)>, ContractError> {
    let index = job.layer as usize;
    let lc = &model.config.layers[index];
    let layer_err = |source| ContractError::Layer { index, source };
    let ids = lc.input_ids(index);
    let specs: Vec<&TensorSpec> = ids.iter().map(|&id| tensor_spec(model, id)).collect();
    let total = model.units[index] as usize;
    let cost = (unit_work(model, index), model.segment_work[index]);
    let Some(mut units) = fit(&lc.layer, &specs, job.unit as usize, total, cost, budget).map_err(layer_err)? else {
        return Ok(None);
    };
    let plan = lc.layer.plan(&specs).map_err(layer_err)?;
    let mut out = match job.unit {
        0 => plan.output.zeros().map_err(layer_err)?,
        _ => load_tensor(storage, model, job_id, job.layer + 1)?,
    };
    let mut state = match (plan.state_len, job.unit) {
        (0, _) => Vec::new(),
        (len, 0) => vec![0; len],
        _ => bytes_to_i32s(&load_bytes(storage, &JOB_STATE, job_id)?),
    };
    let inputs: Vec<&QTensor> = ids.iter().filter_map(|&id| cache[id as usize].as_ref()).collect();
    loop {
        mark(api, Some(index));
        let range = lc.layer.weight_range(&specs, units.clone()).map_err(layer_err)?;
        let weights = read_weights(storage, model, job.layer, range.start as u64..range.end as u64)?;
        lc.layer
            .forward(&inputs, weights.as_ref(), units.clone(), &mut out, &mut state)
            .map_err(layer_err)?;
        budget.work -= cost.1 + cost.0 * units.len() as u64;
        budget.bytes -= range.len() as u64;
        budget.segments -= 1;
        job.segments += 1;
        job.unit = units.end as u64;
        match fit(&lc.layer, &specs, units.end, total, cost, budget).map_err(layer_err)? {
            Some(next) if units.end < total => units = next,
            _ => return Ok(Some((out, state))),
        }
    }
}

/// Writes the computed tensors later calls need and drops stored ones no layer reads any more.
fn save_job_tensors(
    storage: &mut dyn Storage,
    model: &Model,
    job_id: u64,
    job: &mut Job,
    cache: &[Option<QTensor>],
    computed: &[bool],
) -> StdResult<()> {
    let layers = &model.config.layers;
    let n = layers.len() as u32;
    let needed = |k: u32| {
        if job.layer >= n {
            return k == n;
        }
        (job.unit > 0 && k == job.layer + 1)
            || (job.layer..n).any(|j| layers[j as usize].input_ids(j as usize).contains(&k))
    };
    let mut stored = Vec::new();
    for &k in &job.stored {
        if needed(k) {
            stored.push(k);
        } else {
            JOB_TENSORS.remove(storage, (job_id, k));
        }
    }
    for (k, t) in cache.iter().enumerate() {
        let k = k as u32;
        if let (Some(t), true) = (t, computed[k as usize] && needed(k)) {
            save_bytes(storage, &JOB_TENSORS, (job_id, k), &t.data.to_le_bytes());
            if let Err(at) = stored.binary_search(&k) {
                stored.insert(at, k);
            }
        }
    }
    job.stored = stored;
    Ok(())
}
