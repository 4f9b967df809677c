/**
 * A model deployed from its package into a {@link LocalChain}: instantiate, upload every chunk,
 * finalize, then `Predict` as a query — the contract's own code, so the answer is the chain's.
 */
import type { ModelInfoResponse, PredictResponse } from './contracts/CwnnModel.types.js';
import { argmax, dequantizeResponse, fromLeBytes, quantize, toLeBytes } from './quant.js';
import { uploadMessages, type Package } from './package.js';
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

export class LocalModel {
  private constructor(
    readonly chain: LocalChain,
    readonly address: string,
    readonly pkg: Package,
    readonly owner: string,
  ) {}

  /** Deploys `pkg` on `wasm` (the model contract's code) in a new local chain, or in `chain`. */
  static async deploy(
    wasm: BufferSource | WebAssembly.Module,
    pkg: Package,
    { chain = new LocalChain(), owner = 'cwnn1owner' }: { chain?: LocalChain; owner?: string } = {},
  ): Promise<LocalModel> {
    const codeId = await chain.upload(wasm);
    const { contractAddress } = await chain.instantiate(owner, codeId, pkg.instantiate, pkg.manifest.name);
    for (const msg of uploadMessages(pkg.weights)) await chain.execute(owner, contractAddress, msg);
    await chain.execute(owner, contractAddress, { finalize: {} });
    return new LocalModel(chain, contractAddress, pkg, owner);
  }

  info(): Promise<ModelInfoResponse> {
    return this.chain.queryContractSmart(this.address, { model_info: {} });
  }

  /** Quantizes real `xs` exactly as `cwnn run` does, then asks the contract. */
  predict(xs: ArrayLike<number>): Promise<Prediction> {
    return this.predictQuantized(quantize(xs, this.pkg.instantiate.model.input));
  }

  async predictQuantized(input: number[]): Promise<Prediction> {
    const response: PredictResponse = await this.chain.queryContractSmart(this.address, { predict: { input } });
    const values = dequantizeResponse(response);
    return { input, response, values, label: argmax(values) };
  }

  /** Input bytes → output bytes, as the events carry them: what `verifyInferences` reruns. */
  async rerun(input: Uint8Array): Promise<Uint8Array> {
    const p = await this.predictQuantized(fromLeBytes(input, this.pkg.instantiate.model.input.dtype));
    return LocalModel.outputBytes(p.response);
  }

  /** The output's little-endian bytes, as the inference events carry them. */
  static outputBytes(r: PredictResponse): Uint8Array {
    return toLeBytes(r.data, r.output.dtype);
  }
}
