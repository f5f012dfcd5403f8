// The web UI's main flow in headless Chromium against a real daemon
// (started by tests/it/ui.rs, which passes what it set up in the
// environment): sign in; create a PostgreSQL source through its form, with
// a `oneOf` choice and a secret, and test it; create a destination; create
// a connection choosing streams and modes; Sync now and see it succeed with
// its record count; follow its log; disable it; see a failing sync's
// reason; and find the secret in nothing the browser received.

import fs from 'node:fs';
import { launch, newPage, signIn, waitText, clickButton, selectText, check, apiCall } from './lib.mjs';

const { SLUICE_URL: url, SLUICE_TOKEN: token, PG_URL: secret, OUT_DIR, BAD_DIR, ROWS } = process.env;
check(url && token && secret && OUT_DIR && BAD_DIR && ROWS, 'SLUICE_URL, SLUICE_TOKEN, PG_URL, OUT_DIR, BAD_DIR and ROWS are needed');

const browser = await launch();
const received = [];
const requested = [];
const page = await newPage(browser);
try {
  // Every body the page receives, for the secret's check at the end.
  page.on('request', (r) => requested.push(r.url()));
  page.on('response', async (r) => {
    try {
      received.push({ url: r.url(), body: await r.text() });
    } catch {
      // A redirect or a body the browser dropped: nothing received.
    }
  });

  step('sign in');
  await signIn(page, url, token);

  step('a PostgreSQL source: its form, a oneOf choice, a secret, Test, Save');
  await page.goto(`${url}/sources/new`);
  await page.waitForSelector('#connector option[value=postgres]');
  await page.select('#connector', 'postgres');
  await page.waitForSelector('#root_url');
  check((await page.$eval('#root_url', (e) => e.type)) === 'password', 'the secret URL field is a password input');
  await page.type('#actor-name', 'pg');
  await page.type('#root_url', secret);
  // sslmode: its second option, the object with certificates.
  await selectText(page, '#root_sslmode__oneof_select', 'Mode and certificates');
  await selectText(page, '#root_sslmode_mode', 'require');
  check((await page.$eval('#root_sslmode_client_key', (e) => e.type)) === 'password', 'a secret inside a oneOf option is a password input');
  await clickButton(page, 'Test');
  await waitText(page, '#check-result', /SUCCEEDED/);
  await clickButton(page, 'Save');
  await waitText(page, 'main table', /pg/);

  const stored = await apiCall(url, token, 'GET', '/sources/pg');
  check(JSON.stringify(stored.config.sslmode) === '{"mode":"require"}', `sslmode stored: ${JSON.stringify(stored.config.sslmode)}`);

  step('the stored source shows its secret masked, and tests with it');
  await page.goto(`${url}/sources/pg`);
  await page.waitForSelector('#root_url');
  check((await page.$eval('#root_url', (e) => e.value)) === '**********', 'the stored secret shows as its mask');
  check((await page.$eval('#root_sslmode_mode', (e) => e.selectedOptions[0].textContent)) === 'require', 'the oneOf choice is kept');
  await clickButton(page, 'Test');
  await waitText(page, '#check-result', /SUCCEEDED/);
  // Saving untouched keeps the stored secret.
  await clickButton(page, 'Save');
  await page.waitForSelector('#h-actors');
  await apiCall(url, token, 'POST', '/sources/pg/check', {}).then((r) => check(r.status === 'SUCCEEDED', `the secret was kept: ${JSON.stringify(r)}`));

  step('destinations: JSON Lines files, and one that will break');
  for (const [name, path] of [
    ['files', OUT_DIR],
    ['broken', BAD_DIR],
  ]) {
    await page.goto(`${url}/destinations/new`);
    await page.waitForSelector('#connector option[value=jsonl]');
    await page.select('#connector', 'jsonl');
    await page.waitForSelector('#root_path');
    await page.type('#actor-name', name);
    await page.type('#root_path', path);
    await clickButton(page, 'Save');
    await waitText(page, 'main table', new RegExp(name));
  }

  step('a connection: streams and modes chosen from the discovered catalog');
  await page.goto(`${url}/connections/new`);
  await page.waitForSelector('select[name=source] option[value=pg]');
  await page.type('input[name=name]', 'pg-to-files');
  await page.select('select[name=source]', 'pg');
  await page.select('select[name=destination]', 'files');
  await page.waitForSelector('input[aria-label="Sync public.items"]');
  await page.click('input[aria-label="All streams"]');
  await page.click('input[aria-label="Sync public.items"]');
  await page.select('#sync-mode', 'full_refresh');
  await page.select('#destination-sync-mode', 'overwrite');
  // public.items its own way: incremental on updated_at, appended (the
  // JSON Lines destination does not deduplicate), without its `name`.
  await page.select('select[aria-label="Sync mode of public.items"]', 'incremental');
  await page.select('select[aria-label="Destination sync mode of public.items"]', 'append');
  await page.waitForSelector('select[aria-label="Cursor of public.items"]');
  await page.select('select[aria-label="Cursor of public.items"]', 'updated_at');
  await page.click('tr:has(input[aria-label="Sync public.items"]) td.fields summary');
  await page.click('input[aria-label="Field name of public.items"]');
  check(await page.$eval('input[aria-label="Field updated_at of public.items"]', (e) => e.disabled && e.checked), 'the cursor stays selected');
  await waitText(page, 'tr:has(input[aria-label="Sync public.items"]) td.fields summary', /2 of 3 fields/);
  await clickButton(page, 'Create connection');
  await waitText(page, '#h-connection', /pg-to-files/);
  const conn = await apiCall(url, token, 'GET', '/connections/pg-to-files');
  check(JSON.stringify(conn.streams) === '["public.items"]', `streams chosen: ${JSON.stringify(conn.streams)}`);
  const own = JSON.stringify([conn.sync_modes, conn.destination_sync_modes, conn.cursors, conn.selected_fields]);
  check(
    own === '[{"public.items":"incremental"},{"public.items":"append"},{"public.items":["updated_at"]},{"public.items":["id","updated_at"]}]',
    `the stream's own choices: ${own}`,
  );
  check(conn.sync_mode === 'full_refresh' && conn.destination_sync_mode === 'overwrite', `the connection's modes: ${conn.sync_mode} / ${conn.destination_sync_mode}`);

  step('Sync now: it succeeds with its records counted, its log followed');
  await clickButton(page, 'Sync now');
  await waitText(page, '#jobs tbody tr:first-child', /succeeded/, 120_000);
  const records = await waitText(page, '#jobs tbody tr:first-child td.records', /\d/);
  check(records.trim() === ROWS, `records shown: ${records}, want ${ROWS}`);
  check(
    requested.some((u) => /\/api\/v1\/jobs\/\d+\/logs\?follow=true/.test(u)),
    'the running job log was followed',
  );
  const log = await waitText(page, '.logtext', /The sync succeeded/);
  check(log.includes(`${ROWS} records`), `the log counts the records: ${log}`);
  check(!log.includes(secret), 'the log holds no secret');
  await page.type('.log input[type=search]', 'succeeded');
  await waitText(page, '.log', /\d+ lines/);
  const files = fs.readdirSync(OUT_DIR, { recursive: true }).filter((f) => f.endsWith('.jsonl'));
  check(files.length > 0, 'the destination has files');
  for (const f of files) {
    const rows = fs.readFileSync(`${OUT_DIR}/${f}`, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    check(rows.every((r) => r.id && r.updated_at && !('name' in r)), `only the selected fields in ${f}: ${JSON.stringify(rows[0])}`);
  }

  step('disable it in place');
  await page.click('button[role=switch]');
  await page.waitForSelector('button[role=switch][aria-checked=false]');
  const after = await apiCall(url, token, 'GET', '/connections/pg-to-files');
  check(after.status === 'inactive', `status after disabling: ${after.status}`);

  step('a failing sync shows its reason');
  await apiCall(url, token, 'POST', '/connections', { name: 'pg-to-broken', spec: { source: 'pg', destination: 'broken', streams: ['public.items'] } });
  fs.rmSync(BAD_DIR, { recursive: true, force: true });
  fs.writeFileSync(BAD_DIR, 'a file where the directory was');
  await page.goto(`${url}/connections/pg-to-broken`);
  await clickButton(page, 'Sync now');
  await waitText(page, '#jobs tbody tr:first-child', /failed/, 120_000);
  const reason = await waitText(page, '#jobs tbody tr:first-child td.failure', /\S/);
  check(/destination/.test(reason), `the failure names its origin: ${reason}`);

  step('the list shows both, searchable');
  await page.goto(`${url}/connections`);
  await waitText(page, '#connections', /pg-to-broken/);
  await waitText(page, '#connections', new RegExp(`succeeded.*${ROWS} records`));
  await page.type('input[type=search]', 'files');
  await waitText(page, '#connections caption', /^1 of 2/);

  step('the secret is in nothing the browser received');
  await page.goto(`${url}/sources/pg`);
  await page.waitForSelector('#root_url');
  received.push({ url: 'the page', body: await page.content() });
  const leaks = received.filter((r) => r.body.includes(secret)).map((r) => r.url);
  check(leaks.length === 0, `the secret reached the browser in: ${leaks.join(', ')}`);
  check(received.length > 20, `only ${received.length} responses seen`);
  console.log(`ok: ${received.length} responses checked`);
} catch (e) {
  // What the page showed when it failed, for whoever reads the test's output.
  const shown = await page.$eval('main', (m) => m.innerText).catch(() => '(no page)');
  console.error(`failed on ${page.url()}:\n${shown}\n`);
  throw e;
} finally {
  await browser.close();
}

function step(what) {
  console.log(`- ${what}`);
}
