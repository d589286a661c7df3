import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { overflowsHorizontally, screenshot, useBrowser } from './harness';

const app = useBrowser({ beforeAll, afterAll });

describe('Run view', () => {
  test('streams coloured tokens with a legend; clicking a token shows p and q top-5', async () => {
    const { page, context, errors } = await app.open({ scenario: 'ready' });
    // With models on disk the app opens on Run.
    await page.getByRole('heading', { name: 'Run', exact: true }).waitFor();
    await page.getByTestId('mode-speculative').click();
    await page.getByTestId('run').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="token-stream"] .tok').length > 40);
    await page.waitForSelector('[data-testid="run"]:not([disabled])');
    const origins = await page.$$eval('[data-testid="token-stream"] .tok', (els) => [...new Set(els.map((e) => e.getAttribute('data-origin')))]);
    expect(origins).toEqual(expect.arrayContaining(['AcceptedDraft', 'Corrected', 'Bonus']));
    const legend = await page.getByLabel('Token colours').innerText();
    expect(legend).toContain('Accepted guess');
    expect(legend).toContain('Corrected');
    expect(await page.getByTestId('tps').innerText()).toMatch(/tok\/s/);
    expect(await page.getByTestId('loaded').innerText()).toContain('SmolLM2');

    // Inspect a corrected token: p and q top-5 with the rejected guess marked.
    await page.locator('[data-origin="Corrected"]').first().click();
    const inspector = page.getByTestId('inspector');
    const text = await inspector.innerText();
    expect(text).toContain('big model, top 5');
    expect(text).toContain('draft, top 5');
    expect(text).toMatch(/was rejected/);
    expect(await inspector.locator('ol[aria-label="Big model top 5"] li').count()).toBe(5);
    expect(await inspector.locator('ol[aria-label="Draft top 5"] li').count()).toBe(5);
    expect(await overflowsHorizontally(page)).toBe(false);
    await screenshot(page, 'run');
    expect(errors).toEqual([]);
    await context.close();
  });

  test('a Qwen3 target shows the Thinking switch, on by default; turned off, the run asks for no thinking', async () => {
    const { page, context, errors } = await app.open({ scenario: 'ready' });
    await page.getByRole('heading', { name: 'Run', exact: true }).waitFor();
    const startRuns = () =>
      page.evaluate(() =>
        (window as unknown as { __tandemMock: { calls: Array<{ cmd: string; args: { request?: { enable_thinking?: boolean | null } } }> } }).__tandemMock.calls
          .filter((c) => c.cmd === 'start_run')
          .map((c) => c.args.request?.enable_thinking ?? null),
      );
    // SmolLM2's chat template has no switch.
    await page.waitForFunction(() => (window as unknown as { __tandemMock: { calls: Array<{ cmd: string }> } }).__tandemMock.calls.some((c) => c.cmd === 'chat_template_info'));
    expect(await page.getByTestId('thinking').count()).toBe(0);

    await page.getByTestId('pair-select').selectOption({ label: 'Qwen3-0.6B alone (plain, NASD)' });
    const thinking = page.getByTestId('thinking');
    await thinking.waitFor();
    expect(await thinking.isChecked()).toBe(true);
    const label = page.locator('label:has([data-testid="thinking"])');
    expect(await label.innerText()).toContain('Thinking before answering (the model’s default)');
    await page.getByTestId('mode-plain').click();
    await page.getByTestId('run').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="token-stream"] .tok').length > 10);
    await page.waitForSelector('[data-testid="run"]:not([disabled])');
    // Untouched: the template decides.
    expect(await startRuns()).toEqual([null]);

    await thinking.uncheck();
    await page.getByTestId('run').click();
    await page.waitForFunction(() => (window as unknown as { __tandemMock: { calls: Array<{ cmd: string }> } }).__tandemMock.calls.filter((c) => c.cmd === 'start_run').length === 2);
    await page.waitForSelector('[data-testid="run"]:not([disabled])');
    expect(await startRuns()).toEqual([null, false]);

    // Without the chat template there is nothing to switch.
    await page.getByRole('checkbox', { name: 'Chat template' }).uncheck();
    expect(await thinking.isDisabled()).toBe(true);
    await screenshot(page, 'run-thinking');
    expect(errors).toEqual([]);
    await context.close();
  });

  test('the token inspector works from the keyboard', async () => {
    const { page, context } = await app.open({ scenario: 'ready' });
    await page.getByTestId('prompt').focus();
    await page.keyboard.press('Control+Enter');
    await page.waitForSelector('[data-testid="run"]:not([disabled])');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="token-stream"] .tok').length > 10);
    await page.getByTestId('token-stream').focus();
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    const text = await page.getByTestId('inspector').innerText();
    expect(text).toContain('token 3 of the answer');
    await context.close();
  });

  test('NASD colours n-gram hits; plain has only the big model', async () => {
    const { page, context } = await app.open({ scenario: 'ready' });
    await page.getByTestId('mode-nasd').click();
    await page.getByTestId('run').click();
    await page.waitForSelector('[data-testid="run"]:not([disabled])');
    await page.waitForFunction(() => document.querySelectorAll('[data-origin="NgramHit"]').length > 3);
    await page.locator('[data-origin="NgramHit"]').first().click();
    expect(await page.getByTestId('inspector').innerText()).toMatch(/Repeating earlier text/);
    await screenshot(page, 'run-nasd');

    await page.getByTestId('mode-plain').click();
    await page.getByTestId('run').click();
    await page.waitForSelector('[data-testid="run"]:not([disabled])');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="token-stream"] .tok').length > 10);
    const origins = await page.$$eval('[data-testid="token-stream"] .tok', (els) => [...new Set(els.map((e) => e.getAttribute('data-origin')))]);
    expect(origins).toEqual(['Target']);
    await context.close();
  });

  test('speculative without a draft model is a friendly sentence with the fix', async () => {
    const { page, context } = await app.open({ scenario: 'ready' });
    await page.getByTestId('pair-select').selectOption({ label: 'SmolLM2-360M-Instruct alone (plain, NASD)' });
    await page.getByTestId('mode-speculative').click();
    await page.getByTestId('run').click();
    const notice = page.getByTestId('notice-error').first();
    await notice.waitFor();
    const text = await notice.innerText();
    expect(text).toContain('needs a small draft model');
    expect(text).toContain('switch the mode to Plain or NASD');
    await context.close();
  });

  test('Stop cancels a streaming run and keeps what it wrote', async () => {
    const { page, context } = await app.open({ scenario: 'ready', speed: 1 });
    await page.getByTestId('run').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="token-stream"] .tok').length > 5);
    await page.keyboard.press('Escape');
    await page.waitForSelector('[data-testid="run"]:not([disabled])');
    expect(await page.locator('.badge', { hasText: 'Stopped' }).count()).toBe(1);
    await context.close();
  });
});
