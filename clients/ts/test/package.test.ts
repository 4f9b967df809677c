import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPackage, PackageError, uploadMessages } from '../src/package.js';
import { readPackage } from '../src/node.js';
import { pkg, pkgDir } from './fixtures.js';

describe('package', () => {
  it('gives the upload messages `cwnn import` wrote, chunk for chunk', async () => {
    const p = await pkg();
    const files = (await readdir(join(pkgDir, 'messages'))).filter((f) => f.startsWith('upload-')).sort();
    const theirs = await Promise.all(files.map(async (f) => JSON.parse(await readFile(join(pkgDir, 'messages', f), 'utf8'))));
    expect(uploadMessages(p.weights)).toEqual(theirs);
    expect(p.gas?.total_sdk_gas).toBeGreaterThan(60000);
    expect(p.gas?.deploy?.transactions.map((t) => t.what)).toEqual(['instantiate', ...files.map((_, i) => `upload ${i + 1}/${files.length}`), 'finalize', 'mint']);
  });

  it('refuses weights that do not match the manifest', async () => {
    const good = await readPackage(pkgDir);
    const tampered = loadPackage(async (path) => {
      const b = new Uint8Array(await readFile(join(pkgDir, path)).catch(() => Buffer.alloc(0)));
      if (path === good.manifest.layers[1].file) b[3] ^= 1;
      return path === 'gas.json' ? null : b;
    });
    await expect(tampered).rejects.toThrow(PackageError);
    await expect(readPackage('/nonexistent')).rejects.toThrow(/manifest.json is missing/);
  });
});
