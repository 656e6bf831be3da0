import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The built files are embedded into the admin-web binary (see ../build.rs),
// which serves them with the API under one origin. `npm run dev` proxies the
// API to an admin-web on :9090.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 700,
  },
  server: {
    proxy: { '/api': { target: 'http://127.0.0.1:9090', changeOrigin: false } },
  },
});
