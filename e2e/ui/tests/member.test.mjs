// A member sees and manages only their own client keys, their traffic and
// usage; everything else is hidden in the UI and refused by /api.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { checkA11y, env, eventually, input, launch, nav, onFailure, signIn } from '../lib.mjs';

test('a member sees only their own keys', { timeout: 180_000 }, async () => {
  const b = await launch();
  const { page } = b;
  try {
    await signIn(page, 'mia', env('MEMBER_PASSWORD'));
    await page.getByRole('heading', { level: 2, name: 'My usage' }).waitFor();
    const links = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allInnerTexts();
    assert.deepEqual(links, ['Overview', 'Requests', 'Client keys', 'My account']);
    await checkA11y(page, 'overview (member)');

    await nav(page, 'Client keys', 'My client keys');
    await page.getByText('No client keys yet: create one').waitFor();
    await page.getByRole('button', { name: 'New client key' }).click();
    await input(page.getByRole('dialog'), 'Name').fill('mia-key');
    // A member cannot give a key to someone else.
    assert.equal(await page.getByRole('dialog').getByText('Owner', { exact: true }).count(), 0);
    await page.getByRole('button', { name: 'Create key' }).click();
    const secret = (await page.getByTestId('secret-once').innerText()).trim();
    await page.getByRole('button', { name: 'I have copied it' }).click();
    await page.getByRole('row', { name: /mia-key/ }).waitFor();
    const rows = await page.getByRole('row').allInnerTexts();
    assert.equal(rows.length, 2, `only the header and mia-key: ${rows}`);
    assert.ok(!rows.join().includes('otto-key') && !rows.join().match(/\bapp\b/), rows.join('|'));
    await checkA11y(page, 'client keys (member)');

    const sdk = new OpenAI({ baseURL: env('DP_URL') + '/v1', apiKey: secret, maxRetries: 0 });
    await eventually(() => sdk.chat.completions.create({ model: env('MODEL'), messages: [{ role: 'user', content: 'mine' }] }), {
      what: 'the member key is served',
    });
    await nav(page, 'Requests', 'Requests');
    // The trace reaches the control plane a moment after the answer, and the
    // log stays as loaded until Refresh (so paging is stable): refresh as a
    // user would until it shows.
    await eventually(
      async () => {
        await page.getByRole('button', { name: 'Refresh' }).click();
        await page.getByRole('row', { name: /mia-key/ }).waitFor({ timeout: 1_000 });
      },
      { what: "mia's request in the log" },
    );
    const logged = await page.getByRole('row').allInnerTexts();
    assert.equal(logged.length, 2, `only mia's request: ${logged}`);
    await checkA11y(page, 'requests (member)');
    await nav(page, 'Overview', 'My usage');
    await eventually(async () => assert.equal(await page.getByTestId('stat-Requests').innerText(), '1'));
    // A page this role may not see says so, instead of showing another page.
    await page.goto(`${env('ADMIN_URL')}/providers`);
    await page.getByRole('heading', { level: 2, name: 'You do not have access to this page' }).waitFor();
    await eventually(async () => assert.equal(await page.title(), 'No access · AI Gateway admin'));
    await checkA11y(page, 'no access (member)');

    const api = (method, path, data) =>
      page.request.fetch(`${env('ADMIN_URL')}/api${path}`, { method, headers: { 'x-aigw-csrf': '1' }, data });
    const keys = await (await api('GET', '/client-keys')).json();
    assert.deepEqual(keys.client_keys.map((k) => k.name), ['mia-key']);
    for (const [method, path] of [
      ['GET', '/providers'],
      ['GET', '/audit'],
      ['GET', '/nodes'],
      ['GET', '/config/export'],
      ['POST', '/client-keys/otto-key/revoke'],
      ['DELETE', '/client-keys/app'],
      ['PUT', '/client-keys/stolen'],
    ]) {
      const body = path === '/client-keys/stolen' ? { owner: 'otto' } : undefined;
      const r = await api(method, path, body);
      assert.equal(r.status(), 403, `${method} ${path}: ${r.status()} ${await r.text()}`);
    }
    const traces = await (await api('GET', '/traces')).json();
    assert.deepEqual(traces.traces.map((t) => t.client_key_name), ['mia-key'], JSON.stringify(traces));
    const other = await api('GET', `/traces/${env('OTHER_REQUEST_ID')}`);
    assert.equal(other.status(), 403, await other.text());
    assert.deepEqual(b.errors, [], 'errors in the page');
  } catch (e) {
    await onFailure(page, 'member');
    throw e;
  } finally {
    await b.close();
  }
});
