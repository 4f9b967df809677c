/**
 * The local chain runs the model contract's own Wasm: on every bundled test digit, the input
 * quantized here and the contract's output are the bytes `cwnn run` gives, and the dequantized
 * values are its numbers.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { toBase64 } from '../src/encoding.js';
import { PackageError } from '../src/package.js';
import { LocalModel } from '../src/model.js';
import { quantize, toLeBytes } from '../src/quant.js';
import { ContractError, LocalChain, SimulationError } from '../src/sim.js';
import { cwnnRun, deployed, pkg, testDigits, wasm } from './fixtures.js';

let model: LocalModel;
beforeAll(async () => {
  model = await deployed();
});

describe('local simulation', () => {
  it('gives the bytes of `cwnn run` on every test digit', async () => {
    const [{ inputs, labels }, want] = await Promise.all([testDigits(), cwnnRun()]);
    expect(inputs.length).toBe(359);
    const n = want.shape[1];
    let right = 0;
    for (const [i, x] of inputs.entries()) {
      const p = await model.predict(x);
      const spec = model.pkg.instantiate.model.input;
      expect(toBase64(toLeBytes(p.input, spec.dtype)), `input ${i}`).toBe(want.inputs[i]);
      expect(toBase64(LocalModel.outputBytes(p.response)), `output ${i}`).toBe(want.outputs[i]);
      expect(p.values, `values ${i}`).toEqual(want.data.slice(i * n, (i + 1) * n));
      const b = await model.predictBytes(toLeBytes(p.input, spec.dtype));
      expect(b.response, `input_bytes ${i}`).toEqual(p.response);
      if (p.label === labels![i]) right += 1;
    }
    // `cwnn run` scores 348/359 (96.94 %) on the same digits.
    expect(right).toBe(348);
  });

  it('reports the model as the package describes it', async () => {
    const info = await model.info();
    expect(info.finalized).toBe(true);
    expect(info.model_sha256).toBe(model.pkg.manifest.model_sha256);
    expect(info.weights_sha256).toBe(model.pkg.manifest.weights_sha256);
    expect(info.layers.length).toBe(3);
    // A dApp without the package quantizes with the chain's ModelInfo: the same spec.
    expect(info.input).toEqual(model.pkg.instantiate.model.input);
  });

  it('refuses a wrong input with the contract error and keeps state on failed calls', async () => {
    await expect(model.predictQuantized([1, 2, 3])).rejects.toThrow(ContractError);
    const chain = model.chain;
    const before = chain.storage(model.address);
    await expect(chain.execute('cwnn1stranger', model.address, { finalize: {} })).rejects.toThrow(ContractError);
    await expect(chain.execute('Not An Address', model.address, { finalize: {} })).rejects.toThrow(/sender: invalid address/);
    expect(chain.storage(model.address)).toEqual(before);
  });

  it('refuses uploads out of order by name and changes nothing', async () => {
    const chain = new LocalChain();
    const code = await chain.upload(await wasm());
    const p = await pkg();
    const { contractAddress } = await chain.instantiate('cwnn1owner', code, p.instantiate, 'digits');
    const before = chain.storage(contractAddress);
    const late = { upload_weights: { layer: 1, offset: 0, data: toBase64(p.weights[1]) } };
    await expect(chain.execute('cwnn1owner', contractAddress, late)).rejects.toThrow(/layer|order|offset/i);
    expect(chain.storage(contractAddress)).toEqual(before);
  });

  it('emits wasmd-style events and returns the response data', async () => {
    const chain = model.chain;
    const { input } = await model.predict(new Array(64).fill(8));
    const res = await chain.execute('cwnn1user', model.address, { predict: { input } });
    const types = res.events.map((e) => e.type);
    expect(types).toEqual(['execute', 'wasm', 'wasm-cwnn_inference']);
    expect(res.events[2].attributes[0]).toEqual({ key: '_contract_address', value: model.address });
    const data = JSON.parse(new TextDecoder().decode(res.data!));
    expect(data.output.dtype).toBe('i8');
    expect(res.transactionHash).toMatch(/^[0-9A-F]{64}$/);
  });

  it('names an unknown contract or code', async () => {
    const chain = new LocalChain();
    await expect(chain.execute('cwnn1a', 'cwnn1nobody', {})).rejects.toThrow(SimulationError);
    await expect(chain.instantiate('cwnn1a', 7, {}, 'x')).rejects.toThrow(/no code with id 7/);
  });

  it('refuses a response with messages whole: its writes are dropped too', async () => {
    const p = await pkg();
    const fee = { denom: 'ucwnn', amount: '25' };
    const paid = await LocalModel.deploy(await wasm(), p, { instantiate: { fee } });
    const input = quantize(new Array(64).fill(4), p.instantiate.model.input); // its query is paid too
    await expect(paid.chain.execute('cwnn1user', paid.address, { predict: { input } })).rejects.toThrow(/WrongFee|fee/i);
    await paid.chain.execute('cwnn1user', paid.address, { predict: { input } }, 'auto', '', [fee]);
    const before = paid.chain.storage(paid.address);
    // Withdraw pays the proceeds out with a bank message and zeroes them: refused here.
    await expect(paid.chain.execute(paid.owner, paid.address, { withdraw: {} })).rejects.toThrow(SimulationError);
    expect(paid.chain.storage(paid.address)).toEqual(before);
    const proceeds = await paid.chain.queryContractSmart(paid.address, { proceeds: {} });
    expect(JSON.stringify(proceeds)).toContain('"25"');
  });

  it("iterates storage: a sender's ninth job prunes its oldest finished one", async () => {
    const { input } = await model.predict(new Array(64).fill(2));
    const pruned: (string | undefined)[] = [];
    for (let i = 0; i < 9; i++) {
      const res = await model.chain.execute('cwnn1busy', model.address, { evaluate: { input } });
      pruned.push(res.events.find((e) => e.type === 'wasm')!.attributes.find((a) => a.key === 'pruned_job')?.value);
    }
    const ids = (await model.chain.queryContractSmart(model.address, { jobs: { creator: 'cwnn1busy' } })).ids;
    expect(pruned.slice(0, 8)).toEqual(new Array(8).fill(undefined));
    expect(pruned[8]).toBe(String(ids[0] - 1));
    expect(ids.length).toBe(8);
  });

  it('refuses a package whose instantiate.json is not the model the manifest names', async () => {
    const p = await pkg();
    const layers = structuredClone(p.instantiate.model.layers);
    (layers[0].layer as any).dense.clamp.lo = 0; // a ReLU that was not there
    const edited = { ...p, instantiate: { ...p.instantiate, model: { ...p.instantiate.model, layers } } };
    await expect(LocalModel.deploy(await wasm(), edited)).rejects.toThrow(PackageError);
  });
});
