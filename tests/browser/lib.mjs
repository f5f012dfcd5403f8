// What the browser scripts share: headless Chromium (Debian's), signing in,
// and waiting for text on a page.

import puppeteer from 'puppeteer-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export async function launch() {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container has no user namespace to sandbox with.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

/** A page that fails the script on any error the app throws. */
export async function newPage(browser, width = 1280) {
  const page = await browser.newPage();
  await page.setViewport({ width, height: 900 });
  page.setDefaultTimeout(60_000);
  page.on('pageerror', (e) => {
    console.error(`page error: ${e.message}`);
    process.exitCode = 1;
  });
  page.on('console', (m) => {
    // A CSP violation is an error the page logs, not one it throws.
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) {
      console.error(`CSP violation: ${m.text()}`);
      process.exitCode = 1;
    }
  });
  return page;
}

export async function signIn(page, url, token) {
  await page.goto(`${url}/`);
  await page.waitForSelector('#token');
  await page.type('#token', token);
  await Promise.all([page.waitForSelector('#h-connections'), page.click('button[type=submit]')]);
}

/** Waits until `selector`'s text matches `re`; its text. */
export async function waitText(page, selector, re, timeout = 60_000) {
  await page.waitForFunction(
    (sel, src, flags) => {
      const el = document.querySelector(sel);
      return el && new RegExp(src, flags).test(el.textContent);
    },
    { timeout },
    selector,
    re.source,
    re.flags,
  );
  return page.$eval(selector, (el) => el.textContent);
}

/** Clicks the button whose text is `text` (within `scope`). */
export async function clickButton(page, text, scope = 'body') {
  const handle = await page.waitForFunction(
    (s, t) => [...document.querySelectorAll(`${s} button, ${s} a.button`)].find((b) => b.textContent.trim() === t && !b.disabled),
    {},
    scope,
    text,
  );
  await handle.asElement().click();
}

export function check(cond, message) {
  if (!cond) throw new Error(message);
}

/** Calls the daemon's API with the token (for what the test sets up). */
export async function apiCall(url, token, method, path, body) {
  const resp = await fetch(`${url}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await resp.json();
  if (!resp.ok) throw new Error(`${method} ${path}: ${resp.status} ${JSON.stringify(json)}`);
  return json;
}

/** Picks the option of a select by its text (rjsf's enum options are valued by index). */
export async function selectText(page, selector, text) {
  await page.waitForSelector(selector);
  const value = await page.$eval(selector, (el, t) => [...el.options].find((o) => o.textContent.trim() === t)?.value, text);
  check(value !== undefined, `${selector} has no option ${text}`);
  await page.select(selector, value);
}
