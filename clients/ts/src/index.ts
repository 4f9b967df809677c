/**
 * @cwnn/client — call cwnn models from TypeScript.
 *
 * - typed clients generated from the contracts' schemas (`CwnnModelClient`, `CwnnCollectionClient`);
 * - exact input quantization and output dequantization (`quantize`, `dequantizeResponse`);
 * - `Evaluate` / `Continue` jobs and relaying (`runJob`, `relayJob`);
 * - inference events decoded and checked (`inferences`, `verifyInferences`);
 * - a local chain that runs the contract's own Wasm (`LocalChain`, `LocalModel`).
 *
 * Node-only file helpers are in `./node.js`.
 */
export * from './contracts/CwnnModel.client.js';
export * as ModelTypes from './contracts/CwnnModel.types.js';
export * from './contracts/CwnnCollection.client.js';
export * as CollectionTypes from './contracts/CwnnCollection.types.js';
export * from './quant.js';
export * from './encoding.js';
export * from './package.js';
export * from './sim.js';
export * from './model.js';
export * from './jobs.js';
export * from './events.js';
export * from './csv.js';
export { inputFromDrawing } from './drawing.js';
