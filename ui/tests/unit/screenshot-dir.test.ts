import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { screenshotDir } from '../screenshot-dir';
import { SCREENSHOTS as VIEW_SCREENSHOTS } from '../views/harness';

const repo = '/repo';

describe('screenshot folder', () => {
  test('a test run writes into the build folder, never into docs/', () => {
    expect(screenshotDir(repo, {})).toBe('/repo/target/screenshots');
    expect(screenshotDir(repo, {}, 'mock')).toBe('/repo/target/screenshots/mock');
    expect(screenshotDir(repo, { CARGO_TARGET_DIR: '/cache/target' }, 'mock')).toBe('/cache/target/screenshots/mock');
  });

  test('refreshing the README pictures is an explicit choice', () => {
    expect(screenshotDir(repo, { TANDEM_SCREENSHOT_DIR: 'docs/screenshots' }, 'mock')).toBe('/repo/docs/screenshots/mock');
    expect(screenshotDir(repo, { TANDEM_SCREENSHOT_DIR: '/tmp/shots' })).toBe('/tmp/shots');
  });

  test('the view tests use it (unless told otherwise, not docs/)', () => {
    if (process.env.TANDEM_SCREENSHOT_DIR) return;
    expect(VIEW_SCREENSHOTS).not.toContain(join('docs', 'screenshots'));
  });
});
