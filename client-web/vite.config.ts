import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

// `npm run dev` proxies the API to a Concord server on :8080; `npm run build` writes `dist/`,
// which the server serves at `/`.
export default defineConfig({
  plugins: [preact()],
  // The editor chunk (TipTap, ProseMirror, Yjs) is large but loaded only when a document opens;
  // the decision-table editor's (dmn-js) only on its page.
  build: { outDir: 'dist', sourcemap: true, target: 'es2022', chunkSizeWarningLimit: 900 },
  server: {
    proxy: { '/api': { target: process.env.CONCORD_API ?? 'http://127.0.0.1:8080', ws: true } },
  },
});
