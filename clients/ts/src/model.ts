/**
 * A model deployed from its package into a {@link LocalChain}: instantiate, upload every chunk,
 * finalize, then `Predict` as a query — the contract's own code, so the answer is the chain's.
 *
 * The local copy is instantiated without the package's fee and with a query budget no model
 * reaches, so it answers every input the chain would answer, as a query or as a job (a model's
 * output does not depend on how its work is split into calls; the contract's tests check that
 * `Evaluate`/`Continue` equals `Predict`). Neither is part of the model's sha256, which
 * `deploy` checks against the manifest's.
 */
import type { InstantiateMsg, ModelInfoResponse, PredictResponse } from './contracts/CwnnModel.types.js';
import { argmax, dequantizeResponse, fromLeBytes, quantize, toLeBytes } from './quant.js';
import { toBase64 } from './encoding.js';
import { PackageError, uploadMessages, type Package } from './package.js';
import { LocalChain } from './sim.js';

export interface Prediction {
  /** The quantized input, as sent in a `Predict` / `Evaluate` message. */
  input: number[];
  /** The contract's answer. */
  response: PredictResponse;
  /** The answer dequantized. */
  values: number[];
  /** Index of the largest output (first on ties). */
  label: number;
}

export interface DeployOptions {
  chain?: LocalChain;
  owner?: string;
  instantiate?: Partial<InstantiateMsg>;
}

/** A work budget no model reaches (for the local copy's queries: the page has no gas limit). */
const UNBOUNDED = { max_work: 2 ** 50, max_weight_bytes: 2 ** 50, max_segments: 2 ** 32 - 1 };

export class LocalModel {
  private constructor(
    readonly chain: LocalChain,
    readonly address: string,
    readonly pkg: Package,
    readonly owner: string,
  ) {}

  /**
   * Deploys `pkg` on `wasm` (the model contract's code) in a new local chain, or in `chain`;
   * `instantiate` overrides fields of the local copy's `InstantiateMsg` (after the defaults
   * above; e.g. the package's own `fee` to try paying).
   */
  static async deploy(
    wasm: BufferSource | WebAssembly.Module,
    pkg: Package,
    { chain = new LocalChain(), owner = 'cwnn1owner', instantiate = {} }: DeployOptions = {},
  ): Promise<LocalModel> {
    const codeId = await chain.upload(wasm);
    const msg: InstantiateMsg = { ...pkg.instantiate, fee: null, query_budget: UNBOUNDED, ...instantiate };
    const { contractAddress } = await chain.instantiate(owner, codeId, msg, pkg.manifest.name);
    for (const up of uploadMessages(pkg.weights)) await chain.execute(owner, contractAddress, up);
    await chain.execute(owner, contractAddress, { finalize: {} });
    const model = new LocalModel(chain, contractAddress, pkg, owner);
    const sha = (await model.info()).model_sha256;
    if (sha !== pkg.manifest.model_sha256) {
      throw new PackageError(`the contract computes model sha256 ${sha} from instantiate.json; the manifest says ${pkg.manifest.model_sha256}`);
    }
    return model;
  }

  info(): Promise<ModelInfoResponse> {
    return this.chain.queryContractSmart(this.address, { model_info: {} });
  }

  /** Quantizes real `xs` exactly as `cwnn run` does, then asks the contract. */
  predict(xs: ArrayLike<number>): Promise<Prediction> {
    return this.predictQuantized(quantize(xs, this.pkg.instantiate.model.input));
  }

  async predictQuantized(input: number[]): Promise<Prediction> {
    return this.answer(input, { input });
  }

  /** The input as `input_bytes` (little-endian bytes at its width): what the chain parses cheapest. */
  async predictBytes(bytes: Uint8Array): Promise<Prediction> {
    const input = fromLeBytes(bytes, this.pkg.instantiate.model.input.dtype);
    return this.answer(input, { input_bytes: toBase64(bytes) });
  }

  private async answer(input: number[], msg: { input: number[] } | { input_bytes: string }): Promise<Prediction> {
    const response: PredictResponse = await this.chain.queryContractSmart(this.address, { predict: msg });
    const values = dequantizeResponse(response);
    return { input, response, values, label: argmax(values) };
  }

  /** Input bytes → output bytes, as the events carry them: what `verifyInferences` reruns. */
  async rerun(input: Uint8Array): Promise<Uint8Array> {
    return LocalModel.outputBytes((await this.predictBytes(input)).response);
  }

  /** The output's little-endian bytes, as the inference events carry them. */
  static outputBytes(r: PredictResponse): Uint8Array {
    return toLeBytes(r.data, r.output.dtype);
  }
}
