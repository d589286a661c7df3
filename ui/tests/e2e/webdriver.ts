// A small W3C WebDriver client over node:http: enough to drive the app through tauri-driver.

import { request } from 'node:http';

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

export interface Element {
  [ELEMENT]: string;
}

export class WebDriver {
  private session = '';

  constructor(private readonly base: string) {}

  /**
   * One request on a fresh connection. tauri-driver proxies each request to
   * WebKitWebDriver; over a kept-alive connection (what `fetch` does) a request now and
   * then never got its answer, so every call opens its own connection, and none waits
   * longer than `timeoutMs`.
   */
  private async call<T>(method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<T> {
    // tauri-driver now and then closes a fresh connection with no answer at all ("socket
    // hang up", seen about one run in three); the request is sent again, up to 3 times.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.send<T>(method, path, body, timeoutMs);
      } catch (e) {
        if (attempt >= 3 || !String(e).includes('socket hang up')) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private send<T>(method: string, path: string, body: unknown, timeoutMs: number): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((ok, fail) => {
      const req = request(
        `${this.base}${path}`,
        {
          method,
          agent: false,
          headers: {
            'content-type': 'application/json',
            connection: 'close',
            ...(payload === undefined ? {} : { 'content-length': Buffer.byteLength(payload) }),
          },
          timeout: timeoutMs,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            let json: { value?: unknown } = {};
            try {
              json = JSON.parse(text) as { value?: unknown };
            } catch {
              // An empty or non-JSON answer: reported below with the status.
            }
            if ((res.statusCode ?? 500) >= 400) {
              fail(new Error(`WebDriver ${method} ${path}: ${res.statusCode} ${JSON.stringify(json.value ?? text)}`));
            } else {
              ok(json.value as T);
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`WebDriver ${method} ${path}: no answer in ${timeoutMs} ms`)));
      req.on('error', fail);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
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

  /**
   * WebKitGTK takes a screenshot at the page's next paint, and a page that does not
   * change never paints again (seen under Xvfb: the request never answers). So while
   * it is taken, a 1-pixel, nearly transparent mark in the corner changes every 50 ms.
   */
  async screenshot(): Promise<Buffer> {
    await this.execute(`
      window.__e2eTick = setInterval(() => {
        let d = document.getElementById('e2e-tick');
        if (!d) {
          d = document.createElement('div');
          d.id = 'e2e-tick';
          d.style.cssText = 'position:fixed;left:0;top:0;width:1px;height:1px;pointer-events:none;z-index:2147483647';
          document.body.appendChild(d);
        }
        d.style.opacity = d.style.opacity === '0.01' ? '0.02' : '0.01';
        d.style.background = '#000';
      }, 50);`);
    try {
      return Buffer.from(await this.call<string>('GET', this.s('/screenshot')), 'base64');
    } finally {
      await this.execute(`clearInterval(window.__e2eTick); document.getElementById('e2e-tick')?.remove();`);
    }
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
