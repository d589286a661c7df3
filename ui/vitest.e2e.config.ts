import { defineConfig } from 'vitest/config';

// The built desktop app under Xvfb, driven through tauri-driver and WebKitWebDriver,
// downloading from a local mock hub. See tests/e2e/app.e2e.test.ts for what it needs.
export default defineConfig({
  test: {
    include: ['tests/e2e/**/*.e2e.test.ts'],
    environment: 'node',
    testTimeout: 1_800_000,
    hookTimeout: 180_000,
    fileParallelism: false,
    pool: 'forks',
    // Each step builds on the one before: stop at the first failure.
    bail: 1,
  },
});
