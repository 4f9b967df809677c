/**
 * Jobs through the helpers and the generated client, on the contract's Wasm in the local chain;
 * their events checked here and by `cwnn verify`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SigningCosmWasmClient } from '@cosmjs/cosmwasm-stargate';
import { beforeAll, describe, expect, it } from 'vitest';
import { CwnnModelClient, CwnnModelQueryClient } from '../src/contracts/CwnnModel.client.js';
import { toBase64 } from '../src/encoding.js';
import { toLeBytes } from '../src/quant.js';
import { inferences, verifyInferences } from '../src/events.js';
import { JobError, relayJob, runJob } from '../src/jobs.js';
import { LocalModel } from '../src/model.js';
import type { Package } from '../src/package.js';
import { cwnnBinary, pkg, pkgDir, testDigits, wasm } from './fixtures.js';

let model: LocalModel;
let full: LocalModel; // the default budget: a paid Predict runs the whole model
let p: Package;
let digits: number[][];
beforeAll(async () => {
  p = await pkg();
  // One layer segment per call, so a job takes one transaction per layer.
  const execute_budget = { max_work: 20_000_000, max_weight_bytes: 1 << 20, max_segments: 1 };
  model = await LocalModel.deploy(await wasm(), p, { instantiate: { execute_budget } });
  full = await LocalModel.deploy(await wasm(), p);
  digits = (await testDigits()).inputs;
});

describe('jobs', () => {
  it('runs a job to its end and gives the Predict answer', async () => {
    const { input, response } = await model.predict(digits[0]);
    const seen: number[] = [];
    const job = await runJob(model.chain, 'cwnn1user', model.address, input, { onProgress: (s) => seen.push(s.layer) });
    expect(job.output).toEqual(response);
    expect(job.transactions.length).toBe(3);
    expect(seen).toEqual([1, 2, 3]);
    // The input as bytes: the same job, the same answer.
    const bytes = await runJob(model.chain, 'cwnn1user', model.address, toLeBytes(input, 'i8'));
    expect(bytes.output).toEqual(response);
  });

  it("relays somebody else's job", async () => {
    const { input, response } = await model.predict(digits[1]);
    const started = await model.chain.execute('cwnn1alice', model.address, { evaluate: { input } });
    const id = Number(started.events.find((e) => e.type === 'wasm')!.attributes.find((a) => a.key === 'job_id')!.value);
    const relayed = await relayJob(model.chain, 'cwnn1bob', model.address, id);
    expect(relayed.output).toEqual(response);
    expect(relayed.transactions.length).toBe(2);
    // A finished job needs no transaction; an unknown one is the contract's named error.
    expect((await relayJob(model.chain, 'cwnn1bob', model.address, id)).transactions).toEqual([]);
    await expect(relayJob(model.chain, 'cwnn1bob', model.address, 999)).rejects.toThrow(/not found/i);
    await expect(runJob(model.chain, 'cwnn1user', model.address, input, { maxCalls: 2 })).rejects.toThrow(JobError);
  });

  it('works through the generated typed client', async () => {
    const signing = model.chain as unknown as SigningCosmWasmClient;
    const client = new CwnnModelClient(signing, 'cwnn1carol', model.address);
    const { input, response } = await model.predict(digits[2]);
    const res = await client.evaluate({ input, steps: 3 });
    const id = Number(res.events.find((e) => e.type === 'wasm')!.attributes.find((a) => a.key === 'job_id')!.value);
    const job = await new CwnnModelQueryClient(signing, model.address).job({ id });
    expect(job.finished).toBe(false); // the budget allows one segment per call, whatever `steps` asks
    await client.continue({ jobId: id });
    await client.continue({ jobId: id });
    expect((await new CwnnModelQueryClient(signing, model.address).job({ id })).output).toEqual(response);
    expect((await new CwnnModelQueryClient(signing, model.address).predict({ input })).data).toEqual(response.data);
  });
});

describe('events', () => {
  it('decodes and verifies a job and a paid Predict, like `cwnn verify`', async () => {
    const { input } = await model.predict(digits[3]);
    const job = await runJob(model.chain, 'cwnn1user', model.address, input);
    const paid = await full.chain.execute('cwnn1user', full.address, { predict: { input } });
    const events = [...job.events, ...paid.events];
    const found = inferences(events);
    expect(found.map((f) => f.jobId)).toEqual([String(job.jobId), '0']);
    const verdicts = await verifyInferences(events, p, (b) => model.rerun(b));
    expect(verdicts.every((v) => v.matches)).toBe(true);

    // The same events as `wasmd query tx` prints them pass `cwnn verify` too.
    const file = join(mkdtempSync(join(tmpdir(), 'cwnn-events-')), 'tx.json');
    writeFileSync(file, JSON.stringify({ events }));
    const out = execFileSync(cwnnBinary(), ['verify', pkgDir, '--events', file], { encoding: 'utf8' });
    expect(out).toContain(`job ${job.jobId}: matches bit for bit`);
    expect(out).toContain('job 0: matches bit for bit');
  });

  it('names what is wrong with a forged event', async () => {
    const { input } = await model.predict(digits[4]);
    const paid = await full.chain.execute('cwnn1user', full.address, { predict: { input } });
    const forge = (key: string, value: (v: string) => string) =>
      paid.events.map((e) => ({
        type: e.type,
        attributes: e.attributes.map((a) => (a.key === key ? { key, value: value(a.value) } : a)),
      }));
    const run = (b: Uint8Array) => model.rerun(b);
    const flip = (v: string) => {
      const b = Uint8Array.from(atob(v), (c) => c.charCodeAt(0));
      b[0] ^= 1;
      return toBase64(b);
    };
    const cases: [string, (v: string) => string, RegExp][] = [
      ['model_sha256', () => '00'.repeat(32), /model_sha256 .* is not this package's/],
      ['weights_sha256', () => 'ab'.repeat(32), /weights_sha256 .* is not this package's/],
      ['output', flip, /output_sha256 does not hash the output/],
      ['input', flip, /input_sha256 does not hash the input/],
    ];
    for (const [key, value, why] of cases) {
      const [v] = await verifyInferences(forge(key, value), p, run);
      expect(v.matches, key).toBe(false);
      expect(v.reason, key).toMatch(why);
    }
    // An output forged together with its hash is caught by rerunning the input.
    const forged = flip(paid.events[2].attributes.find((a) => a.key === 'output')!.value);
    const bytes = Uint8Array.from(atob(forged), (c) => c.charCodeAt(0));
    const hash = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), (b) => b.toString(16).padStart(2, '0')).join('');
    const both = forge('output', () => forged).map((e) => ({
      ...e,
      attributes: e.attributes.map((a) => (a.key === 'output_sha256' ? { key: a.key, value: hash } : a)),
    }));
    expect((await verifyInferences(both, p, run))[0].reason).toBe('output differs from the recomputed one at byte 0');
    // Unpadded base64 is refused by name, per inference.
    const [bad] = await verifyInferences(forge('output', (v) => v.replace(/=+$/, '') + 'A'), p, run);
    expect(bad.reason).toMatch(/is not base64/);
    // Base64-encoded keys and values (older Tendermint) decode the same.
    const old = paid.events.map((e) => ({ type: e.type, attributes: e.attributes.map((a) => ({ key: btoa(a.key), value: btoa(a.value) })) }));
    expect((await verifyInferences(old, p, run))[0].matches).toBe(true);
    // A job's inference without its Evaluate event has no input to rerun.
    const job = await runJob(model.chain, 'cwnn1user', model.address, input);
    const [v] = await verifyInferences(job.events.filter((e) => e.type !== 'wasm-cwnn_evaluate'), p, run);
    expect(v.reason).toMatch(/no cwnn_evaluate event/);
  });
});
