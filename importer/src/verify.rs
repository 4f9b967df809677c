//! `cwnn verify`: recomputes on-chain inferences from their events and checks them bit for bit.
//!
//! The contract emits `wasm-cwnn_evaluate` (job id, input as little-endian bytes in base64,
//! its sha256) when a job starts and `wasm-cwnn_inference` (job id, weights sha256, input and
//! output sha256, output bytes) when it ends. Given the package, anyone can rerun the input
//! natively and compare.

use anyhow::{bail, Context, Result};
use cosmwasm_std::Binary;
use cwnn_model_contract::msg::sha256;
use cwnn_tensor::{DType, QTensor, TensorData};
use serde::Serialize;
use serde_json::Value;

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
fn decode(spec: &cwnn_layers::TensorSpec, bytes: &[u8]) -> Result<QTensor> {
    let w = spec.dtype.bytes();
    if Some(bytes.len()) != spec.bytes() {
        bail!(
            "input has {} bytes, the model's input needs {:?}",
            bytes.len(),
            spec.bytes()
        );
    }
    let data = match spec.dtype {
        DType::I8 => TensorData::I8(bytes.iter().map(|&b| b as i8).collect()),
        DType::I16 => TensorData::I16(
            bytes
                .chunks_exact(w)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect(),
        ),
        DType::I32 => TensorData::I32(
            bytes
                .chunks_exact(w)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
    };
    Ok(QTensor::new(spec.shape.clone(), data, spec.quant)?)
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
        let job_id = attr(inf, "job_id").context("a cwnn_inference event without job_id")?;
        let check = || -> Result<()> {
            let weights = attr(inf, "weights_sha256").unwrap_or_default();
            if weights != package.instantiate.weights_sha256.to_hex() {
                bail!("weights_sha256 {weights} is not this package's");
            }
            let model = attr(inf, "model_sha256").unwrap_or_default();
            if model != model_sha256.to_hex() {
                bail!("model_sha256 {model} is not this package's ({model_sha256}): another config or wiring");
            }
            // A paid `Predict` carries its input; a job's is in its `cwnn_evaluate` event.
            let input = match attr(inf, "input") {
                Some(input) => input,
                None => started
                    .iter()
                    .find(|e| attr(e, "job_id").as_deref() == Some(job_id.as_str()))
                    .and_then(|e| attr(e, "input"))
                    .context(
                        "no cwnn_evaluate event with the input of this job (pass the events of the Evaluate tx too)",
                    )?,
            };
            let input = Binary::from_base64(&input)?;
            if attr(inf, "input_sha256").as_deref() != Some(sha256(&input).to_hex().as_str()) {
                bail!("input_sha256 does not hash the input");
            }
            let x = decode(&package.instantiate.model.input, &input)?;
            let y = package.instantiate.model.run_all(&package.weights, x)?;
            let ours = y.last().context("no output")?.data.to_le_bytes();
            let theirs = Binary::from_base64(&attr(inf, "output").context("no output attribute")?)?;
            if attr(inf, "output_sha256").as_deref() != Some(sha256(&theirs).to_hex().as_str()) {
                bail!("output_sha256 does not hash the output");
            }
            if ours != theirs.as_slice() {
                let at = ours.iter().zip(theirs.iter()).position(|(a, b)| a != b).unwrap_or(0);
                bail!("output differs from the recomputed one at byte {at}");
            }
            Ok(())
        };
        let result = check();
        verdicts.push(Verdict {
            job_id,
            matches: result.is_ok(),
            reason: result.err().map_or(String::new(), |e| format!("{e:#}")),
        });
    }
    if verdicts.is_empty() {
        bail!("no cwnn_inference event in the file");
    }
    Ok(verdicts)
}
