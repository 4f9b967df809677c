/**
 * Inference events, decoded and checked as `cwnn verify` does (importer/src/verify.rs): the
 * contract emits `wasm-cwnn_evaluate` (job id, input bytes, input sha256) when a job starts and
 * `wasm-cwnn_inference` (job id, model / weights / input / output sha256, output bytes) when it
 * ends; a paid `Predict` puts the input in `cwnn_inference` itself (job id 0).
 */
import { fromBase64, fromUtf8, sha256Hex } from './encoding.js';
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
  modelSha256: string;
  weightsSha256: string;
  inputSha256: string;
  outputSha256: string;
  /** The input's little-endian bytes, from the event or the job's `cwnn_evaluate`. */
  input: Uint8Array | null;
  output: Uint8Array;
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
    return fromUtf8(fromBase64(s));
  } catch {
    return null;
  }
};

/** An attribute's value; keys written in base64 are decoded along with their values. */
export function attribute(event: Event, key: string): string | undefined {
  for (const a of event.attributes) {
    if (a.key === key) return a.value ?? '';
    if (b64(a.key) === key) return b64(a.value ?? '') ?? undefined;
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
      const jobId = get('job_id');
      const input =
        attribute(e, 'input') ?? started.map((s) => (attribute(s, 'job_id') === jobId ? attribute(s, 'input') : undefined)).find((x) => x);
      return {
        jobId,
        modelSha256: get('model_sha256'),
        weightsSha256: get('weights_sha256'),
        inputSha256: get('input_sha256'),
        outputSha256: get('output_sha256'),
        input: input === undefined ? null : fromBase64(input),
        output: fromBase64(get('output')),
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

async function check(inf: Inference, pkg: Package, run: (input: Uint8Array) => Promise<Uint8Array>): Promise<string> {
  const m = pkg.manifest;
  if (inf.weightsSha256 !== m.weights_sha256) return `weights_sha256 ${inf.weightsSha256} is not this package's`;
  if (inf.modelSha256 !== m.model_sha256) {
    return `model_sha256 ${inf.modelSha256} is not this package's (${m.model_sha256}): another config or wiring`;
  }
  if (!inf.input) return 'no cwnn_evaluate event with the input of this job (pass the events of the Evaluate tx too)';
  if ((await sha256Hex(inf.input)) !== inf.inputSha256) return 'input_sha256 does not hash the input';
  if ((await sha256Hex(inf.output)) !== inf.outputSha256) return 'output_sha256 does not hash the output';
  let ours: Uint8Array;
  try {
    ours = await run(inf.input);
  } catch (e) {
    return `the input does not run: ${(e as Error).message}`;
  }
  const at = ours.findIndex((b, i) => b !== inf.output[i]);
  if (at >= 0 || ours.length !== inf.output.length) {
    return `output differs from the recomputed one at byte ${at >= 0 ? at : Math.min(ours.length, inf.output.length)}`;
  }
  return '';
}
