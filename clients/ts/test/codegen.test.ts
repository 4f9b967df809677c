import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('generated clients', () => {
  it('match the committed schemas (`npm run codegen` refreshes them)', () => {
    // As a plain Node process: the script is what `npm run codegen` runs.
    const r = spawnSync(process.execPath, [join(import.meta.dirname, '..', 'scripts', 'codegen.mjs'), '--check'], {
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 60_000);
});
