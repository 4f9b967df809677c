/**
 * Inference events, decoded and checked as `cwnn verify` does (importer/src/verify.rs): the
 * contract emits `wasm-cwnn_evaluate` (job id, input bytes, input sha256) when a job starts and
 * `wasm-cwnn_inference` (job id, model / weights / input / output sha256, output bytes) when it
 * ends; a paid `Predict` puts the input in `cwnn_inference` itself (job id 0).
 */
import { fromBase64, sha256Hex } from './encoding.js';
import type { Package } from './package.js';

export interface Attribute {
  key: string;
  value: string;
}
export interface Event {
  type: string;
  attributes: readonly Attribute[];
}

export interface Inference {
  jobId: string;
  /** The contract that emitted it (`_contract_address`), when the event has it. */
  contract: string | undefined;
  modelSha256: string;
  weightsSha256: string;
  inputSha256: string;
  outputSha256: string;
  /** The input's little-endian bytes in base64, from the event or the job's `cwnn_evaluate`. */
  input: string | undefined;
  /** The output's little-endian bytes in base64. */
  output: string | undefined;
}

export interface Verdict {
  jobId: string;
  matches: boolean;
  /** Why not (empty when it matches). */
  reason: string;
}

/**
 * Events in any shape wasmd or cosmjs gives them: a list, `{events}`, `{logs: [{events}]}`,
 * a cosmjs `ExecuteResult`; attribute keys and values plain or base64 (older Tendermint).
 */
export function findEvents(tx: unknown): Event[] {
  if (Array.isArray(tx)) return tx.flatMap(findEvents);
  if (tx && typeof tx === 'object') {
    const o = tx as Record<string, unknown>;
    if (typeof o.type === 'string' && Array.isArray(o.attributes)) return [o as unknown as Event];
    return Object.values(o).flatMap(findEvents);
  }
  return [];
}

const b64 = (s: string) => {
  try {
    return new TextDecoder().decode(fromBase64(s)); // lossy, as verify.rs
  } catch {
    return null;
  }
};

/** An attribute's value; keys written in base64 are decoded along with their values. */
export function attribute(event: Event, key: string): string | undefined {
  for (const a of event.attributes) {
    if (a.key === key) return a.value ?? '';
    const value = b64(a.key) === key ? b64(a.value ?? '') : null;
    if (value !== null) return value;
  }
  return undefined;
}

const isType = (e: Event, t: string) => e.type === t || e.type === `wasm-${t}`;

/** Every inference in `tx`, each with its input found. */
export function inferences(tx: unknown): Inference[] {
  const all = findEvents(tx);
  const started = all.filter((e) => isType(e, 'cwnn_evaluate'));
  return all
    .filter((e) => isType(e, 'cwnn_inference'))
    .map((e) => {
      const get = (k: string) => attribute(e, k) ?? '';
      const jobId = attribute(e, 'job_id');
      if (jobId === undefined) throw new Error('a cwnn_inference event without job_id');
      // A paid `Predict` carries its input; a job's is in its `cwnn_evaluate` event.
      const input = attribute(e, 'input') ?? attribute(started.find((s) => attribute(s, 'job_id') === jobId) ?? { type: '', attributes: [] }, 'input');
      return {
        jobId,
        contract: attribute(e, '_contract_address'),
        modelSha256: get('model_sha256'),
        weightsSha256: get('weights_sha256'),
        inputSha256: get('input_sha256'),
        outputSha256: get('output_sha256'),
        input,
        output: attribute(e, 'output'),
      };
    });
}

/**
 * Checks every inference in `tx` against `pkg`: its hashes, then its output recomputed by
 * `run` (quantized input bytes → output bytes; e.g. a {@link LocalModel}'s `Predict`).
 */
export async function verifyInferences(
  tx: unknown,
  pkg: Package,
  run: (input: Uint8Array) => Promise<Uint8Array>,
): Promise<Verdict[]> {
  const found = inferences(tx);
  if (!found.length) throw new Error('no cwnn_inference event in the events');
  const verdicts: Verdict[] = [];
  for (const inf of found) {
    const reason = await check(inf, pkg, run);
    verdicts.push({ jobId: inf.jobId, matches: reason === '', reason });
  }
  return verdicts;
}

const decode = (text: string): Uint8Array | string => {
  try {
    return fromBase64(text);
  } catch (e) {
    return (e as Error).message;
  }
};

async function check(inf: Inference, pkg: Package, run: (input: Uint8Array) => Promise<Uint8Array>): Promise<string> {
  const m = pkg.manifest;
  if (inf.weightsSha256 !== m.weights_sha256) return `weights_sha256 ${inf.weightsSha256} is not this package's`;
  if (inf.modelSha256 !== m.model_sha256) {
    return `model_sha256 ${inf.modelSha256} is not this package's (${m.model_sha256}): another config or wiring`;
  }
  if (inf.input === undefined) return 'no cwnn_evaluate event with the input of this job (pass the events of the Evaluate tx too)';
  const input = decode(inf.input);
  if (typeof input === 'string') return input;
  if ((await sha256Hex(input)) !== inf.inputSha256) return 'input_sha256 does not hash the input';
  let ours: Uint8Array;
  try {
    ours = await run(input);
  } catch (e) {
    return `the input does not run: ${(e as Error).message}`;
  }
  if (inf.output === undefined) return 'no output attribute';
  const theirs = decode(inf.output);
  if (typeof theirs === 'string') return theirs;
  if ((await sha256Hex(theirs)) !== inf.outputSha256) return 'output_sha256 does not hash the output';
  const at = ours.findIndex((b, i) => b !== theirs[i]);
  if (at >= 0 || ours.length !== theirs.length) {
    return `output differs from the recomputed one at byte ${at >= 0 ? at : Math.min(ours.length, theirs.length)}`;
  }
  return '';
}
