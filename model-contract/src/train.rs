//! Training on chain: `Train`, `Reinforce` and `SetTraining`. The step is
//! [`Head::model_step`], the same code `cwnn verify` replays from the `cwnn_train` events; the
//! rounding rules are in docs/ARITHMETIC.md. A refused message changes no state: who may
//! train is checked first, then the message, then the budget, the step and the caps, and only
//! then is anything written (a failed transaction is reverted anyway).

use cosmwasm_std::{Api, Binary, Deps, DepsMut, Env, Event, MessageInfo, Response};
use cwnn_layers::train::{Head, Sample, MAX_WEIGHT, ONE};
use sha2::{Digest, Sha256};

use crate::config::check_fee;
use crate::error::ContractError;
use crate::eval::{input_tensor, load_tensor, read_weights};
use crate::execute::{accrue, nonpayable, paid};
use crate::msg::{
    model_sha256, sha256, TrainExample, TrainPolicy, Training, TrainingRules, CHUNK_BYTES, MAX_ALLOWLIST,
    MAX_TRAIN_BATCH,
};
use crate::query::current_owner;
use crate::state::{
    baked, load_model, save_bytes, save_version, Model, FRACTIONS, JOBS, TRAINING, TRAIN_BLOCK, TRAIN_BY, WEIGHTS,
};

/// A model's training as instantiated: its head fits the model and its rules are valid.
/// Gives the training with its allowlist normalized.
pub(crate) fn check_training(api: &dyn Api, model: &Model, t: Training) -> Result<Training, ContractError> {
    if baked().is_some() {
        return Err(ContractError::NotTrainable("a baked model's weights are its code"));
    }
    let index = t.head.locate(&model.config)?;
    t.head
        .validate()
        .map_err(|source| ContractError::Layer { index, source })?;
    let first = index - usize::from(t.head.hidden.is_some());
    if model.weight_bytes[first..=index].iter().any(|&b| b > CHUNK_BYTES) {
        return Err(ContractError::NotTrainable(
            "a trained layer's weights exceed one 128 KiB value",
        ));
    }
    Ok(Training {
        rules: check_rules(api, t.rules)?,
        head: t.head,
    })
}

/// Valid rules: a batch of 1 to [`MAX_TRAIN_BATCH`], a positive learning rate, caps of at
/// least 1, a short allowlist of valid addresses (normalized), a valid fee.
pub(crate) fn check_rules(api: &dyn Api, mut r: TrainingRules) -> Result<TrainingRules, ContractError> {
    if r.max_batch == 0 || r.max_batch > MAX_TRAIN_BATCH {
        return Err(ContractError::InvalidConfig("max_batch is 1 to 64"));
    }
    if r.lr.validate().is_err() || r.lr.mantissa <= 0 {
        return Err(ContractError::InvalidConfig(
            "a learning rate has a positive mantissa and a shift of 1 to 62",
        ));
    }
    if r.max_per_block == Some(0) || r.max_per_address == Some(0) {
        return Err(ContractError::InvalidConfig("a training cap is at least 1"));
    }
    if r.max_reward == Some(0) || r.max_reward() > MAX_WEIGHT as u32 {
        return Err(ContractError::InvalidConfig("max_reward is 1 to 32,768"));
    }
    match &mut r.policy {
        TrainPolicy::Allowlist { addresses } if addresses.len() > MAX_ALLOWLIST => {
            return Err(ContractError::InvalidConfig("an allowlist holds at most 32 addresses"));
        }
        TrainPolicy::Allowlist { addresses } => {
            for a in addresses.iter_mut() {
                *a = api.addr_validate(a)?.into_string();
            }
        }
        TrainPolicy::Anyone { fee } => check_fee(fee)?,
        TrainPolicy::Owner {} => {}
    }
    Ok(r)
}

/// A finalized trainable model that is not frozen, with its training, and a sender the rules
/// let train, paying what they ask.
fn trainable(deps: Deps, info: &MessageInfo) -> Result<(Model, Training), ContractError> {
    let model = load_model(deps.storage)?;
    if !model.trainable {
        return Err(ContractError::NotTrainable(
            "it was instantiated without a head to train",
        ));
    }
    if !model.finalized {
        return Err(ContractError::NotFinalized {});
    }
    let training = TRAINING.load(deps.storage)?;
    if training.rules.frozen {
        return Err(ContractError::TrainingFrozen {});
    }
    authorize(deps, info, &training.rules)?;
    Ok((model, training))
}

pub(crate) fn train(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    examples: Vec<TrainExample>,
) -> Result<Response, ContractError> {
    let (model, training) = trainable(deps.as_ref(), &info)?;
    let max = training.rules.max_batch;
    if examples.is_empty() || examples.len() > max as usize {
        return Err(ContractError::BatchSize {
            max,
            got: examples.len(),
        });
    }
    let classes = training.head.classes;
    let mut samples = Vec::with_capacity(examples.len());
    for (example, e) in examples.into_iter().enumerate() {
        if e.label >= classes {
            return Err(ContractError::Label {
                example,
                label: e.label,
                classes,
            });
        }
        let input = input_tensor(&model.config.input, e.input, e.input_bytes)?;
        samples.push(Sample {
            input,
            label: e.label,
            weight: ONE,
        });
    }
    let event = Event::new("cwnn_train").add_attribute("kind", "train");
    step(deps, env, info, (model, training), samples, event)
}

/// REINFORCE on a finished job of the sender's: the step towards the class it chose,
/// weighted by `reward` (in 1/256).
pub(crate) fn reinforce(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    job_id: u64,
    reward: i32,
    input: (Vec<i32>, Option<Binary>),
) -> Result<Response, ContractError> {
    let (model, training) = trainable(deps.as_ref(), &info)?;
    let max = training.rules.max_reward();
    if reward == 0 || reward.unsigned_abs() > max {
        return Err(ContractError::Reward { reward, max });
    }
    let mut job = JOBS
        .may_load(deps.storage, job_id)?
        .ok_or(ContractError::JobNotFound { id: job_id })?;
    if job.creator != info.sender {
        return Err(ContractError::NotJobCreator { id: job_id });
    }
    if !job.finished(&model) {
        return Err(ContractError::JobNotFinished { id: job_id });
    }
    if job.reinforced {
        return Err(ContractError::AlreadyReinforced { id: job_id });
    }
    let input = input_tensor(&model.config.input, input.0, input.1)?;
    let hash = sha256(&input.data.to_le_bytes());
    if hash != job.input_sha256 {
        return Err(ContractError::InputMismatch {
            id: job_id,
            expected: job.input_sha256.to_hex(),
            actual: hash.to_hex(),
        });
    }
    let out = load_tensor(deps.storage, &model, job_id, job.layer)?.data.to_i32s();
    let chosen = (0..out.len()).fold(0, |best, k| if out[k] > out[best] { k } else { best });
    job.reinforced = true;
    let sample = Sample {
        input,
        label: chosen as u32,
        weight: reward,
    };
    let event = Event::new("cwnn_train")
        .add_attribute("kind", "reinforce")
        .add_attribute("job_id", job_id.to_string())
        .add_attribute("reward", reward.to_string());
    let mut deps = deps;
    let res = step(deps.branch(), env, info, (model, training), vec![sample], event)?;
    JOBS.save(deps.storage, job_id, &job)?;
    Ok(res)
}

pub(crate) fn set_training(deps: DepsMut, rules: TrainingRules) -> Result<Response, ContractError> {
    let model = load_model(deps.storage)?;
    if !model.trainable {
        return Err(ContractError::NotTrainable(
            "it was instantiated without a head to train",
        ));
    }
    let rules = check_rules(deps.api, rules)?;
    let mut training = TRAINING.load(deps.storage)?;
    training.rules = rules;
    TRAINING.save(deps.storage, &training)?;
    Ok(Response::new()
        .add_attribute("action", "set_training")
        .add_attribute("frozen", training.rules.frozen.to_string()))
}

/// The sender may train under `rules` and pays what they ask: the owner always, free.
fn authorize(deps: Deps, info: &MessageInfo, rules: &TrainingRules) -> Result<(), ContractError> {
    if info.sender == current_owner(deps)? {
        return nonpayable(info);
    }
    let refused = || ContractError::NotAllowedToTrain {
        sender: info.sender.to_string(),
    };
    match &rules.policy {
        TrainPolicy::Owner {} => Err(refused()),
        TrainPolicy::Allowlist { addresses } => match addresses.iter().any(|a| a == info.sender.as_str()) {
            true => nonpayable(info),
            false => Err(refused()),
        },
        TrainPolicy::Anyone { fee } => paid(fee, info),
    }
}

/// Counts one update against the rules' caps (per block, and per address in a block). The
/// owner's updates are not counted, so nobody can use them up.
fn count_update(deps: DepsMut, env: &Env, info: &MessageInfo, rules: &TrainingRules) -> Result<(), ContractError> {
    let capped = rules.max_per_block.is_some() || rules.max_per_address.is_some();
    if !capped || info.sender == current_owner(deps.as_ref())? {
        return Ok(());
    }
    let storage = deps.storage;
    let height = env.block.height;
    let next = |seen: Option<(u64, u32)>, max: u32, scope| match seen {
        Some((h, n)) if h == height && n >= max => Err(ContractError::TrainingCap { scope, max }),
        Some((h, n)) if h == height => Ok((h, n + 1)),
        _ => Ok((height, 1)),
    };
    if let Some(max) = rules.max_per_block {
        let n = next(TRAIN_BLOCK.may_load(storage)?, max, "for the model")?;
        TRAIN_BLOCK.save(storage, &n)?;
    }
    if let Some(max) = rules.max_per_address {
        let n = next(TRAIN_BY.may_load(storage, &info.sender)?, max, "per address")?;
        TRAIN_BY.save(storage, &info.sender, &n)?;
    }
    Ok(())
}

/// The work and weight bytes of one step on `batch` examples against the execute budget: a
/// forward pass per example, then `2·B·C·in` for the head's gradient and `C·in` for its
/// update; with a hidden layer, `B·(C·units + 2·units·in)` and `units·in` more.
fn check_budget(model: &Model, head: &Head, batch: usize) -> Result<(), ContractError> {
    let sum = |v: &[u64]| v.iter().fold(0u64, |a, &b| a.saturating_add(b));
    let forward = sum(&model.work).saturating_add(sum(&model.segment_work));
    let head_work = u64::from(head.in_features) * u64::from(head.classes);
    let (back, hidden_work) = head
        .hidden
        .as_ref()
        .map_or((0, 0), |h| (head_work, u64::from(h.in_features) * u64::from(h.units)));
    let per_example = forward
        .saturating_add(head_work.saturating_mul(2))
        .saturating_add(back)
        .saturating_add(hidden_work.saturating_mul(2));
    let work = (batch as u64)
        .saturating_mul(per_example)
        .saturating_add(head_work + hidden_work);
    let weight_bytes = sum(&model.weight_bytes).saturating_add(head.fraction_len() as u64);
    let b = &model.execute_budget;
    if work > b.max_work || weight_bytes > b.max_weight_bytes {
        return Err(ContractError::OverBudget {
            work,
            weight_bytes,
            max_work: b.max_work,
            max_weight_bytes: b.max_weight_bytes,
        });
    }
    Ok(())
}

/// One step: checks the budget, runs [`Head::model_step`], counts the update against the caps,
/// stores the trained layers' bytes, the fractions, and the next version with its hashes;
/// `event` gets what a replay needs.
fn step(
    mut deps: DepsMut,
    env: Env,
    info: MessageInfo,
    (mut model, training): (Model, Training),
    samples: Vec<Sample>,
    event: Event,
) -> Result<Response, ContractError> {
    let rules = &training.rules;
    check_budget(&model, &training.head, samples.len())?;
    let weights = (0..model.weight_bytes.len())
        .map(|l| read_weights(deps.storage, &model, l as u32, 0..model.weight_bytes[l]))
        .collect::<Result<Vec<_>, _>>()?;
    let mut weights: Vec<&[u8]> = weights.iter().map(|w| w.as_ref()).collect();
    let fractions = deps.storage.get(FRACTIONS).unwrap_or_default();
    let labels: Vec<String> = samples.iter().map(|s| s.label.to_string()).collect();
    let inputs: Vec<u8> = samples.iter().flat_map(|s| s.input.data.to_le_bytes()).collect();
    let update = training
        .head
        .model_step(&model.config, &weights, &fractions, samples, rules.lr)?;
    for (index, bytes) in &update.layers {
        weights[*index] = bytes;
    }
    let mut hasher = Sha256::new();
    weights.iter().for_each(|w| hasher.update(w));
    model.weights_sha256 = hasher.finalize().to_vec().into();
    model.model_sha256 = model_sha256(&model.config, &model.weights_sha256)?;
    model.version += 1;
    count_update(deps.branch(), &env, &info, rules)?;
    for (index, bytes) in &update.layers {
        save_bytes(deps.storage, &WEIGHTS, (*index as u32, 0), bytes);
    }
    deps.storage.set(FRACTIONS, &update.fractions);
    save_version(deps.storage, &model);
    let event = event
        .add_attribute("version", model.version.to_string())
        .add_attribute("model_sha256", model.model_sha256.to_hex())
        .add_attribute("weights_sha256", model.weights_sha256.to_hex())
        .add_attribute("sender", info.sender.as_str())
        .add_attribute("lr", format!("{}/2^{}", rules.lr.mantissa, rules.lr.shift))
        .add_attribute("labels", labels.join(","))
        .add_attribute("inputs", Binary::from(inputs).to_base64());
    let res = Response::new()
        .add_attribute("action", "train")
        .add_attribute("version", model.version.to_string())
        .add_event(event);
    accrue(deps.storage, &info.funds, res)
}
