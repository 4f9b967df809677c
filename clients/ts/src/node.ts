/** Node-only helpers (file system); the rest of the library also runs in browsers. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCsv } from './csv.js';
import { loadPackage, type Package } from './package.js';

/** Loads a package folder written by `cwnn import` (and `gas.json` when present). */
export function readPackage(dir: string): Promise<Package> {
  return loadPackage(async (p) => {
    try {
      return new Uint8Array(await readFile(join(dir, p)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  });
}

/**
 * Rows of a samples CSV as `cwnn run` reads it: a header row (any non-numeric first row) is
 * skipped, and its `label` column, if any, gives the labels.
 */
export async function readCsv(path: string) {
  const bytes = await readFile(path);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`${path}: not UTF-8 text`);
  }
  return parseCsv(text);
}
