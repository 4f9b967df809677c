import { defineConfig } from 'vite';

// The page is served from example/; the package and the contract Wasm come from fixtures/
// (`npm run fixtures`), copied beside it.
export default defineConfig({
  root: import.meta.dirname,
  base: './',
  publicDir: '../fixtures',
  build: { outDir: '../dist', emptyOutDir: true, target: 'es2022' },
});
