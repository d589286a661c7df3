import { defineConfig } from 'vitest/config';

// Every view in headless Chromium (Debian's chromium, driven by playwright-core) on the
// mocked backend; saves 1280×800 screenshots under the build folder (target/screenshots/mock/;
// scripts/refresh-screenshots.sh writes docs/screenshots/mock/ instead).
export default defineConfig({
  test: {
    include: ['tests/views/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    pool: 'forks',
  },
});
