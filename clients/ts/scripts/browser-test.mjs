// The example page in headless Chromium (Debian's /usr/bin/chromium, or $CHROMIUM): serves
// dist/ (`npm run build:example`), waits for the model to deploy in the page, draws digits
// with the mouse, checks each predicted label, that the page's simulation gives `cwnn run`'s
// output bytes on all 359 test digits, and that the console shows no error, and saves
// a screenshot to test-results/example.png (`--update-screenshot` also copies it to
// example/screenshot.png, which the README shows).
import { createServer } from 'node:http';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', 'dist');
const results = join(here, '..', 'test-results');
const browser = process.env.CHROMIUM ?? '/usr/bin/chromium';
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.wasm': 'application/wasm' };

if (!existsSync(join(dist, 'index.html'))) throw new Error('no dist/: run npm run build:example');
if (!existsSync(browser)) throw new Error(`no browser at ${browser} (apt-get install chromium, or set CHROMIUM)`);

const server = createServer((req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
  const file = join(dist, path.endsWith('/') ? `${path}index.html` : path);
  if (!file.startsWith(dist) || !existsSync(file)) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const url = `http://127.0.0.1:${server.address().port}/`;

// Strokes on the 224×224 pad, as [x, y] polylines.
const ellipse = (cx, cy, rx, ry) => Array.from({ length: 41 }, (_, i) => [cx + rx * Math.sin((i / 40) * 2 * Math.PI), cy - ry * Math.cos((i / 40) * 2 * Math.PI)]);
const DIGITS = [
  { label: 0, strokes: [ellipse(112, 112, 55, 85)] },
  { label: 7, strokes: [[[50, 35], [175, 35], [150, 90], [120, 150], [100, 200]]] },
];

const failures = [];
const b = await chromium.launch({
  executablePath: browser,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await b.newPage({ viewport: { width: 1000, height: 760 } });
  page.on('console', (m) => m.type() === 'error' && failures.push(`console error: ${m.text()}`));
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
  const box = await page.locator('#pad').boundingBox();
  let strokes = 0; // each stroke's end asks for a prediction
  for (const digit of DIGITS) {
    await page.click('#clear');
    for (const stroke of digit.strokes) {
      await page.mouse.move(box.x + stroke[0][0], box.y + stroke[0][1]);
      await page.mouse.down();
      for (const [x, y] of stroke.slice(1)) await page.mouse.move(box.x + x, box.y + y, { steps: 4 });
      await page.mouse.up();
      strokes += 1;
    }
    await page.waitForSelector(`body[data-predictions="${strokes}"]`, { timeout: 10_000 });
    const label = await page.textContent('#label');
    const msg = JSON.parse(await page.textContent('#execute'));
    const bytes = Buffer.from(msg.predict.input_bytes, 'base64').length;
    console.log(`drew a ${digit.label}: the page predicts ${label}; the ExecuteMsg carries ${bytes} input bytes`);
    if (label !== String(digit.label)) failures.push(`drew a ${digit.label}, the page predicted ${label}`);
    if (bytes !== 64) failures.push('the ExecuteMsg does not carry a 64-byte input');
  }
  // The page's simulation gives `cwnn run`'s output bytes on every bundled test digit.
  const exact = await page.evaluate(async () => {
    const { model, parseCsv, toBase64, outputBytes } = window.cwnn;
    const digits = parseCsv(await (await fetch('./test.csv')).text()).inputs;
    const want = (await (await fetch('./run.json')).json()).outputs[0].quantized;
    let same = 0;
    for (const [i, x] of digits.entries()) {
      if (toBase64(outputBytes((await model.predict(x)).response)) === want[i]) same += 1;
    }
    return { same, of: digits.length, want: want.length };
  });
  console.log(`in the browser: ${exact.same}/${exact.of} test digits give cwnn run's output bytes`);
  if (exact.same !== exact.of || exact.of !== 359 || exact.want !== 359) failures.push(`only ${exact.same}/${exact.of} outputs match cwnn run`);
  const bars = await page.locator('#gas .bar').count();
  if (bars !== 5) failures.push(`expected 5 gas bars (instance, 3 layers, overhead), found ${bars}`);
  mkdirSync(results, { recursive: true });
  await page.screenshot({ path: join(results, 'example.png'), fullPage: true });
  if (process.argv.includes('--update-screenshot')) copyFileSync(join(results, 'example.png'), join(here, '..', 'example', 'screenshot.png'));
} finally {
  await b.close();
  server.close();
}
if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}
console.log(`browser test passed; screenshot in ${join(results, 'example.png')}`);
