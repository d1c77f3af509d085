// The service worker build: src/sw.ts into dist/sw.js as one classic script (IIFE, no imports),
// with the app shell list and cache version of the page build (vite.config.ts, run first) inlined;
// the shell includes public/ (the manifest and icons), which the page build copied into outDir.
import { defineConfig, type UserConfig } from 'vite';
import { appShell } from './build/app-shell';

export default defineConfig((): UserConfig => {
  const outDir = process.env.HEARTH_DIST ?? 'dist';
  const shell = appShell(outDir, 'public');
  return {
    publicDir: false,
    define: {
      __HEARTH_SHELL__: JSON.stringify(shell.files),
      __HEARTH_CACHE__: JSON.stringify(`hearth-shell-${shell.version}`),
    },
    build: {
      outDir,
      emptyOutDir: false,
      copyPublicDir: false,
      target: 'es2022',
      minify: true,
      lib: {
        entry: 'src/sw.ts',
        formats: ['iife'],
        name: 'hearthServiceWorker',
        fileName: () => 'sw.js',
      },
    },
  };
});
