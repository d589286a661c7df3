// Serves the built UI (dist/) and drives Debian's Chromium with playwright-core. The
// app runs on the mocked backend (mock.html → src/mock/install.ts → @tauri-apps/api/mocks).

import { createReadStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { screenshotDir } from '../screenshot-dir';

const here = dirname(fileURLToPath(import.meta.url));
export const DIST = resolve(here, '../../dist');
// Mocked data: kept apart from the end-to-end test's screenshots of the real app, in the
// build folder unless scripts/refresh-screenshots.sh asks for docs/screenshots/.
export const SCREENSHOTS = screenshotDir(resolve(here, '../../..'), process.env, 'mock');
export const VIEWPORT = { width: 1280, height: 800 };

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.png': 'image/png',
};

export async function serveDist(): Promise<{ url: string; close: () => Promise<void> }> {
  if (!existsSync(join(DIST, 'mock.html'))) throw new Error(`build the UI first: ${DIST}/mock.html is missing (npm run build)`);
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(DIST, path === '/' ? 'index.html' : path));
    if (!file.startsWith(DIST) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((ok) => server.close(() => ok())) };
}

export async function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
}

export interface AppPage {
  context: BrowserContext;
  page: Page;
  errors: string[];
}

/** Opens the app on the mocked backend. `query`: scenario, speed, dlrate, hardware. */
export async function openApp(
  browser: Browser,
  baseUrl: string,
  query: Record<string, string | number> = {},
  colorScheme: 'light' | 'dark' = 'light',
): Promise<AppPage> {
  const context = await browser.newContext({ viewport: VIEWPORT, colorScheme, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  const qs = new URLSearchParams({ speed: '0', ...Object.fromEntries(Object.entries(query).map(([k, v]) => [k, String(v)])) });
  await page.goto(`${baseUrl}/mock.html?${qs}`);
  await page.waitForSelector('nav[aria-label="Views"]');
  await page.waitForFunction(() => !document.querySelector('main[aria-busy="true"]'));
  return { context, page, errors };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  // Let transitions (progress bars, tooltips) settle.
  await page.waitForTimeout(250);
  await page.screenshot({ path, fullPage: false });
  return path;
}

/** Whether the page scrolls sideways (it must not at 1280×800). */
export async function overflowsHorizontally(page: Page): Promise<boolean> {
  return page.evaluate(() => {
    const main = document.querySelector('main')!;
    return document.documentElement.scrollWidth > window.innerWidth + 1 || main.scrollWidth > main.clientWidth + 1;
  });
}

/** beforeAll/afterAll wiring for a test file: one server and one browser. */
export function useBrowser(hooks: { beforeAll: (fn: () => Promise<void>) => void; afterAll: (fn: () => Promise<void>) => void }) {
  const state: { browser?: Browser; url?: string; close?: () => Promise<void> } = {};
  hooks.beforeAll(async () => {
    const server = await serveDist();
    state.url = server.url;
    state.close = server.close;
    state.browser = await launch();
  });
  hooks.afterAll(async () => {
    await state.browser?.close();
    await state.close?.();
  });
  return {
    open: (query: Record<string, string | number> = {}, scheme: 'light' | 'dark' = 'light') =>
      openApp(state.browser!, state.url!, query, scheme),
  };
}
