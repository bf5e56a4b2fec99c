// Headless Chromium for the end-to-end tests, through playwright-core and the system's
// /usr/bin/chromium (never a browser that Playwright downloads).
//
//   const browser = await launchBrowser(t);
//   const alice = await openUser(t, browser, roomUrl + '?name=alice', { name: 'alice' });
//   await alice.waitFor(() => document.body.dataset.ready === 'true', null, 'app started');
//
// Each simulated user gets its own browser context (own storage, own RTCPeerConnections).
// Every page's console goes to e2e/artifacts/<test>-<user>.console.log. An uncaught exception or
// unhandled rejection in a page ('pageerror', which is also how a wasm panic surfaces) fails the
// test: the next waitFor rejects at once, and assertHealthy() throws.

import { mkdirSync, writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { artifactPath } from './server.mjs';

export const CHROMIUM = process.env.DRAWMESH_CHROMIUM || '/usr/bin/chromium';
export const WAIT_MS = 20_000;

// The headless flags that work as root on these machines (shared/notes/toolchain.md). Playwright
// adds a fresh --user-data-dir itself. --disable-quic: no QUIC attempts, only loopback is useful.
export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];

/** Launches Chromium (with `args` added to CHROMIUM_ARGS); closes it when the test ends (t.after). */
export async function launchBrowser(t, { args = [] } = {}) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, ...args],
    timeout: 60_000,
  });
  t?.after(async () => {
    await browser.close().catch(() => {});
  });
  return browser;
}

/**
 * One simulated user: a browser context with one page.
 */
export class User {
  constructor(name, context, page, logPrefix) {
    this.name = name;
    this.context = context;
    this.page = page;
    this.logPrefix = logPrefix;
    /** @type {string[]} uncaught exceptions and unhandled rejections */
    this.pageErrors = [];
    /** @type {RegExp[]} page errors that do not fail the test (see openUser's tolerate) */
    this.tolerate = [];
    /** @type {string[]} page errors matched by `tolerate` */
    this.toleratedErrors = [];
    /** @type {string[]} console.error / console.warn lines */
    this.consoleErrors = [];
    /** @type {string[]} every console line, for the artifact log */
    this.consoleLines = [];
    this.started = Date.now();
    this.closed = false;
    let rejectCrash;
    this.crashed = new Promise((_, reject) => {
      rejectCrash = reject;
    });
    this.crashed.catch(() => {}); // observed by waitFor; never an unhandled rejection here
    this._rejectCrash = rejectCrash;
  }

  /** Appends a line to the console log, stamped with seconds since the page opened. */
  log(line) {
    this.consoleLines.push(`${((Date.now() - this.started) / 1000).toFixed(3)} ${line}`);
  }

  /** Records a page error and, unless tolerated, makes any pending or later waitFor fail. */
  _pageError(err) {
    const text = `${err.name ?? 'Error'}: ${err.message}${err.stack ? `\n${err.stack}` : ''}`;
    if (this.tolerate.some((re) => re.test(text))) {
      this.toleratedErrors.push(text);
      this.log(`[pageerror, tolerated] ${text}`);
      return;
    }
    this.pageErrors.push(text);
    this.log(`[pageerror] ${text}`);
    this._rejectCrash(new Error(`${this.name}: uncaught error in the page: ${text}`));
  }

  /**
   * Waits until `fn(arg)` is truthy in the page (page.waitForFunction), failing early on a page
   * error. Returns the truthy value.
   */
  async waitFor(fn, arg, what, timeout = WAIT_MS) {
    const waiting = this.page.waitForFunction(fn, arg, { timeout, polling: 100 });
    waiting.catch(() => {}); // if the page errors first, this one's later rejection is moot
    try {
      const handle = await Promise.race([waiting, this.crashed]);
      return await handle.jsonValue();
    } catch (err) {
      throw new Error(`${this.name}: waiting for ${what} failed: ${err.message}\n${this.diagnostics()}`);
    }
  }

  /** Throws if the page has had an uncaught error. */
  assertHealthy() {
    if (this.pageErrors.length) {
      throw new Error(`${this.name}: uncaught errors in the page:\n${this.pageErrors.join('\n')}`);
    }
  }

  /** The last console lines, for failure messages. */
  diagnostics(lines = 30) {
    const tail = this.consoleLines.slice(-lines);
    return `--- last console lines of ${this.name} (${this.page.url()}) ---\n${tail.join('\n') || '(none)'}`;
  }

  writeLog() {
    writeFileSync(artifactPath(`${this.logPrefix}-${this.name}.console.log`), this.consoleLines.join('\n') + '\n');
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    this.writeLog();
    await this.context.close().catch(() => {});
  }

  /** Closes only this user's page (like closing a tab), keeping the context and its storage. */
  async closePage() {
    if (this.closed) return;
    this.closed = true;
    this.writeLog();
    await this.page.close().catch(() => {});
  }
}

/**
 * Opens `url` in a new context of `browser` and waits for the load event.
 *
 * @param {import('node:test').TestContext | null} t  closes the context when the test ends
 * @param {import('playwright-core').Browser} browser
 * @param {string} url
 * @param {{name: string, logPrefix?: string, viewport?: {width: number, height: number},
 *          tolerate?: RegExp[], context?: object}} options  context: more browser-context options  tolerate: page errors (matched on "Name: message") that
 *          are logged but do not fail the test; for third-party code with known, harmless errors
 */
export async function openUser(t, browser, url, options) {
  const context = await browser.newContext({
    viewport: options.viewport ?? { width: 800, height: 500 },
    deviceScaleFactor: 1, // canvas pixels = CSS pixels
    ...(options.context ?? {}), // hasTouch, isMobile: a phone
  });
  return openInContext(t, context, url, options);
}

/**
 * Opens `url` in a new page of an existing context (the same user coming back: same storage),
 * with the same logging and page-error handling as openUser. Closing the returned user closes
 * the whole context; closePage() closes only its page.
 *
 * @param {import('node:test').TestContext | null} t
 * @param {import('playwright-core').BrowserContext} context
 * @param {string} url
 * @param {{name: string, logPrefix?: string, tolerate?: RegExp[],
 *          beforeLoad?: (page: import('playwright-core').Page) => Promise<void>}} options
 *          beforeLoad: runs before navigation (routes that fault requests, say)
 */
export async function openInContext(t, context, url, options) {
  const page = await context.newPage();
  const user = new User(options.name, context, page, options.logPrefix ?? 'e2e');
  user.tolerate = options.tolerate ?? [];
  page.on('pageerror', (err) => user._pageError(err));
  page.on('console', (msg) => {
    const line = `[${msg.type()}] ${msg.text()}`;
    user.log(line);
    if (msg.type() === 'error' || msg.type() === 'warning') user.consoleErrors.push(line);
  });
  page.on('crash', () => user._pageError(new Error('the page crashed')));
  page.on('response', (res) => {
    if (res.status() >= 400) user.log(`[http ${res.status()}] ${res.request().method()} ${res.url()} (${res.request().resourceType()})`);
  });
  page.on('requestfailed', (req) => {
    user.log(`[http failed: ${req.failure()?.errorText}] ${req.method()} ${req.url()}`);
  });
  t?.after(() => user.close());
  // A test's faults (dropped requests, say) must be in place before the page's first request.
  await options.beforeLoad?.(page);
  await page.goto(url, { waitUntil: 'load', timeout: WAIT_MS });
  return user;
}

/** Saves a screenshot of each user's page under e2e/artifacts/ (call when a test fails). */
export async function screenshotAll(users, prefix) {
  mkdirSync(artifactPath(''), { recursive: true });
  for (const user of users) {
    if (user.closed) continue;
    await user.page
      .screenshot({ path: artifactPath(`${prefix}-${user.name}.png`), timeout: 5_000 })
      .catch(() => {});
  }
}
