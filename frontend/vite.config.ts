/// <reference types="vitest/config" />
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import { fileURLToPath, URL } from 'node:url'

// The backend (`ferry serve`) listens on 127.0.0.1:8080; the dev server
// proxies the API there so cookies stay same-origin.
const backend = process.env.FERRY_BACKEND ?? 'http://127.0.0.1:8080'

export default defineConfig({
  plugins: [vue()],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  server: {
    host: '127.0.0.1',
    proxy: {
      '/graphql': { target: backend, ws: true, changeOrigin: false },
      '/auth': { target: backend, changeOrigin: false },
      '/api': { target: backend, changeOrigin: false },
    },
    // The domain-text catalogs live in ../i18n (shared with the Go reports).
    fs: { allow: ['..'] },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: false, // dist/.keep is committed and must survive builds
    chunkSizeWarningLimit: 1200,
    rollupOptions: {
      output: {
        // Heavy libraries get their own chunks; screens are lazy routes.
        manualChunks(id) {
          if (!id.includes('node_modules')) return undefined
          if (id.includes('echarts') || id.includes('zrender')) return 'echarts'
          if (id.includes('cytoscape')) return 'cytoscape'
          if (id.includes('element-plus') || id.includes('@element-plus')) return 'element-plus'
          if (id.includes('graphql') || id.includes('urql') || id.includes('wonka')) return 'graphql'
          return 'vendor'
        },
      },
    },
  },
  test: {
    environment: 'happy-dom',
    include: ['src/**/*.spec.ts'],
  },
})
