// A small W3C WebDriver client over fetch: enough to drive the app through tauri-driver.

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

export interface Element {
  [ELEMENT]: string;
}

export class WebDriver {
  private session = '';

  constructor(private readonly base: string) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json().catch(() => ({}))) as { value?: unknown };
    if (!res.ok) throw new Error(`WebDriver ${method} ${path}: ${res.status} ${JSON.stringify(json.value ?? json)}`);
    return json.value as T;
  }

  async start(application: string, args: string[] = []): Promise<void> {
    const value = await this.call<{ sessionId: string }>('POST', '/session', {
      capabilities: { alwaysMatch: { 'tauri:options': { application, args } } },
    });
    this.session = value.sessionId;
  }

  async quit(): Promise<void> {
    if (this.session) await this.call('DELETE', `/session/${this.session}`).catch(() => undefined);
    this.session = '';
  }

  private s(path: string): string {
    return `/session/${this.session}${path}`;
  }

  /** Runs a script in the page; `arguments[i]` are `args`. */
  execute<T>(script: string, ...args: unknown[]): Promise<T> {
    return this.call<T>('POST', this.s('/execute/sync'), { script, args });
  }

  async find(css: string): Promise<Element> {
    return this.call<Element>('POST', this.s('/element'), { using: 'css selector', value: css });
  }

  async click(css: string): Promise<void> {
    const el = await this.find(css);
    try {
      await this.call('POST', this.s(`/element/${el[ELEMENT]}/click`), {});
    } catch {
      // Fall back to a DOM click (e.g. an element partly covered by a notice).
      await this.execute('document.querySelector(arguments[0]).click()', css);
    }
  }

  async type(css: string, text: string): Promise<void> {
    const el = await this.find(css);
    await this.call('POST', this.s(`/element/${el[ELEMENT]}/clear`), {});
    await this.call('POST', this.s(`/element/${el[ELEMENT]}/value`), { text });
  }

  text(css: string): Promise<string> {
    return this.execute<string>('const e = document.querySelector(arguments[0]); return e ? e.innerText : "";', css);
  }

  count(css: string): Promise<number> {
    return this.execute<number>('return document.querySelectorAll(arguments[0]).length;', css);
  }

  async screenshot(): Promise<Buffer> {
    return Buffer.from(await this.call<string>('GET', this.s('/screenshot')), 'base64');
  }

  /** Polls `check` until it returns a truthy value. */
  async waitFor<T>(what: string, check: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < end) {
      try {
        const value = await check();
        if (value) return value;
      } catch (e) {
        last = e;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
  }
}
