// The page build: index.html and its modules into dist/, with a manifest that the service
// worker build (vite.sw.config.ts, run after this one) reads for the app shell.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  // Preact's automatic JSX runtime; no plugin needed for a production build.
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  resolve: {
    // Libraries written for React (none yet) would resolve to Preact's compatibility layer.
    alias: { react: 'preact/compat', 'react-dom': 'preact/compat' },
  },
  build: {
    // HEARTH_DIST builds elsewhere (parallel work that must not swap web/dist under a test).
    outDir: process.env.HEARTH_DIST ?? 'dist',
    emptyOutDir: true,
    manifest: true,
    target: 'es2022',
    // Never inline the wasm as a data: URL; it is fetched (and cached) as a file.
    assetsInlineLimit: (file) => (file.endsWith('.wasm') ? false : undefined),
    // matrix-js-sdk alone is ~840 kB minified (~235 kB gzipped); splitting it buys nothing here.
    chunkSizeWarningLimit: 1500,
  },
});
