// Screenshots of the main pages into DOCS (docs/ in the repo), from a
// daemon scripts/screenshots set up: the connections list, a connection
// with its jobs and log, a failed job's reason, its streams (modes and
// fields per stream), its settings, a source's form, the jobs, and the
// list at phone width.

import path from 'node:path';
import { launch, newPage, signIn, waitText, check } from './lib.mjs';

const { SLUICE_URL: url, SLUICE_TOKEN: token, DOCS } = process.env;
check(url && token && DOCS, 'SLUICE_URL, SLUICE_TOKEN and DOCS are needed');

const browser = await launch();
try {
  const page = await newPage(browser, 1280);
  await signIn(page, url, token);
  const shot = async (name, fullPage = false) => {
    await page.screenshot({ path: path.join(DOCS, `ui-${name}.png`), fullPage });
    console.log(`docs/ui-${name}.png`);
  };

  await page.goto(`${url}/connections`);
  await waitText(page, '#connections', /succeeded/);
  await shot('connections');

  await page.goto(`${url}/connections/orders-to-files`);
  await waitText(page, '#jobs', /succeeded/);
  await waitText(page, '.logtext', /\S/);
  await shot('connection', true);

  await page.goto(`${url}/connections/clicks-to-nowhere`);
  await waitText(page, '#jobs td.failure', /\S/);
  await shot('failure');

  await page.goto(`${url}/connections/orders-to-files/streams`);
  await page.waitForSelector('td.fields summary');
  await page.click('td.fields summary');
  await shot('streams', true);

  await page.goto(`${url}/connections/orders-to-files/settings`);
  await page.waitForSelector('.preview li');
  await shot('settings', true);

  await page.goto(`${url}/sources/warehouse`);
  await page.waitForSelector('#root_url');
  await shot('source', true);

  await page.goto(`${url}/jobs`);
  await waitText(page, 'main table', /failed/);
  await shot('jobs');

  await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 2 });
  await page.goto(`${url}/connections`);
  await waitText(page, '#connections', /succeeded/);
  await shot('phone');
} finally {
  await browser.close();
}
