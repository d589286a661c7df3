import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { overflowsHorizontally, screenshot, useBrowser } from './harness';

const app = useBrowser({ beforeAll, afterAll });

describe('Models view', () => {
  test('first launch guides to the recommended pair for this hardware and downloads it with progress', async () => {
    // 4 MB/s simulated: the download stays in progress long enough to see it.
    const { page, context, errors } = await app.open({ scenario: 'fresh', dlrate: 4e6 });
    const welcome = page.getByTestId('first-launch');
    await expect(welcome.isVisible()).resolves.toBe(true);
    const text = await welcome.innerText();
    expect(text).toContain('Welcome to Tandem');
    // 16 GB laptop without a GPU: the largest open pair with a target of at most 2B
    // (the current Qwen3 one, with int8).
    expect(text).toContain('Qwen3 596M → 1.7B');
    expect(text).toContain('16 GB of RAM');
    expect(await page.locator('[data-testid^="pair-"] .badge.accent').count()).toBe(1);
    expect(await overflowsHorizontally(page)).toBe(false);
    await screenshot(page, 'models-first-launch');

    await welcome.getByRole('button', { name: 'Download the recommended pair' }).click();
    const bar = page.getByTestId('download-Qwen/Qwen3-0.6B').first();
    await bar.waitFor();
    await page.waitForFunction(() => /MB\/s/.test(document.querySelector('[data-testid="first-launch"]')?.textContent ?? ''));
    const progress = await bar.innerText();
    expect(progress).toMatch(/MB\/s · .* left/);
    expect(progress).toMatch(/of 1\.5 GB/);
    await screenshot(page, 'models-downloading');

    // Pause keeps the partial download; resume continues it.
    await bar.getByRole('button', { name: 'Pause' }).click();
    await page.waitForSelector('[data-testid="first-launch"] [data-status="paused"]');
    expect(await bar.innerText()).toContain('Paused');
    await bar.getByRole('button', { name: 'Resume' }).click();
    await page.waitForSelector('[data-testid="first-launch"] [data-status="downloading"]');
    // Cancel throws the partial away.
    await bar.getByRole('button', { name: 'Cancel' }).click();
    await page.waitForFunction(() => !document.querySelector('[data-testid="first-launch"] [data-testid^="download-"]'));
    expect(errors).toEqual([]);
    await context.close();
  });

  test('GPU hardware recommends a bigger pair, judged against GPU memory', async () => {
    const { page, context } = await app.open({ scenario: 'fresh', hardware: 'gpu' });
    const text = await page.getByTestId('first-launch').innerText();
    expect(text).toContain('Qwen3 596M → 8.2B');
    expect(text).toContain('RTX 4090');
    await context.close();
  });

  test('catalog cards show sizes, licence, gated badge and a compatibility verdict with its reason', async () => {
    const { page, context, errors } = await app.open({ scenario: 'ready' });
    await page.getByTestId('nav-models').click();
    const card = page.getByTestId('pair-llama3.2-1b-llama3.1-8b');
    const text = await card.innerText();
    expect(text).toContain('Gated');
    expect(text).toContain('llama3.2 + llama3.1');
    expect(text).toMatch(/Too big|Tight fit|Fits this computer/);
    expect(text).toMatch(/Needs about \d+(\.\d+)? GB/);
    const small = await page.getByTestId('pair-smollm2-135m-360m').innerText();
    expect(small).toContain('Downloaded');
    expect(small).toContain('Fits this computer');

    // Disk use and the local models, with a paused partial download.
    expect(await page.getByTestId('machine').innerText()).toMatch(/Models on disk: .*GB · 182 GB free/);
    expect(await page.getByTestId('local-models').innerText()).toContain('Partial');
    expect(await overflowsHorizontally(page)).toBe(false);
    await screenshot(page, 'models');

    // The pair doctor on demand.
    await page.getByTestId('pair-qwen2.5-0.5b-1.5b').getByRole('button', { name: 'Check pair' }).click();
    await page.getByTestId('verdict-qwen2.5-0.5b-1.5b').waitFor();
    expect(await page.getByTestId('verdict-qwen2.5-0.5b-1.5b').innerText()).toContain('Compatible');
    expect(errors).toEqual([]);
    await context.close();
  });

  test('a custom pair is checked by the doctor; an incompatible one says why', async () => {
    const { page, context } = await app.open({ scenario: 'ready' });
    await page.getByTestId('nav-models').click();
    await page.getByLabel('Draft (small model): repo id or file').fill('HuggingFaceTB/SmolLM2-135M-Instruct');
    await page.getByLabel('Target (big model): repo id or file').fill('Qwen/Qwen2.5-7B-Instruct');
    await page.getByRole('button', { name: 'Check and add' }).click();
    const custom = page.locator('[data-testid^="custom-"]').first();
    await custom.waitFor();
    const text = await custom.innerText();
    expect(text).toContain('Not compatible');
    expect(text).toContain('different vocabularies');
    await context.close();
  });

  test("other apps' GGUF files are listed and pair by path, with no download", async () => {
    const { page, context, errors } = await app.open({ scenario: 'ready' });
    await page.getByTestId('nav-models').click();
    const files = page.getByTestId('local-files');
    await files.waitFor();
    const text = await files.innerText();
    expect(text).toContain('qwen2.5-coder:0.5b');
    expect(text).toContain('Q4_K_M');
    expect(text).toContain("Can't load");
    await page.getByRole('button', { name: 'Use qwen2.5-coder:0.5b as the draft' }).click();
    await files.getByRole('button', { name: /as the target/ }).first().click();
    expect(await page.getByLabel('Draft (small model): repo id or file').inputValue()).toContain('.ollama/models/blobs/sha256-');
    await page.getByRole('button', { name: 'Check and add' }).click();
    const custom = page.locator('[data-testid^="custom-"]').first();
    await custom.waitFor();
    expect(await custom.innerText()).toContain('Compatible');
    expect(await custom.getByRole('button', { name: 'Download' }).count()).toBe(0);
    await screenshot(page, 'models-other-apps');
    // Or any GGUF file, from the system's file dialog.
    await page.getByRole('button', { name: 'Open a GGUF file as the target' }).click();
    await page.waitForFunction(() => (document.querySelectorAll('form input')[1] as HTMLInputElement).value.endsWith('.gguf'));
    expect(await page.getByLabel('Target (big model): repo id or file').inputValue()).toContain('.lmstudio/models/');
    expect(errors).toEqual([]);
    await context.close();
  });

  test('a gated model without a token gives a friendly error with the fix; a token unlocks it', async () => {
    const { page, context } = await app.open({ scenario: 'ready', dlrate: 5e9 });
    await page.getByTestId('nav-models').click();
    await page.getByTestId('pair-llama3.2-1b-3b').getByRole('button', { name: /Download/ }).click();
    const notice = page.getByTestId('notice-error').first();
    await notice.waitFor();
    const text = await notice.innerText();
    expect(text).toContain('This model is gated');
    expect(text).toContain('paste your access token');

    await page.getByLabel('Hugging Face token').fill('hf_example');
    await page.getByRole('button', { name: 'Save token' }).click();
    await page.getByText('Token set').waitFor();
    await page.getByTestId('pair-llama3.2-1b-3b').locator('footer button.primary').click();
    await page.waitForFunction(() => document.querySelector('[data-testid="pair-llama3.2-1b-3b"]')?.textContent?.includes('Use in Run'), null, {
      timeout: 30_000,
    });
    await context.close();
  });
});
