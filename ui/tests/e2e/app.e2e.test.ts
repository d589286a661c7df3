// End to end: the built desktop app under Xvfb, driven through tauri-driver and
// WebKitWebDriver, pointed at a local mock hub on 127.0.0.1 that serves tiny fixture
// models. It downloads the pair, races the modes, checks coloured tokens and charts,
// exports a JSONL log and reads it back, and screenshots every view.
//
// Needs (paths through the environment, defaults in brackets):
//   TANDEM_APP    the app built with `--features custom-protocol` [$CARGO_TARGET_DIR/debug/tandem-app]
//   MOCK_HUB      `cargo build -p tandem-hub --features mock --bin mock-hub` [$CARGO_TARGET_DIR/debug/mock-hub]
//   TAURI_DRIVER  `cargo install tauri-driver` [~/.cargo/bin/tauri-driver]
//   WEBKIT_DRIVER Debian's webkit2gtk-driver [/usr/bin/WebKitWebDriver]
//   Xvfb (Debian's xvfb) when DISPLAY is not set.
//
// With E2E_DRAFT_DIR and E2E_TARGET_DIR (model folders, e.g. Qwen2.5-Coder 0.5B and 1.5B
// from ../shared/models/fetch.sh) it serves those real models instead, under the repo
// ids E2E_DRAFT_REPO and E2E_TARGET_REPO, and saves the screenshots as real-*.png: how
// the README's screenshots of real generations are made.

import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { screenshotDir } from '../screenshot-dir';
import { WebDriver } from './webdriver';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../../..');
const targetDir = process.env.CARGO_TARGET_DIR ?? join(repo, 'target');
const APP = process.env.TANDEM_APP ?? join(targetDir, 'debug', 'tandem-app');
const MOCK_HUB = process.env.MOCK_HUB ?? join(targetDir, 'debug', 'mock-hub');
const TAURI_DRIVER = process.env.TAURI_DRIVER ?? join(homedir(), '.cargo', 'bin', 'tauri-driver');
const WEBKIT_DRIVER = process.env.WEBKIT_DRIVER ?? '/usr/bin/WebKitWebDriver';
// The build folder unless scripts/refresh-screenshots.sh asks for docs/screenshots/.
const SCREENSHOTS = screenshotDir(repo, process.env);
const REAL = process.env.E2E_DRAFT_DIR && process.env.E2E_TARGET_DIR
  ? {
      draftDir: process.env.E2E_DRAFT_DIR,
      targetDir: process.env.E2E_TARGET_DIR,
      draftRepo: process.env.E2E_DRAFT_REPO ?? 'Qwen/Qwen2.5-Coder-0.5B-Instruct',
      targetRepo: process.env.E2E_TARGET_REPO ?? 'Qwen/Qwen2.5-Coder-1.5B-Instruct',
    }
  : null;
const DRAFT_REPO = REAL?.draftRepo ?? 'tandem-test/tiny-draft';
const TARGET_REPO = REAL?.targetRepo ?? 'tandem-test/tiny-target';
const PAIR_ID = REAL ? 'real-pair' : 'tiny-pair';
const SHOT_PREFIX = REAL ? 'real' : 'e2e';
const PROMPT = REAL
  ? 'Write a Python function is_prime(n) that checks whether a number is prime, with a docstring.'
  : 'Repeat after me: the quick brown fox jumps over the lazy dog.';
const MAX_TOKENS = REAL ? '64' : '48';
const DRIVER_PORT = 4444 + Math.floor(Math.random() * 500);

const children: ChildProcess[] = [];
let work = '';
let driver: WebDriver;

function start(command: string, args: string[], env: NodeJS.ProcessEnv, name: string): ChildProcess {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = join(work, `${name}.log`);
  child.stdout?.on('data', (d) => writeFileSync(log, d, { flag: 'a' }));
  child.stderr?.on('data', (d) => writeFileSync(log, d, { flag: 'a' }));
  children.push(child);
  return child;
}

async function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((ok, fail) => {
    let seen = '';
    const timer = setTimeout(() => fail(new Error(`timed out waiting for ${pattern}; output so far: ${seen}`)), timeoutMs);
    const onData = (d: Buffer) => {
      seen += d.toString();
      const m = seen.match(pattern);
      if (m) {
        clearTimeout(timer);
        ok(m[1] ?? m[0]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => fail(new Error(`process exited (${code}) before ${pattern}: ${seen}`)));
  });
}

async function waitForPort(url: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`nothing answered at ${url}`);
}

async function shot(name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  writeFileSync(join(SCREENSHOTS, `${SHOT_PREFIX}-${name}.png`), await driver.screenshot());
}

function dirSize(dir: string): number {
  return readdirSync(dir)
    .filter((f) => !f.startsWith('.'))
    .reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

beforeAll(async () => {
  for (const [what, path] of [
    ['the app', APP],
    ['mock-hub', MOCK_HUB],
    ['tauri-driver', TAURI_DRIVER],
    ['WebKitWebDriver', WEBKIT_DRIVER],
  ]) {
    if (!existsSync(path)) throw new Error(`${what} is missing at ${path} (see the comment at the top of this file)`);
  }
  work = mkdtempSync(join(tmpdir(), 'tandem-e2e-'));

  // The mock hub serves two repos made from one fixture model: a draft and a target that
  // agree on every token, so the race shows accepted guesses and bonus tokens.
  const hubRoot = join(work, 'hub');
  const fixture = join(repo, 'tests', 'fixtures', 'llama-gqa');
  const sources: [string, string][] = [
    [DRAFT_REPO, REAL?.draftDir ?? fixture],
    [TARGET_REPO, REAL?.targetDir ?? fixture],
  ];
  for (const [repoId, dir] of sources) {
    // Only the files a model folder is made of (not Tandem's int8 cache beside them);
    // real models are linked rather than copied.
    const served = join(hubRoot, repoId);
    mkdirSync(served, { recursive: true });
    for (const file of readdirSync(dir).filter((f) => !f.startsWith('.'))) {
      if (REAL) symlinkSync(join(dir, file), join(served, file));
      else cpSync(join(dir, file), join(served, file), { recursive: true });
    }
  }
  const sizeOf = (dir: string) => dirSize(dir);
  const catalog = {
    about: REAL
      ? 'End-to-end catalog: real models served by the local mock hub.'
      : 'End-to-end test catalog: tiny fixture models served by the mock hub.',
    models: [
      { repo: DRAFT_REPO, params: REAL ? 494_000_000 : 120000, download_bytes: sizeOf(sources[0][1]), licence: REAL ? 'apache-2.0' : 'mit', gated: false },
      { repo: TARGET_REPO, params: REAL ? 1_540_000_000 : 360000, download_bytes: sizeOf(sources[1][1]), licence: REAL ? 'apache-2.0' : 'mit', gated: false },
    ],
    pairs: [
      {
        id: PAIR_ID,
        draft: DRAFT_REPO,
        target: TARGET_REPO,
        note: REAL ? 'A coding pair: the 0.5B model drafts for the 1.5B one.' : 'Tiny fixture models from the mock hub.',
      },
    ],
  };
  writeFileSync(join(work, 'catalog.json'), JSON.stringify(catalog));
  mkdirSync(join(work, 'export'));

  // The tiny models are throttled so the progress bars can be seen; real ones are not.
  const throttle = REAL ? [] : ['--throttle', '150000'];
  const hub = start(MOCK_HUB, ['--root', hubRoot, '--port', '0', ...throttle], process.env, 'mock-hub');
  const hubUrl = await waitForOutput(hub, /MOCK_HUB_URL=(\S+)/, 30_000);

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HF_ENDPOINT: hubUrl,
    HF_HOME: join(work, 'hf'),
    HF_TOKEN: '',
    TANDEM_DATA_DIR: join(work, 'data'),
    TANDEM_CATALOG: join(work, 'catalog.json'),
    TANDEM_EXPORT_DIR: join(work, 'export'),
    WEBKIT_DISABLE_COMPOSITING_MODE: '1',
    LIBGL_ALWAYS_SOFTWARE: '1',
  };
  if (!process.env.DISPLAY) {
    const display = `:${90 + Math.floor(Math.random() * 100)}`;
    start('Xvfb', [display, '-screen', '0', '1400x900x24', '-nolisten', 'tcp'], process.env, 'xvfb');
    env.DISPLAY = display;
    await new Promise((r) => setTimeout(r, 1500));
  }
  start(TAURI_DRIVER, ['--port', String(DRIVER_PORT), '--native-driver', WEBKIT_DRIVER], env, 'tauri-driver');
  await waitForPort(`http://127.0.0.1:${DRIVER_PORT}/status`, 30_000);
  driver = new WebDriver(`http://127.0.0.1:${DRIVER_PORT}`);
  await driver.start(APP);
  await driver.waitFor('the app to start', () => driver.count('nav[aria-label="Views"]'), 60_000);
});

// A failing step leaves a screenshot and the page's text in the work folder (kept with
// KEEP_E2E=1), which is what one needs to see why.
afterEach(async (context) => {
  if (context.task.result?.state !== 'fail' || !driver) return;
  const name = context.task.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40);
  try {
    writeFileSync(join(work, `failed-${name}.png`), await driver.screenshot());
    writeFileSync(join(work, `failed-${name}.txt`), await driver.text('body'));
    console.error(`e2e: step failed; screenshot and page text in ${work}`);
  } catch (e) {
    console.error(`e2e: could not capture the failed step: ${String(e)}`);
  }
});

afterAll(async () => {
  await driver?.quit();
  for (const child of children.reverse()) child.kill('SIGTERM');
  if (work && !process.env.KEEP_E2E) rmSync(work, { recursive: true, force: true });
});

describe('Tandem desktop app, end to end', () => {
  test('first launch: recommends the pair and downloads it from the hub with progress', async () => {
    await driver.waitFor('the first-launch guide', () => driver.count('[data-testid="first-launch"]'));
    const welcome = await driver.text('[data-testid="first-launch"]');
    expect(welcome).toContain('Welcome to Tandem');
    expect(welcome).toContain(DRAFT_REPO.split('/')[1]);
    await shot('first-launch');

    await driver.click('[data-testid="first-launch"] button.primary');
    await driver.waitFor('a progress bar', () => driver.count('[data-testid^="download-"]'), 30_000);
    await shot('downloading');
    await driver.waitFor(
      'both models to be downloaded',
      async () => (await driver.text(`[data-testid="pair-${PAIR_ID}"]`)).includes('Use in Run'),
      REAL ? 600_000 : 180_000,
    );
    expect(await driver.text('[data-testid="local-models"]')).toContain(TARGET_REPO.split('/')[1]);
    await shot('models');
  });

  test('runs with coloured tokens and the token inspector', async () => {
    await driver.click('[data-testid="nav-run"]');
    await driver.waitFor('the Run view', () => driver.count('[data-testid="run"]'));
    await driver.execute(
      `const t = document.querySelector('[data-testid="prompt"]'); t.value = arguments[0]; t.dispatchEvent(new Event('input', { bubbles: true }));`,
      PROMPT,
    );
    // A short answer keeps the greedy check away from near-ties of the random fixture weights.
    await driver.execute(
      `const m = document.querySelector('[data-testid="max-tokens"]'); m.value = arguments[0]; m.dispatchEvent(new Event('input', { bubbles: true }));`,
      MAX_TOKENS,
    );
    await driver.click('[data-testid="run"]');
    await driver.waitFor(
      'the run to finish',
      async () => (await driver.count('[data-testid="token-stream"] .tok')) > 5 && (await driver.count('[data-testid="stop"]')) === 0,
      REAL ? 1_200_000 : 300_000,
    );
    const origins = await driver.execute<string[]>(
      `return [...new Set([...document.querySelectorAll('[data-testid="token-stream"] .tok')].map(e => e.dataset.origin))];`,
    );
    expect(origins).toContain('AcceptedDraft');
    await driver.execute(`document.querySelector('[data-testid="token-stream"] [data-origin="AcceptedDraft"]').click();`);
    const inspector = await driver.text('[data-testid="inspector"]');
    expect(inspector).toContain('big model, top 5');
    expect(inspector).toContain('draft, top 5');
    await shot('run');
  });

  test('races plain, speculative and NASD: identical outputs, speedups and a chart', async () => {
    await driver.click('[data-testid="nav-compare"]');
    await driver.click('[data-testid="start-race"]');
    await driver.waitFor(
      'the race to finish',
      async () => (await driver.count('[data-testid="replay"]')) > 0 || (await driver.count('button.small')) > 0 && (await driver.text('[data-testid="race-result"]')).includes('Replaying'),
      REAL ? 1_200_000 : 300_000,
    );
    await driver.execute(`[...document.querySelectorAll('button')].find(b => b.textContent.trim() === 'Skip replay')?.click();`);
    await driver.waitFor('the result', () => driver.count('[data-testid="identical"]'), 30_000);
    expect(await driver.text('[data-testid="identical"]')).toContain('Outputs identical');
    for (const lane of ['plain', 'speculative', 'nasd']) {
      expect(await driver.text(`[data-testid="lane-tps-${lane}"]`)).toMatch(/tok\/s/);
    }
    expect(await driver.count('[data-testid="lane-speculative"] [data-origin="AcceptedDraft"]')).toBeGreaterThan(0);
    expect(await driver.count('svg[aria-label="Tokens written over time, per lane"] path')).toBe(3);
    await shot('compare');
  });

  test('insights chart the race', async () => {
    await driver.click('[data-testid="nav-insights"]');
    await driver.waitFor('the charts', () => driver.count('svg[aria-label="Share of guesses accepted per step"] rect'));
    expect(await driver.count('svg[aria-label="Draft and verify time per step in milliseconds"] rect')).toBeGreaterThan(0);
    expect(await driver.text('[data-testid="prediction"]')).toMatch(/Measured\s+\d/);
    await shot('insights');
  });

  test('history exports the race as a JSONL log whose content is right', async () => {
    await driver.click('[data-testid="nav-history"]');
    await driver.waitFor('the history', () => driver.count('[data-testid="history-table"] tbody tr'));
    await driver.waitFor('both runs in the history', async () => (await driver.count('[data-testid="history-table"] tbody tr')) === 2, 30_000);
    await shot('history');
    // The newest entry is the race.
    await driver.click('[data-testid="history-table"] tbody tr:first-child [data-testid^="export-menu-"]');
    await driver.click('[data-testid="history-table"] tbody tr:first-child [data-testid^="export-jsonl-"]');
    const exportDir = join(work, 'export');
    const file = await driver.waitFor('the exported file', async () => readdirSync(exportDir).find((f) => f.endsWith('.jsonl')) ?? '', 30_000);
    const lines = readFileSync(join(exportDir, file), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; mode?: { kind: string }; summary?: { new_tokens: number }; trace?: unknown });
    const headers = lines.filter((l) => l.type === 'header');
    expect(headers.map((h) => h.mode?.kind)).toEqual(['plain', 'speculative', 'nasd']);
    expect(lines[0].type).toBe('header');
    expect(lines.filter((l) => l.type === 'step').length).toBeGreaterThan(3);
    const summaries = lines.filter((l) => l.type === 'summary');
    expect(summaries).toHaveLength(3);
    expect(summaries.every((s) => (s.summary?.new_tokens ?? 0) > 0)).toBe(true);
    expect(lines.at(-1)?.type).toBe('summary');
    // The file lands before the command's answer reaches the page: wait for the notice.
    await driver.waitFor('the saved notice', async () => (await driver.text('[data-testid="notice-info"]')).includes('Saved the JSONL log'), 30_000);
  });
});
