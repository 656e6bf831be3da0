// The overview's live view across a control-plane restart: while the
// control plane is down the badge says so, and once it is back the view
// reconnects by itself and shows new requests, without a reload; once the
// session has ended it goes to sign-in rather than reconnecting. The
// Python side (test_ui.py) stops and restarts the control plane; the two
// meet through files in SIGNAL_DIR.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { env, eventually, launch, nav, onFailure, signIn } from '../lib.mjs';

const signal = (name) => writeFileSync(join(env('SIGNAL_DIR'), name), '');
const signalled = (name) =>
  eventually(async () => assert.ok(existsSync(join(env('SIGNAL_DIR'), name))), {
    timeout: 60_000,
    what: `the test's "${name}" signal`,
  });
const badge = (page) => page.getByTestId('live-state');

test('the live overview comes back after the control plane restarts', { timeout: 180_000 }, async () => {
  const b = await launch();
  const { page } = b;
  try {
    await signIn(page, env('ADMIN_USER'), env('ADMIN_PASSWORD'));
    await nav(page, 'Overview', 'Overview');
    await badge(page).getByText('Live').waitFor();
    const before = Number(await page.getByTestId('stat-Requests').innerText());
    await page.evaluate(() => {
      window.__sameDocument = true;
    });
    signal('live');

    await signalled('stopped');
    await badge(page).getByText('Connecting').waitFor({ timeout: 30_000 });
    await signalled('restarted');
    await badge(page).getByText('Live').waitFor({ timeout: 60_000 });

    const sdk = new OpenAI({ baseURL: env('DP_URL') + '/v1', apiKey: env('APP_KEY'), maxRetries: 0 });
    const answer = await sdk.chat.completions.create({
      model: env('MODEL'),
      messages: [{ role: 'user', content: 'after the restart' }],
    });
    assert.match(answer.choices[0].message.content, /mock reply/);
    await eventually(
      async () => assert.equal(Number(await page.getByTestId('stat-Requests').innerText()), before + 1),
      { timeout: 30_000, what: 'the overview shows the new request without a reload' },
    );
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was reloaded');

    // The session ends (signed out elsewhere) while the control plane is
    // away: when it is back the page is refused (401) and goes to sign-in
    // instead of reconnecting forever.
    const out = await page.request.post(`${env('ADMIN_URL')}/api/auth/logout`, {
      headers: { 'x-aigw-csrf': '1' },
    });
    assert.equal(out.status(), 200, await out.text());
    signal('logged-out');
    await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor({ timeout: 90_000 });
    assert.deepEqual(b.errors, [], 'errors in the page');
  } catch (e) {
    await onFailure(page, 'live');
    throw e;
  } finally {
    await b.close();
  }
});
