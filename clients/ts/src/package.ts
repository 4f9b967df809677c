/**
 * A package as `cwnn import` writes it (importer/README.md, "The package"): the manifest, the
 * contract's `InstantiateMsg` and each layer's weight bytes, plus the optional gas report that
 * `cwnn gas --json` prints.
 */
import type { ExecuteMsg, InstantiateMsg, TensorSpec } from './contracts/CwnnModel.types.js';
import { sha256Hex, toBase64 } from './encoding.js';

/** `manifest.json`. */
export interface Manifest {
  name: string;
  source: string;
  source_sha256: string;
  precision: 'int8' | 'int16';
  weights_sha256: string;
  model_sha256: string;
  params: number;
  macs: number;
  input: { name: string; spec: TensorSpec; batch_axis: number | null };
  output: { name: string; spec: TensorSpec; batch_axis: number | null };
  layers: { index: number; kind: string; node: string; file: string; bytes: number; sha256: string }[];
}

/** `cwnn gas --json`: per-layer gas of one `Predict`, measured in cosmwasm-vm. */
export interface GasReport {
  layers: {
    index: number;
    kind: string;
    macs: number;
    weight_bytes: number;
    vm_gas: number;
    sdk_gas: number;
  }[];
  instance_sdk_gas: number;
  overhead_sdk_gas: number;
  total_sdk_gas: number;
  /** What deploying costs, transaction by transaction (instantiate, uploads, finalize, mint). */
  deploy?: {
    transactions: { what: string; msg_bytes: number; call_sdk_gas: number; tx_bytes_sdk_gas: number; sdk_gas: number }[];
    total_sdk_gas: number;
  };
}

export interface Package {
  manifest: Manifest;
  instantiate: InstantiateMsg;
  weights: Uint8Array[];
  gas?: GasReport;
}

/** Weights travel in values of at most this many bytes (the contract's `CHUNK_BYTES`). */
export const CHUNK_BYTES = 128 * 1024;

/** A package whose weights or hashes do not match its manifest. */
export class PackageError extends Error {
  name = 'PackageError';
}

/**
 * Loads a package through `read` (a path relative to the package folder → its bytes, or null
 * when absent), checking every weight file's size and sha256 and the weights' sha256 against
 * the manifest and the `InstantiateMsg`.
 */
export async function loadPackage(read: (path: string) => Promise<Uint8Array | null>): Promise<Package> {
  const text = async (p: string) => {
    const b = await read(p);
    if (!b) throw new PackageError(`${p} is missing`);
    return JSON.parse(new TextDecoder().decode(b));
  };
  const manifest: Manifest = await text('manifest.json');
  const instantiate: InstantiateMsg = await text('instantiate.json');
  const weights: Uint8Array[] = [];
  for (const l of manifest.layers) {
    const w = await read(l.file);
    if (!w) throw new PackageError(`${l.file} is missing`);
    if (w.length !== l.bytes || (await sha256Hex(w)) !== l.sha256) {
      throw new PackageError(`${l.file} does not match the manifest (size or sha256)`);
    }
    weights.push(w);
  }
  const all = await sha256Hex(...weights);
  if (all !== manifest.weights_sha256 || all !== instantiate.weights_sha256) {
    throw new PackageError(`the weights' sha256 ${all} is not the manifest's or the InstantiateMsg's`);
  }
  const gas = await read('gas.json');
  return { manifest, instantiate, weights, gas: gas ? JSON.parse(new TextDecoder().decode(gas)) : undefined };
}

/** Loads a package served over HTTP(S) under `base` (a folder URL). */
export function fetchPackage(base: string | URL): Promise<Package> {
  const root = new URL(String(base).endsWith('/') ? String(base) : `${base}/`, globalThis.location?.href);
  return loadPackage(async (p) => {
    const r = await fetch(new URL(p, root));
    if (r.status === 404) return null;
    if (!r.ok) throw new PackageError(`${p}: HTTP ${r.status}`);
    return new Uint8Array(await r.arrayBuffer());
  });
}

/** The `UploadWeights` messages in the order the contract accepts them (as `messages/`). */
export function uploadMessages(weights: Uint8Array[]): ExecuteMsg[] {
  const msgs: ExecuteMsg[] = [];
  weights.forEach((w, layer) => {
    for (let offset = 0; offset < w.length; offset += CHUNK_BYTES) {
      msgs.push({ upload_weights: { layer, offset, data: toBase64(w.subarray(offset, offset + CHUNK_BYTES)) } });
    }
  });
  return msgs;
}
