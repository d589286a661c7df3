import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { overflowsHorizontally, screenshot, useBrowser } from './harness';

const app = useBrowser({ beforeAll, afterAll });

describe('Insights view', () => {
  test('charts acceptance per step and per position, draft vs verify time, and predicted vs measured speedup', async () => {
    const { page, context, errors } = await app.open({ scenario: 'ready' });
    await page.getByTestId('nav-insights').click();
    expect(await page.locator('.empty').innerText()).toContain('No run to look at yet');

    await page.getByTestId('nav-compare').click();
    await page.getByTestId('start-race').click();
    await page.getByRole('button', { name: 'Skip replay' }).click();
    await page.getByTestId('nav-insights').click();

    expect(await page.getByTestId('kpi-alpha').innerText()).toMatch(/\d+%/);
    for (const title of [
      'Share of guesses accepted per step',
      'Acceptance rate by position of the guess within a step',
      'Draft and verify time per step in milliseconds',
    ]) {
      expect(await page.locator(`svg[aria-label="${title}"] rect`).count()).toBeGreaterThan(3);
    }
    const prediction = await page.getByTestId('prediction').innerText();
    expect(prediction).toMatch(/Predicted\s+\d\.\d\d×/);
    expect(prediction).toMatch(/Measured\s+\d\.\d\d×/);
    expect(await overflowsHorizontally(page)).toBe(false);
    await screenshot(page, 'insights');

    // Another lane of the same comparison.
    await page.getByTestId('insights-lane-nasd').click();
    expect(await page.getByTestId('prediction').innerText()).toMatch(/Measured\s+\d\.\d\d×/);
    await page.getByTestId('insights-lane-plain').click();
    expect(await page.getByText('Plain decoding guesses nothing').count()).toBe(1);
    expect(errors).toEqual([]);
    await context.close();
  });
});
