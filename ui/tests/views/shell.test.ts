import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { screenshot, useBrowser } from './harness';

const app = useBrowser({ beforeAll, afterAll });

describe('App shell', () => {
  test('keyboard: Alt+1…5 switch views, arrows move in the view list', async () => {
    const { page, context } = await app.open({ scenario: 'ready' });
    const selected = () => page.$eval('[role="tab"][aria-selected="true"]', (e) => e.textContent?.trim());
    await page.keyboard.press('Alt+1');
    expect(await selected()).toMatch(/^Models/);
    await page.keyboard.press('ArrowDown');
    expect(await selected()).toMatch(/^Run/);
    await page.keyboard.press('End');
    expect(await selected()).toMatch(/^History/);
    await page.keyboard.press('Alt+3');
    expect(await selected()).toMatch(/^Compare/);
    // Tab reaches the view's controls.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.tagName)).not.toBe('BODY');
    await context.close();
  });

  test('α, γ, τ and NASD explain themselves on hover and on keyboard focus', async () => {
    const { page, context } = await app.open({ scenario: 'ready' });
    const alpha = page.locator('.kpi [data-term="alpha"]').first();
    await alpha.hover();
    const tip = alpha.locator('[role="tooltip"]');
    await expect(tip.isVisible()).resolves.toBe(true);
    expect(await tip.innerText()).toContain("share of the small model's guesses");
    await page.locator('[data-term="tau"]').first().focus();
    expect(await page.locator('[data-term="tau"] [role="tooltip"]').first().isVisible()).toBe(true);
    await page.getByTestId('mode-nasd').hover();
    const nasd = page.locator('[data-testid="mode-nasd"] [role="tooltip"]');
    expect(await nasd.isVisible()).toBe(true);
    expect(await nasd.innerText()).toContain('no small model is needed');
    await page.locator('[data-term="gamma"]').first().hover();
    await screenshot(page, 'tooltip');
    await context.close();
  });

  test('follows the system dark theme', async () => {
    const { page, context } = await app.open({ scenario: 'ready' }, 'dark');
    await page.getByTestId('run').click();
    await page.waitForSelector('[data-testid="run"]:not([disabled])');
    await page.locator('[data-origin="AcceptedDraft"]').first().click();
    const bg = await page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--bg').trim());
    expect(bg).toBe('#14171d');
    await screenshot(page, 'run-dark');
    await page.getByTestId('nav-compare').click();
    await page.getByTestId('start-race').click();
    await page.getByRole('button', { name: 'Skip replay' }).click();
    await screenshot(page, 'compare-dark');
    await context.close();
  });
});
