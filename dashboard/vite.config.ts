// Builds the console into dist/, which the runtime embeds and serves at / (runtime/src/api/
// dashboard.rs). `npm run dev` serves it with hot reload and forwards the API to a runtime on
// 127.0.0.1:8080.
import { defineConfig } from "vitest/config";

const runtime = "http://127.0.0.1:8080";

export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    target: "es2022",
    // Hashed names under assets/: the runtime caches those for a year.
    assetsDir: "assets",
    sourcemap: false,
    // One small bundle; the whole console is far below the size where splitting pays.
    modulePreload: { polyfill: false },
  },
  server: {
    proxy: {
      "/api": runtime,
      "/health": runtime,
      "/webhooks": runtime,
      "/ws": { target: runtime.replace("http", "ws"), ws: true },
    },
  },
  test: {
    environment: "node",
  },
});
