import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { overflowsHorizontally, screenshot, useBrowser } from './harness';

const app = useBrowser({ beforeAll, afterAll });

describe('History view', () => {
  test('lists past runs, exports logs, reopens a run, and deletes one', async () => {
    const { page, context, errors } = await app.open({ scenario: 'ready' });
    await page.keyboard.press('Alt+5');
    await page.getByRole('heading', { name: 'History' }).waitFor();
    const rows = page.locator('[data-testid="history-table"] tbody tr');
    expect(await rows.count()).toBe(3);
    expect(await rows.last().innerText()).toContain('Comparison');
    expect(await overflowsHorizontally(page)).toBe(false);
    await screenshot(page, 'history');

    // Export through the (mocked) native save dialog.
    for (const format of ['jsonl', 'csv', 'html']) {
      await rows.first().locator('[data-testid^="export-menu-"]').click();
      if (format === 'jsonl') await screenshot(page, 'history-export');
      await rows.first().locator(`[data-testid^="export-${format}-"]`).click();
      await page.getByTestId('notice-info').filter({ hasText: `${format.toUpperCase()} log` }).waitFor();
    }

    // Enter on a row reopens it in Insights.
    await rows.last().focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Insights' }).waitFor();
    expect(await page.getByText('Comparison', { exact: true }).count()).toBeGreaterThan(0);

    // Reopen the comparison as a race.
    await page.keyboard.press('Alt+5');
    await rows.last().getByRole('button', { name: 'Race' }).click();
    await page.getByTestId('identical').waitFor();

    await page.keyboard.press('Alt+5');
    await rows.first().getByRole('button', { name: 'Delete this run' }).click();
    await rows.first().getByRole('button', { name: 'Really delete' }).click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="history-table"] tbody tr').length === 2);
    expect(errors).toEqual([]);
    await context.close();
  });
});
