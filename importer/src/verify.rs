//! `cwnn verify`: recomputes on-chain inferences from their events and checks them bit for bit.
//!
//! The contract emits `wasm-cwnn_evaluate` (job id, input as little-endian bytes in base64,
//! its sha256) when a job starts and `wasm-cwnn_inference` (job id, weights sha256, input and
//! output sha256, output bytes) when it ends. Given the package, anyone can rerun the input
//! natively and compare.
//!
//! A trainable model also emits `wasm-cwnn_train` for each step (version, the new hashes, the
//! examples' inputs and labels, the learning rate, a reward): [`replay`] reruns the steps in
//! version order from the package's weights and checks every version's hashes, so inferences
//! of later versions verify against the weights replayed for them.

use std::collections::BTreeMap;

use cosmwasm_std::Binary;
use cwnn_layers::train::{Sample, ONE};
use cwnn_model_contract::msg::{model_sha256, sha256, weights_sha256};
use cwnn_tensor::{Dyadic, QTensor, TensorData};
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::package::Package;

/// One inference found in the events and what recomputing it gave.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Verdict {
    pub job_id: String,
    pub matches: bool,
    /// Why it does not match (empty when it does).
    pub reason: String,
}

/// Events from a tx result in any of the shapes wasmd prints: a list of events, `{"events":
/// [...]}`, or `{"logs": [{"events": [...]}]}`; attributes as `{key, value}` (plain or base64).
fn events(v: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    match v {
        Value::Array(a) => a.iter().for_each(|e| out.extend(events(e))),
        Value::Object(o) if o.contains_key("type") && o.contains_key("attributes") => out.push(v),
        Value::Object(o) => o.values().for_each(|e| out.extend(events(e))),
        _ => {}
    }
    out
}

fn attr(event: &Value, key: &str) -> Option<String> {
    let attrs = event["attributes"].as_array()?;
    attrs.iter().find_map(|a| {
        let k = a["key"].as_str()?;
        let v = a["value"].as_str().unwrap_or("");
        if k == key {
            return Some(v.to_string());
        }
        // Older Tendermint encodes keys and values in base64.
        let dk = Binary::from_base64(k).ok()?;
        (dk.as_slice() == key.as_bytes())
            .then(|| {
                Binary::from_base64(v)
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            })
            .flatten()
    })
}

/// The input tensor from its event bytes.
fn decode(spec: &cwnn_layers::TensorSpec, bytes: &[u8]) -> Result<QTensor, String> {
    if Some(bytes.len()) != spec.bytes() {
        return Err(format!(
            "input has {} bytes, the model's input needs {:?}",
            bytes.len(),
            spec.bytes()
        ));
    }
    let data = TensorData::from_le_bytes(spec.dtype, bytes).map_err(|e| e.to_string())?;
    QTensor::new(spec.shape.clone(), data, spec.quant).map_err(|e| e.to_string())
}

fn kind(e: &Value, t: &str) -> bool {
    e["type"].as_str().is_some_and(|k| k == t || k == format!("wasm-{t}"))
}

/// One training step found in the events and whether replaying it gave its hashes.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StepVerdict {
    pub version: u64,
    pub matches: bool,
    pub reason: String,
}

/// Every version's weights (one entry per layer), by model_sha256 (hex).
pub type Versions = BTreeMap<String, Vec<Vec<u8>>>;

/// Replays every `cwnn_train` in `tx`, in version order from the package's weights (version
/// 0): each step must reproduce its event's weights_sha256 and model_sha256. Stops at the
/// first version that does not, or is missing. Gives the verdicts and every version's weights.
pub fn replay(package: &Package, tx: &Value) -> Result<(Vec<StepVerdict>, Versions)> {
    let config = &package.instantiate.model;
    let mut versions = Versions::new();
    versions.insert(
        model_sha256(config, &package.instantiate.weights_sha256)?.to_hex(),
        package.weights.clone(),
    );
    let mut steps: Vec<(u64, &Value)> = events(tx)
        .into_iter()
        .filter(|e| kind(e, "cwnn_train"))
        .map(|e| (attr(e, "version").and_then(|v| v.parse().ok()).unwrap_or(0), e))
        .collect();
    steps.sort_by_key(|(v, _)| *v);
    let (mut weights, mut fractions) = (package.weights.clone(), Vec::new());
    let mut verdicts = Vec::new();
    for (k, (version, event)) in steps.into_iter().enumerate() {
        let result = match version == k as u64 + 1 {
            true => replay_step(package, event, &mut weights, &mut fractions),
            false => Err(format!("version {} is missing from the events", k + 1)),
        };
        let matches = result.is_ok();
        verdicts.push(StepVerdict {
            version,
            matches,
            reason: result.err().unwrap_or_default(),
        });
        if !matches {
            break;
        }
        versions.insert(
            model_sha256(config, &weights_sha256(&weights))?.to_hex(),
            weights.clone(),
        );
    }
    Ok((verdicts, versions))
}

/// One `cwnn_train` event replayed on `weights` and `fractions` (updated in place).
fn replay_step(
    package: &Package,
    event: &Value,
    weights: &mut [Vec<u8>],
    fractions: &mut Vec<u8>,
) -> Result<(), String> {
    let config = &package.instantiate.model;
    let head = &package
        .instantiate
        .training
        .as_ref()
        .ok_or("the package's instantiate message has no training head")?
        .head;
    let get = |key: &str| attr(event, key).ok_or(format!("no {key} attribute"));
    let lr = get("lr")?;
    let (m, s) = lr.split_once("/2^").ok_or("lr is not mantissa/2^shift")?;
    let lr = Dyadic::new(
        m.parse().map_err(|_| "lr mantissa")?,
        s.parse().map_err(|_| "lr shift")?,
    )
    .map_err(|e| e.to_string())?;
    let weight = match get("kind")?.as_str() {
        "reinforce" => get("reward")?.parse().map_err(|_| "reward")?,
        _ => ONE,
    };
    let inputs = Binary::from_base64(&get("inputs")?).map_err(|e| e.to_string())?;
    let width = config.input.bytes().ok_or("the model's input has no byte size")?;
    let labels: Vec<u32> = get("labels")?
        .split(',')
        .map(|l| l.parse().map_err(|_| "a label".to_string()))
        .collect::<Result<_, _>>()?;
    if inputs.len() != labels.len() * width {
        return Err(format!("{} input bytes for {} labels", inputs.len(), labels.len()));
    }
    let samples = inputs
        .chunks(width)
        .zip(&labels)
        .map(|(x, &label)| {
            Ok(Sample {
                input: decode(&config.input, x)?,
                label,
                weight,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let refs: Vec<&[u8]> = weights.iter().map(Vec::as_slice).collect();
    let update = head
        .model_step(config, &refs, fractions, samples, lr)
        .map_err(|e| e.to_string())?;
    for (index, bytes) in update.layers {
        weights[index] = bytes;
    }
    *fractions = update.fractions;
    let ours = weights_sha256(weights).to_hex();
    if get("weights_sha256")? != ours {
        return Err(format!("the replayed weights hash to {ours}, not the event's"));
    }
    let model = model_sha256(config, &weights_sha256(weights))
        .map_err(|e| e.to_string())?
        .to_hex();
    match get("model_sha256")? == model {
        true => Ok(()),
        false => Err(format!("the replayed model hashes to {model}, not the event's")),
    }
}

/// Checks every `cwnn_inference` in `tx` against `package`, and against the versions
/// [`replay`] reproduces from the `cwnn_train` events in `tx`.
pub fn verify(package: &Package, tx: &Value) -> Result<Vec<Verdict>> {
    let all = events(tx);
    let started: Vec<&Value> = all.iter().copied().filter(|e| kind(e, "cwnn_evaluate")).collect();
    let (_, versions) = replay(package, tx)?;
    let mut verdicts = Vec::new();
    for inf in all.iter().filter(|e| kind(e, "cwnn_inference")) {
        let job_id = attr(inf, "job_id").ok_or(Error::Events("a cwnn_inference event without job_id".into()))?;
        // A paid `Predict` carries its input; a job's is in its `cwnn_evaluate` event.
        let input = attr(inf, "input").or_else(|| {
            started
                .iter()
                .find(|e| attr(e, "job_id").as_deref() == Some(job_id.as_str()))
                .and_then(|e| attr(e, "input"))
        });
        let result = check(package, &versions, inf, input);
        verdicts.push(Verdict {
            job_id,
            matches: result.is_ok(),
            reason: result.err().unwrap_or_default(),
        });
    }
    if verdicts.is_empty() {
        return Err(Error::Events("no cwnn_inference event in the file".into()));
    }
    Ok(verdicts)
}

/// One inference against the package (or a version replayed from it): its hashes, then its
/// output recomputed natively.
fn check(package: &Package, versions: &Versions, inf: &Value, input: Option<String>) -> Result<(), String> {
    let model = attr(inf, "model_sha256").unwrap_or_default();
    let weights = versions.get(&model).ok_or_else(|| {
        format!("model_sha256 {model} is not this package's, nor a version replayed from the events: another config, wiring or weights")
    })?;
    let weights_hash = attr(inf, "weights_sha256").unwrap_or_default();
    if weights_hash != weights_sha256(weights).to_hex() {
        return Err(format!("weights_sha256 {weights_hash} is not this model's"));
    }
    let input =
        input.ok_or("no cwnn_evaluate event with the input of this job (pass the events of the Evaluate tx too)")?;
    let input = Binary::from_base64(&input).map_err(|e| e.to_string())?;
    if attr(inf, "input_sha256").as_deref() != Some(sha256(&input).to_hex().as_str()) {
        return Err("input_sha256 does not hash the input".into());
    }
    let x = decode(&package.instantiate.model.input, &input)?;
    let y = package
        .instantiate
        .model
        .run_all(weights, x)
        .map_err(|e| e.to_string())?;
    let ours = y.last().ok_or("no output")?.data.to_le_bytes();
    let theirs = Binary::from_base64(&attr(inf, "output").ok_or("no output attribute")?).map_err(|e| e.to_string())?;
    if attr(inf, "output_sha256").as_deref() != Some(sha256(&theirs).to_hex().as_str()) {
        return Err("output_sha256 does not hash the output".into());
    }
    if ours != theirs.as_slice() {
        let at = ours.iter().zip(theirs.iter()).position(|(a, b)| a != b).unwrap_or(0);
        return Err(format!("output differs from the recomputed one at byte {at}"));
    }
    Ok(())
}
