// Makes what the tests and the example page read, from this checkout's Rust build, into
// fixtures/ (not committed): the model contract's Wasm, the bundled digits model imported by
// `cwnn import` (with `gas.json` from `cwnn gas --json`), `cwnn run --json` on its 359 test
// digits, and the test digits. Builds `cwnn` and the Wasm only when they are missing (README's
// `bash scripts/test.sh` makes both; after changing the contract run `scripts/build-wasm.sh`).
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const out = join(here, '..', 'fixtures');
const env = process.env.CARGO_TARGET_DIR;
const target = env ? (isAbsolute(env) ? env : join(root, env)) : join(root, 'target');
const cwnn = join(target, 'debug', 'cwnn');
const wasm = join(target, 'wasm32-unknown-unknown', 'release', 'cwnn_model_contract.wasm');
const model = join(root, 'models', 'digits-mlp');

const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], ...opts });

if (!existsSync(cwnn)) {
  console.log('building cwnn (cargo build -p cwnn-importer --bin cwnn) ...');
  run('cargo', ['build', '-q', '-p', 'cwnn-importer', '--bin', 'cwnn'], { stdio: 'inherit' });
}
if (!existsSync(wasm)) {
  console.log('building the contract Wasm (scripts/build-wasm.sh --no-check) ...');
  run('bash', ['scripts/build-wasm.sh', '--no-check'], { stdio: 'inherit' });
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const pkg = join(out, 'digits-mlp');
const test = join(model, 'test.csv');
run(cwnn, ['import', join(model, 'model.onnx'), '--out', pkg, '--calibration', join(model, 'calibration.csv'), '--eval', test], {
  stdio: ['ignore', 'ignore', 'ignore'],
});
writeFileSync(join(pkg, 'gas.json'), run(cwnn, ['gas', pkg, '--json']));
writeFileSync(join(out, 'run.json'), run(cwnn, ['run', pkg, '--input', test, '--json'], { stdio: ['ignore', 'pipe', 'ignore'] }));
copyFileSync(wasm, join(out, 'cwnn_model_contract.wasm'));
copyFileSync(test, join(out, 'test.csv'));
console.log(`fixtures ready in ${out}`);
