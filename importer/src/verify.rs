//! `cwnn verify`: recomputes on-chain inferences from their events and checks them bit for bit.
//!
//! The contract emits `wasm-cwnn_evaluate` (job id, input as little-endian bytes in base64,
//! its sha256) when a job starts and `wasm-cwnn_inference` (job id, weights sha256, input and
//! output sha256, output bytes) when it ends. Given the package, anyone can rerun the input
//! natively and compare.

use cosmwasm_std::Binary;
use cwnn_model_contract::msg::sha256;
use cwnn_tensor::{QTensor, TensorData};
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

/// Checks every `cwnn_inference` in `tx` against `package`.
pub fn verify(package: &Package, tx: &Value) -> Result<Vec<Verdict>> {
    let all = events(tx);
    let kind = |e: &&Value, t: &str| e["type"].as_str().is_some_and(|k| k == t || k == format!("wasm-{t}"));
    let started: Vec<&Value> = all.iter().copied().filter(|e| kind(e, "cwnn_evaluate")).collect();
    let model_sha256 =
        cwnn_model_contract::msg::model_sha256(&package.instantiate.model, &package.instantiate.weights_sha256)?;
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
        let result = check(package, &model_sha256.to_hex(), inf, input);
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

/// One inference against the package: its hashes, then its output recomputed natively.
fn check(package: &Package, model_sha256: &str, inf: &Value, input: Option<String>) -> Result<(), String> {
    let weights = attr(inf, "weights_sha256").unwrap_or_default();
    if weights != package.instantiate.weights_sha256.to_hex() {
        return Err(format!("weights_sha256 {weights} is not this package's"));
    }
    let model = attr(inf, "model_sha256").unwrap_or_default();
    if model != model_sha256 {
        return Err(format!(
            "model_sha256 {model} is not this package's ({model_sha256}): another config or wiring"
        ));
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
        .run_all(&package.weights, x)
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
