// Where the view and end-to-end tests save their screenshots. A test run must not
// change the repository, so by default they go to the build folder
// ($CARGO_TARGET_DIR or target/ at the root, under screenshots/); the README's pictures
// in docs/screenshots/ are refreshed only on purpose, by `scripts/refresh-screenshots.sh`,
// which sets TANDEM_SCREENSHOT_DIR to that folder.

import { isAbsolute, join, resolve } from 'node:path';

/**
 * The folder for screenshots: `TANDEM_SCREENSHOT_DIR` (relative to the repository root)
 * when set, else `screenshots/` in the build folder. `sub` names a subfolder (`mock` for
 * the views on mocked data).
 */
export function screenshotDir(repo: string, env: Record<string, string | undefined>, sub = ''): string {
  const chosen = env.TANDEM_SCREENSHOT_DIR;
  if (chosen) return join(isAbsolute(chosen) ? chosen : resolve(repo, chosen), sub);
  const target = env.CARGO_TARGET_DIR ? resolve(repo, env.CARGO_TARGET_DIR) : join(repo, 'target');
  return join(target, 'screenshots', sub);
}
