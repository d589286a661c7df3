import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { overflowsHorizontally, screenshot, useBrowser } from './harness';

const app = useBrowser({ beforeAll, afterAll });

describe('Compare view', () => {
  test('races plain, speculative and NASD, replays side by side, then shows speedups and the identical check', async () => {
    const { page, context, errors } = await app.open({ scenario: 'ready' });
    await page.getByTestId('nav-compare').click();
    await page.getByTestId('start-race').click();
    // The live phase ends, then the race replays in real time.
    await page.getByRole('button', { name: 'Skip replay' }).waitFor();
    await page.waitForTimeout(1800);
    for (const lane of ['plain', 'speculative', 'nasd']) {
      expect(await page.getByTestId(`lane-tps-${lane}`).innerText()).toMatch(/tok\/s/);
    }
    await screenshot(page, 'compare-racing');
    await page.getByRole('button', { name: 'Skip replay' }).click();
    await page.getByTestId('replay').waitFor();

    const speedup = await page.getByTestId('speedup-speculative').innerText();
    expect(Number.parseFloat(speedup)).toBeGreaterThan(1.3);
    expect(await page.getByTestId('speedup-nasd').innerText()).toMatch(/×/);
    expect(await page.getByTestId('identical').innerText()).toContain('Outputs identical');
    const result = await page.getByTestId('race-result').innerText();
    expect(result).toMatch(/Speculative answered\s+\d\.\d\d×\s+faster than plain/);
    // Each lane's coloured text, and the tokens-over-time chart.
    expect(await page.locator('[data-testid="lane-speculative"] [data-origin="AcceptedDraft"]').count()).toBeGreaterThan(10);
    expect(await page.locator('[data-testid="lane-nasd"] [data-origin="NgramHit"]').count()).toBeGreaterThan(3);
    expect(await page.locator('svg[aria-label="Tokens written over time, per lane"] path').count()).toBe(3);
    expect(await overflowsHorizontally(page)).toBe(false);
    await screenshot(page, 'compare');
    expect(errors).toEqual([]);
    await context.close();
  });

  test('with sampling the identical check is explained instead', async () => {
    const { page, context } = await app.open({ scenario: 'ready' });
    await page.getByLabel('Temperature').fill('0.8');
    await page.getByTestId('nav-compare').click();
    await page.getByTestId('lane-toggle-nasd').uncheck();
    await page.getByTestId('start-race').click();
    await page.getByRole('button', { name: 'Skip replay' }).click();
    await page.getByTestId('replay').waitFor();
    expect(await page.getByTestId('race-result').innerText()).toContain('may differ by design');
    expect(await page.locator('[data-testid^="lane-"][aria-label$="lane"]').count()).toBe(2);
    await context.close();
  });
});
