// The example page: draw a digit, see the model contract's answer from its own Wasm run in the
// page (src/sim.ts), the ExecuteMsg a paid Predict would send, and each layer's gas as measured
// in cosmwasm-vm by `cwnn gas` (the package's gas.json).
import { parseCsv } from '../src/csv.js';
import { inputFromDrawing } from '../src/drawing.js';
import { toBase64 } from '../src/encoding.js';
import { LocalModel } from '../src/model.js';
import { fetchPackage, type GasReport, type Package } from '../src/package.js';
import { toLeBytes } from '../src/quant.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const pad = $<HTMLCanvasElement>('pad');
const ctx = pad.getContext('2d', { willReadFrequently: true })!;

function clear() {
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, pad.width, pad.height);
}

function drawing() {
  let last: [number, number] | null = null;
  const at = (e: PointerEvent): [number, number] => {
    const r = pad.getBoundingClientRect();
    return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
  };
  pad.addEventListener('pointerdown', (e) => {
    last = at(e);
    pad.setPointerCapture(e.pointerId);
  });
  pad.addEventListener('pointermove', (e) => {
    if (!last) return;
    const p = at(e);
    ctx.strokeStyle = '#000';
    ctx.lineWidth = 18;
    ctx.lineCap = 'round';
    ctx.beginPath();
    ctx.moveTo(...last);
    ctx.lineTo(...p);
    ctx.stroke();
    last = p;
  });
  const end = () => {
    if (!last) return;
    last = null;
    void predict();
  };
  pad.addEventListener('pointerup', end);
  pad.addEventListener('pointercancel', end);
}

let model: LocalModel;

async function predict() {
  const x = inputFromDrawing(ctx.getImageData(0, 0, pad.width, pad.height).data, pad.width, pad.height);
  showInput(x);
  const p = await model.predict(x);
  $('label').textContent = String(p.label);
  $('probs').innerHTML = p.values
    .map((v) => `<li>${v.toFixed(3)}<span style="width:${Math.round(v * 90)}px"></span></li>`)
    .join('');
  const fee = model.pkg.instantiate.fee;
  // The input as `input_bytes`: the form the contract parses for the least gas.
  const msg = { predict: { input_bytes: toBase64(toLeBytes(p.input, model.pkg.instantiate.model.input.dtype)) } };
  $('execute').textContent = JSON.stringify(msg) + (fee ? `\nfunds: ${fee.amount}${fee.denom}` : '');
  document.body.dataset.predictions = String(Number(document.body.dataset.predictions ?? 0) + 1);
}

function showInput(x: number[]) {
  const c = $<HTMLCanvasElement>('preview').getContext('2d')!;
  x.forEach((v, i) => {
    const g = 255 - Math.round((v / 16) * 255);
    c.fillStyle = `rgb(${g},${g},${g})`;
    c.fillRect((i % 8) * 8, Math.floor(i / 8) * 8, 8, 8);
  });
}

function showGas(pkg: Package, gas: GasReport | undefined) {
  if (!gas) {
    $('gas-note').textContent = 'no gas.json in the package (`cwnn gas PKG --json > PKG/gas.json`)';
    return;
  }
  $('gas-note').textContent =
    `SDK gas of one Predict, measured in cosmwasm-vm with wasmd's schedule: ${gas.total_sdk_gas.toLocaleString('en')} in all.`;
  const rows: [string, number][] = [
    ['instance (per call)', gas.instance_sdk_gas],
    ...gas.layers.map((l): [string, number] => [`${l.index}: ${l.kind} (${pkg.manifest.layers[l.index]?.node ?? ''})`, l.sdk_gas]),
    ['message and response', gas.overhead_sdk_gas],
  ];
  if (gas.deploy) {
    const txs = gas.deploy.transactions.map((t) => t.what.replace(/ \d+\/\d+$/, '')).filter((w, i, a) => a.indexOf(w) === i);
    $('gas-note').textContent +=
      ` Deploying it: ${gas.deploy.total_sdk_gas.toLocaleString('en')} SDK gas in ${gas.deploy.transactions.length} transactions (${txs.join(', ')}).`;
  }
  const max = Math.max(...rows.map((r) => r[1]));
  $('gas').innerHTML = rows
    .map(([name, g]) => `<div class="bar"><span>${name}</span><div style="width:${(100 * g) / max}%"></div><span class="num">${g.toLocaleString('en')}</span></div>`)
    .join('');
}

async function main() {
  clear();
  drawing();
  $('clear').addEventListener('click', () => {
    clear();
    $('label').textContent = '–';
  });
  const [pkg, wasm] = await Promise.all([
    fetchPackage(new URL('./digits-mlp/', location.href)),
    fetch(new URL('./cwnn_model_contract.wasm', location.href)).then((r) => r.arrayBuffer()),
  ]);
  model = await LocalModel.deploy(wasm, pkg);
  const info = await model.info();
  $('address').textContent = model.address;
  $('status').textContent =
    `${pkg.manifest.name}: ${info.layers.length} layers, ${pkg.manifest.precision}, model sha256 ${info.model_sha256.slice(0, 16)}… — deployed on a local chain in this page.`;
  showGas(pkg, pkg.gas);
  // For the browser console (and the browser test): the deployed model and two helpers.
  Object.assign(window, { cwnn: { model, parseCsv, toBase64, outputBytes: LocalModel.outputBytes } });
  document.body.dataset.ready = 'true';
}

main().catch((e) => {
  $('status').textContent = `failed: ${e}`;
  console.error(e);
});
