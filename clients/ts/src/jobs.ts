/**
 * `Evaluate` / `Continue` jobs from a client: start a job and drive it to its end, or relay
 * somebody else's (anyone may `Continue` a job; it was paid for when it started).
 *
 * `client` is anything with cosmjs's `execute` and `queryContractSmart`: a
 * `SigningCosmWasmClient` on a real chain, or a {@link LocalChain}.
 */
import type { Coin, StdFee } from '@cosmjs/amino';
import type { Event } from '@cosmjs/stargate';
import type { JobResponse, PredictResponse } from './contracts/CwnnModel.types.js';
import { toBase64 } from './encoding.js';

export interface JobClient {
  execute(
    sender: string,
    contract: string,
    msg: unknown,
    fee: StdFee | 'auto' | number,
    memo?: string,
    funds?: readonly Coin[],
  ): Promise<{ readonly events: readonly Event[]; readonly transactionHash: string }>;
  queryContractSmart(contract: string, query: unknown): Promise<any>;
}

export interface JobOptions {
  /** Layer segments per call (the contract's `steps`); default: as many as its budget allows. */
  steps?: number;
  fee?: StdFee | 'auto' | number;
  /** The model's fee, paid with `Evaluate` (exactly; see `ModelInfo.fee`). */
  funds?: readonly Coin[];
  /** At most this many transactions (default 1,000): a guard against a job that never ends. */
  maxCalls?: number;
  onProgress?: (p: { jobId: number; layer: number; unit: number; finished: boolean }) => void;
}

export interface JobOutcome {
  jobId: number;
  output: PredictResponse;
  /** Every event of every transaction the helper sent, in order (for `verifyInferences`). */
  events: Event[];
  transactions: string[];
}

/** A job helper that met something it cannot go on from. */
export class JobError extends Error {
  name = 'JobError';
}

/** An attribute of `contract`'s own `wasm` event (a tx may hold other contracts' too). */
function wasmAttr(events: readonly Event[], contract: string, key: string): string | undefined {
  for (const e of events) {
    if (e.type !== 'wasm' || !e.attributes.some((a) => a.key === '_contract_address' && a.value === contract)) continue;
    const a = e.attributes.find((x) => x.key === key);
    if (a) return a.value;
  }
  return undefined;
}

/**
 * Starts a job on a quantized `input` and continues it until it finishes. Input bytes
 * (`toLeBytes(values, dtype)`) go as `input_bytes`, which the contract parses for less gas.
 */
export async function runJob(
  client: JobClient,
  sender: string,
  contract: string,
  input: number[] | Uint8Array,
  opts: JobOptions = {},
): Promise<JobOutcome> {
  const steps = opts.steps ?? null;
  const given = input instanceof Uint8Array ? { input_bytes: toBase64(input) } : { input };
  const msg = { evaluate: { ...given, steps } };
  const res = await client.execute(sender, contract, msg, opts.fee ?? 'auto', undefined, opts.funds);
  const id = wasmAttr(res.events, contract, 'job_id');
  if (id === undefined) throw new JobError('the Evaluate transaction has no job_id attribute');
  return drive(client, sender, contract, Number(id), opts, [res]);
}

/** Continues job `jobId` (anybody's) until it finishes. */
export function relayJob(
  client: JobClient,
  sender: string,
  contract: string,
  jobId: number,
  opts: Omit<JobOptions, 'funds'> = {},
): Promise<JobOutcome> {
  return drive(client, sender, contract, jobId, opts, []);
}

async function drive(
  client: JobClient,
  sender: string,
  contract: string,
  jobId: number,
  opts: JobOptions,
  sent: { readonly events: readonly Event[]; readonly transactionHash: string }[],
): Promise<JobOutcome> {
  const maxCalls = opts.maxCalls ?? 1000;
  const attr = (events: readonly Event[], key: string) => wasmAttr(events, contract, key);
  const report = (events: readonly Event[]) => {
    const finished = attr(events, 'finished') === 'true';
    const p = { jobId, layer: Number(attr(events, 'layer')), unit: Number(attr(events, 'unit')), finished };
    opts.onProgress?.(p);
    return finished;
  };
  const job = (): Promise<JobResponse> => client.queryContractSmart(contract, { job: { id: jobId } });
  let finished = sent.length > 0 ? report(sent[0].events) : (await job()).finished;
  while (!finished) {
    if (sent.length >= maxCalls) throw new JobError(`job ${jobId} did not finish in ${maxCalls} calls`);
    const msg = { continue: { job_id: jobId, steps: opts.steps ?? null } };
    try {
      const res = await client.execute(sender, contract, msg, opts.fee ?? 'auto');
      sent.push(res);
      finished = report(res.events);
    } catch (e) {
      // Another relayer may have finished it meanwhile: then its output is there to read.
      if (!(await job().catch(() => null))?.finished) throw e;
      finished = true;
    }
  }
  const done = await job();
  if (!done.output) throw new JobError(`job ${jobId} is finished but has no output`);
  return {
    jobId,
    output: done.output,
    events: sent.flatMap((r) => [...r.events]),
    transactions: sent.map((r) => r.transactionHash),
  };
}
