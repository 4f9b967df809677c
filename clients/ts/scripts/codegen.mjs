// Regenerates src/contracts/ from the contracts' committed JSON schemas with @cosmwasm/ts-codegen.
// `node scripts/codegen.mjs --check` generates into a temporary folder instead and fails when
// the committed files differ (the staleness test runs it).
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// ts-codegen writes its own version in each header, or "latest" under NODE_ENV=test (vitest).
delete process.env.NODE_ENV;
const tsCodegen = (await import('@cosmwasm/ts-codegen')).default;
const codegen = tsCodegen.default ?? tsCodegen;

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const committed = join(here, '..', 'src', 'contracts');
export const contracts = [
  { name: 'CwnnModel', dir: join(root, 'model-contract', 'schema') },
  { name: 'CwnnCollection', dir: join(root, 'collection', 'schema') },
];

/** Writes the typed clients into `outPath`. */
export async function generate(outPath) {
  const log = console.log;
  console.log = () => {}; // ts-codegen prints a banner per file
  try {
    await codegen({
      contracts,
      outPath,
      options: {
        bundle: { enabled: false },
        types: { enabled: true },
        // The model has both a Predict query and a Predict execute: separate classes.
        client: { enabled: true, execExtendsQuery: false },
        messageComposer: { enabled: false },
        reactQuery: { enabled: false },
        recoil: { enabled: false },
      },
    });
  } finally {
    console.log = log;
  }
  for (const { name } of contracts) fixNames(outPath, name);
}

/**
 * ts-codegen 1.12 names cw721's generic responses `…ForNullable_NftExtension` in the types file
 * but `…ForNullableNftExtension` in the client: point the client at the names that exist.
 */
function fixNames(outPath, name) {
  const types = readFileSync(join(outPath, `${name}.types.ts`), 'utf8');
  const exported = new Set([...types.matchAll(/export (?:interface|type) (\w+)/g)].map((m) => m[1]));
  const byPlain = new Map([...exported].map((n) => [n.replaceAll('_', ''), n]));
  const file = join(outPath, `${name}.client.ts`);
  const client = readFileSync(file, 'utf8').replace(/\b\w+\b/g, (w) =>
    exported.has(w) || !byPlain.has(w) ? w : byPlain.get(w),
  );
  writeFileSync(file, client);
}

/** Names of the files that differ between the committed clients and fresh ones. */
export async function stale() {
  const fresh = mkdtempSync(join(tmpdir(), 'cwnn-codegen-'));
  try {
    await generate(fresh);
    const names = new Set([...readdirSync(fresh), ...readdirSync(committed)]);
    const read = (dir, f) => {
      try {
        return readFileSync(join(dir, f), 'utf8');
      } catch {
        return null;
      }
    };
    return [...names].filter((f) => read(fresh, f) !== read(committed, f)).sort();
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--check')) {
    const files = await stale();
    if (files.length) {
      console.error(`src/contracts is stale (${files.join(', ')}): run npm run codegen`);
      process.exit(1);
    }
    console.log('src/contracts matches the schemas');
  } else {
    await generate(committed);
    console.log(`wrote ${committed}`);
  }
}
