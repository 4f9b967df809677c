/** What `npm run fixtures` (pretest) made from this checkout's Rust build. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readCsv, readPackage } from '../src/node.js';
import { LocalModel } from '../src/model.js';

export const dir = join(import.meta.dirname, '..', 'fixtures');
export const pkgDir = join(dir, 'digits-mlp');

export const wasm = async () => new Uint8Array(await readFile(join(dir, 'cwnn_model_contract.wasm')));
export const pkg = () => readPackage(pkgDir);
export const testDigits = () => readCsv(join(dir, 'test.csv'));

/** `cwnn run --json` on the test digits: per sample the quantized input and output (base64). */
export async function cwnnRun(): Promise<{ inputs: string[]; outputs: string[]; data: number[]; shape: number[] }> {
  const v = JSON.parse(await readFile(join(dir, 'run.json'), 'utf8'));
  const o = v.outputs[0];
  return { inputs: v.inputs[0].quantized, outputs: o.quantized, data: o.data, shape: o.shape };
}

export async function deployed(): Promise<LocalModel> {
  return LocalModel.deploy(await wasm(), await pkg());
}

/** The `cwnn` binary the fixtures were made with. */
export function cwnnBinary(): string {
  const root = join(import.meta.dirname, '..', '..', '..');
  const t = process.env.CARGO_TARGET_DIR;
  return join(t ? (t.startsWith('/') ? t : join(root, t)) : join(root, 'target'), 'debug', 'cwnn');
}
