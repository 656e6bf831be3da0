// An admin's journey on an empty gateway, in a real browser: sign in, add
// a provider pointing at the mock provider, price its model, create a
// client key (shown once), call the data plane with it through the
// official OpenAI SDK, see the request in the log with its tokens and cost
// and on the overview without a reload, revoke the key, and see the next
// call refused. axe-core checks every page; screenshots go to
// docs/screenshots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { checkA11y, choose, env, eventually, input, launch, nav, onFailure, shot, signIn, usd } from '../lib.mjs';

const PROMPT = 'Hello from the admin UI test';

test('admin journey', { timeout: 240_000 }, async () => {
  const b = await launch();
  const { page } = b;
  try {
    // -- sign in
    await page.goto(env('ADMIN_URL'));
    await page.waitForURL('**/login');
    await input(page, 'Username').waitFor();
    await checkA11y(page, 'sign-in page');
    await shot(page, 'login');
    await signIn(page, env('ADMIN_USER'), env('ADMIN_PASSWORD'));
    await page.getByRole('heading', { level: 2, name: 'Overview' }).waitFor();
    await page.getByText('No requests in this period').first().waitFor();
    await checkA11y(page, 'overview, empty');

    // -- a provider pointing at the mock, with a write-only credential
    await nav(page, 'Providers', 'Providers and pools');
    await page.getByText('No providers yet').waitFor();
    await page.getByRole('button', { name: 'New provider' }).click();
    const dialog = page.getByRole('dialog');
    await input(dialog, 'Name').fill('mock');
    await choose(page, 'Kind', 'openai-compatible');
    await input(dialog, 'Base URL').fill(env('MOCK_URL'));
    await input(dialog, 'Models').fill('gpt-4o*');
    await input(dialog, 'Models').press('Enter');
    await input(dialog, 'Credential name').fill('pool-a');
    await dialog.getByLabel(/^Secret/).fill(env('POOL_SECRET'));
    // The secret gets the dialog's whole width.
    const secretBox = await dialog.getByLabel(/^Secret/).boundingBox();
    assert.ok(secretBox && secretBox.width > 300, `the secret input is ${secretBox?.width} px wide`);
    // A model map entry that is not app=upstream is shown, not dropped.
    await input(dialog, 'Model map').fill('fast');
    await input(dialog, 'Model map').press('Enter');
    await dialog.getByText('"fast" is not app-name=upstream-name').waitFor();
    await input(dialog, 'Model map').press('Backspace');
    await dialog.getByText('"fast" is not app-name=upstream-name').waitFor({ state: 'detached' });
    await checkA11y(page, 'new provider dialog');
    await dialog.getByRole('button', { name: 'Save provider' }).click();
    const row = page.getByRole('row', { name: /mock/ });
    await row.waitFor();
    // "New provider" with a name in use replaces nothing: it says so by the name.
    await page.getByRole('button', { name: 'New provider' }).click();
    await input(dialog, 'Name').fill('mock');
    await dialog.getByLabel(/^Secret/).fill('another-secret');
    await dialog.getByRole('button', { name: 'Save provider' }).click();
    await dialog.getByText('a provider named mock already exists').waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    assert.match(await row.innerText(), /openai-compatible/);
    // The secret is never shown again: only its hint.
    assert.ok(!(await page.content()).includes(env('POOL_SECRET')), 'the provider secret is on the page');

    // -- its price
    await page.getByRole('tab', { name: 'Pricing' }).click();
    await page.getByRole('button', { name: 'New price' }).click();
    await input(page.getByRole('dialog'), 'Model').fill(env('MODEL'));
    await page.getByRole('dialog').getByRole('textbox', { name: /^Input/ }).fill('2.5');
    await page.getByRole('dialog').getByRole('textbox', { name: /^Output/ }).fill('10');
    await page.getByRole('dialog').getByRole('textbox', { name: /^Cached input/ }).fill('1.25');
    await page.getByRole('button', { name: 'Save price' }).click();
    await page.getByRole('row', { name: new RegExp(env('MODEL')) }).waitFor();
    await checkA11y(page, 'pricing');
    await page.getByRole('tab', { name: 'Routes' }).click();
    await page.getByText(/No routes/).waitFor();
    await checkA11y(page, 'routes');

    // -- a client key, its secret shown once
    await nav(page, 'Client keys', 'Client keys');
    await page.getByRole('button', { name: 'New client key' }).click();
    await input(page.getByRole('dialog'), 'Name').fill('ui-app');
    // A bad number is refused by its field, not changed into another.
    await input(page.getByRole('dialog'), 'Requests / minute').fill('-5');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByRole('dialog').getByText('must be a whole number ≥ 1').waitFor();
    await input(page.getByRole('dialog'), 'Requests / minute').fill('');
    await page.getByRole('dialog').getByText('must be a whole number ≥ 1').waitFor({ state: 'detached' });
    // A cost limit, which the key's row measures its use against.
    await input(page.getByRole('dialog'), 'Cost / day').fill('100');
    // The "saved" notices fade out first (axe measures a fading one as low contrast).
    await eventually(async () => assert.equal(await page.locator('.mantine-Notification-root').count(), 0), {
      what: 'the notices are gone',
    });
    await checkA11y(page, 'new client key dialog');
    await page.getByRole('button', { name: 'Create key' }).click();
    const secret = (await page.getByTestId('secret-once').innerText()).trim();
    assert.match(secret, /^sk-aigw-/);
    await checkA11y(page, 'key shown once');
    // Escape asks before the secret is gone for good.
    await page.keyboard.press('Escape');
    await page.getByRole('button', { name: 'Back to the key' }).click();
    assert.equal(await page.getByTestId('secret-once').count(), 1, 'Escape closed the secret');
    await page.getByRole('button', { name: 'I have copied it' }).click();
    await page.getByTestId('secret-once').waitFor({ state: 'detached' });
    await page.getByRole('row', { name: /ui-app/ }).waitFor();
    assert.ok(!(await page.content()).includes(secret), 'the client key is still on the page');

    // -- the overview is open when the app calls
    await nav(page, 'Overview', 'Overview');
    await page.getByTestId('live-state').getByText('Live').waitFor();
    assert.equal(await page.getByTestId('stat-Requests').innerText(), '0');
    await page.evaluate(() => {
      window.__sameDocument = true;
    });
    const sdk = new OpenAI({ baseURL: env('DP_URL') + '/v1', apiKey: secret, maxRetries: 0 });
    // The data plane learns of the new key within a second.
    const { data: answer, response } = await eventually(
      () =>
        sdk.chat.completions
          .create({ model: env('MODEL'), messages: [{ role: 'user', content: PROMPT }] })
          .withResponse(),
      { what: 'the data plane serves the new key' },
    );
    const requestId = response.headers.get('x-request-id');
    assert.ok(requestId, 'x-request-id');
    assert.match(answer.choices[0].message.content, /mock reply/);
    await eventually(
      async () => assert.equal(await page.getByTestId('stat-Requests').innerText(), '1'),
      { what: 'the overview shows the request without a reload' },
    );
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was reloaded');
    // A little more traffic, streamed too, so the pictures show something.
    for (const word of ['one', 'two two', 'three three three']) {
      await sdk.chat.completions.create({ model: env('MODEL'), messages: [{ role: 'user', content: word }] });
      const stream = await sdk.chat.completions.create({
        model: env('MODEL'),
        stream: true,
        messages: [{ role: 'user', content: `${word} streamed` }],
      });
      for await (const _ of stream) {
        /* drain */
      }
    }
    await eventually(
      async () => assert.equal(await page.getByTestId('stat-Requests').innerText(), '7'),
      { what: 'the overview counts the streamed requests too' },
    );
    await page.getByRole('row', { name: new RegExp(env('MODEL')) }).waitFor();
    await checkA11y(page, 'overview with traffic');
    await shot(page, 'overview');

    // -- the request log, with tokens and cost
    const trace = (await (await page.request.get(`${env('ADMIN_URL')}/api/traces/${requestId}`)).json()).trace;
    assert.equal(trace.input_tokens, answer.usage.prompt_tokens);
    assert.equal(trace.output_tokens, answer.usage.completion_tokens);
    const u = answer.usage;
    const cached = u.prompt_tokens_details?.cached_tokens ?? 0;
    const cost = ((u.prompt_tokens - cached) * 2.5 + cached * 1.25 + u.completion_tokens * 10) / 1e6;
    assert.ok(Math.abs(trace.cost - cost) < 1e-12, `cost ${trace.cost} != ${cost}`);
    await nav(page, 'Requests', 'Requests');
    const logRow = page.getByRole('row', { name: /ui-app/ }).last();
    await logRow.waitFor();
    const rowText = await logRow.innerText();
    assert.match(rowText, new RegExp(env('MODEL')));
    assert.ok(rowText.includes(usd(trace.cost)), `${rowText} lacks ${usd(trace.cost)}`);
    assert.ok(rowText.includes(`${u.prompt_tokens} / ${u.completion_tokens}`), rowText);
    // The part of the request id that tells one request from another.
    assert.ok(rowText.includes(requestId.slice(-12)), `${rowText} lacks the end of ${requestId}`);
    await checkA11y(page, 'request log');
    await shot(page, 'requests');
    // Found by the id the app got, with its detail.
    await page.getByRole('textbox', { name: 'Request id' }).fill(requestId);
    await page.getByRole('button', { name: 'Find' }).click();
    const drawer = page.getByRole('dialog');
    await drawer.getByText(`Request ${requestId}`).waitFor();
    assert.equal(
      await drawer.getByTestId('detail-tokens').innerText(),
      `${u.prompt_tokens} in (${cached} cached) · ${u.completion_tokens} out`,
    );
    assert.equal(await drawer.getByTestId('detail-cost').innerText(), usd(trace.cost));
    // The mock reported usage: nothing was estimated, and no budget refused.
    assert.equal(trace.usage_source, '');
    assert.equal(await drawer.getByTestId('detail-usage').innerText(), 'reported by the provider');
    assert.equal(await drawer.getByTestId('detail-refused-by').count(), 0);
    await drawer.getByRole('row', { name: /mock \/ pool-a/ }).waitFor();
    await checkA11y(page, 'request detail');
    await shot(page, 'request-detail');
    await page.keyboard.press('Escape');
    await page.waitForURL((u) => u.pathname === '/requests');
    await drawer.waitFor({ state: 'detached' });
    // Filters are in the URL: a reload keeps them.
    await input(page, 'Model').fill(env('MODEL'));
    await page.waitForURL(/[?&]model=/);
    await page.reload();
    await page.getByRole('heading', { level: 2, name: 'Requests' }).waitFor();
    assert.equal(await input(page, 'Model').inputValue(), env('MODEL'));
    await page.getByRole('row', { name: /ui-app/ }).last().waitFor();

    // -- every other page, checked and pictured
    await nav(page, 'Providers', 'Providers and pools');
    await page.getByRole('row', { name: /mock/ }).waitFor();
    await shot(page, 'providers');
    await page.getByRole('tab', { name: 'Credential health' }).click();
    const healthRow = page.getByRole('row', { name: /pool-a/ });
    await healthRow.getByText('healthy').waitFor();
    // A check by the control plane on demand: the mock lists its models.
    await healthRow.getByRole('button', { name: 'Check now' }).click();
    await healthRow.getByText('ok', { exact: true }).waitFor();
    await checkA11y(page, 'credential health');
    await shot(page, 'credential-health');
    await page.getByRole('tab', { name: 'OAuth accounts' }).click();
    await page.getByText(/No OAuth accounts/).waitFor();
    await checkA11y(page, 'oauth accounts');
    await nav(page, 'People', 'People and data planes');
    await page.getByRole('row', { name: /admin/ }).first().waitFor();
    await checkA11y(page, 'people');
    await shot(page, 'people');
    // Resetting a password asks first, saying what it ends (cancelled here:
    // it would sign this admin out and revoke their tokens).
    await page
      .getByRole('row', { name: new RegExp(`^${env('ADMIN_USER')}\\b`) })
      .getByRole('button', { name: 'Edit' })
      .click();
    await page.getByRole('dialog', { name: `Edit ${env('ADMIN_USER')}` }).getByRole('button', { name: 'Reset password' }).click();
    const confirmReset = page.getByRole('dialog', { name: `Reset the password of ${env('ADMIN_USER')}?` });
    await confirmReset.getByText(/sessions end at once and all their API\s+tokens are revoked/).waitFor();
    await confirmReset.getByRole('button', { name: 'Cancel' }).click();
    await confirmReset.waitFor({ state: 'detached' });
    await page.getByRole('dialog', { name: `Edit ${env('ADMIN_USER')}` }).getByRole('button', { name: 'Close' }).click();
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    for (const tab of ['API tokens', 'Audit log', 'Data planes']) {
      await page.getByRole('tab', { name: tab }).click();
      await page.waitForTimeout(300);
      await checkA11y(page, `people: ${tab}`);
    }
    await page.getByRole('row', { name: /e2e-dp-1/ }).getByText('in sync').waitFor();
    // A team with a budget.
    await page.getByRole('tab', { name: 'Teams and budgets' }).click();
    await page.getByText('No teams').waitFor();
    await page.getByRole('button', { name: 'New team' }).click();
    await input(page.getByRole('dialog'), 'Team name').fill('platform');
    await choose(page, 'Members', 'admin');
    await page.keyboard.press('Tab');
    await page.getByRole('button', { name: 'Save team' }).click();
    await page.getByRole('row', { name: /platform/ }).getByText('admin').waitFor();
    await page.getByRole('button', { name: 'New budget' }).click();
    await choose(page, 'For', 'team platform');
    await input(page.getByRole('dialog'), 'Requests / minute').fill('6000');
    await page.getByRole('button', { name: 'Save budget' }).click();
    await page.getByRole('row', { name: /team:platform/ }).getByText('6,000 rpm').waitFor();
    await checkA11y(page, 'people: teams and budgets');
    await shot(page, 'budgets');
    // The overview breaks use down by the team the keys' owners are in
    // now: admin's key made the 7 requests; picking the team filters to it.
    await nav(page, 'Overview', 'Overview');
    await page.getByRole('tab', { name: 'By team' }).click();
    const teamRow = page.getByRole('row', { name: /platform/ });
    await teamRow.waitFor();
    assert.match(await teamRow.getByRole('cell').nth(1).innerText(), /^7\b/);
    await teamRow.click();
    await page.getByText('team: platform').waitFor();
    assert.equal(await page.getByTestId('stat-Requests').innerText(), '7');
    await nav(page, 'People', 'People and data planes');
    await page.getByRole('tab', { name: 'Teams and budgets' }).click();
    // Deleting the team takes its budget from the table at once.
    await page.getByRole('button', { name: 'New team' }).click();
    await input(page.getByRole('dialog'), 'Team name').fill('platform');
    await page.getByRole('button', { name: 'Save team' }).click();
    await page.getByRole('dialog').getByText('a team named platform already exists').waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('row', { name: /^platform/ }).getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('row', { name: /team:platform/ }).waitFor({ state: 'detached' });
    // The two "saved" notices fade out before the next page is checked (a
    // fading notice is half transparent, which axe measures as low contrast).
    await eventually(async () => assert.equal(await page.locator('.mantine-Notification-root').count(), 0), {
      what: 'the notices are gone',
    });
    await nav(page, 'Config as code', 'Configuration as code');
    await page.getByRole('button', { name: 'Load the live configuration' }).click();
    await eventually(async () => assert.match(await page.getByRole('textbox', { name: /^Apply file/ }).inputValue(), /name: mock/));
    assert.ok(!(await page.getByRole('textbox', { name: /^Apply file/ }).inputValue()).includes(env('POOL_SECRET')));
    await page.getByRole('button', { name: 'Show changes' }).click();
    await page.getByText('Nothing would change').waitFor();
    await checkA11y(page, 'config as code');
    await shot(page, 'config-as-code');
    // A failing plan leaves no earlier plan under its error.
    const live = await page.getByRole('textbox', { name: /^Apply file/ }).inputValue();
    await page.getByRole('textbox', { name: /^Apply file/ }).fill('providers: [');
    await page.getByRole('button', { name: 'Show changes' }).click();
    await page.getByText('The file has a problem').waitFor();
    assert.equal(await page.getByText('Nothing would change').count(), 0, 'the last plan is still shown');
    await page.getByRole('textbox', { name: /^Apply file/ }).fill(live);
    await nav(page, 'Sign-in settings', 'Sign-in settings');
    await input(page, 'Issuer URL').waitFor();
    await checkA11y(page, 'sign-in settings');
    await shot(page, 'sign-in-settings');
    await nav(page, 'My account', 'My account');
    // Said before it is done: a password change ends every session and revokes every token.
    await page.getByText(/signs you out everywhere, this browser included, and revokes all your API tokens/).waitFor();
    await checkA11y(page, 'account');
    await shot(page, 'account');

    // -- revoke: the next call is refused
    await nav(page, 'Client keys', 'Client keys');
    // The window's title names the page.
    await eventually(async () => assert.equal(await page.title(), 'Client keys · AI Gateway admin'));
    // Drawn a page at a time, with the count.
    assert.match(await page.getByTestId('page-count').innerText(), /^1–\d+ of \d+$/);
    const keyRow = page.getByRole('row', { name: /ui-app/ });
    await keyRow.getByText('active').waitFor();
    // What the key used today against its limit: the stored traces' cost.
    const traces = (await (await page.request.get(`${env('ADMIN_URL')}/api/traces?client_key=ui-app`)).json()).traces;
    const spent = traces.reduce((a, t) => a + t.cost, 0);
    assert.ok(traces.length >= 7 && spent > 0, `${traces.length} traces, ${spent} spent`);
    await keyRow.getByText(`${usd(spent)} of $100.00 today`).waitFor();
    assert.equal(await keyRow.getByRole('progressbar').count(), 1);
    await shot(page, 'client-keys');
    await checkA11y(page, 'client keys');
    await keyRow.getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await keyRow.getByText('revoked').waitFor();
    await eventually(
      async () => {
        const e = await sdk.chat.completions
          .create({ model: env('MODEL'), messages: [{ role: 'user', content: 'again' }] })
          .then(() => null, (err) => err);
        assert.ok(e, 'the revoked key was served');
        assert.equal(e.status, 401, String(e));
      },
      { timeout: 5_000, what: 'the revoked key is refused' },
    );

    // -- dark mode and phone width
    await nav(page, 'Overview', 'Overview');
    await page.getByRole('button', { name: 'Switch to dark mode' }).click();
    await page.getByRole('button', { name: 'Switch to light mode' }).waitFor();
    await checkA11y(page, 'overview, dark');
    await shot(page, 'overview-dark');
    await page.getByRole('button', { name: 'Switch to light mode' }).click();
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('button', { name: 'Toggle navigation' }).waitFor();
    await checkA11y(page, 'overview, phone width');
    await shot(page, 'overview-phone');
    // Keyboard: the navigation opens and a page is reached with keys alone.
    await page.getByRole('button', { name: 'Toggle navigation' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Requests' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 2, name: 'Requests' }).waitFor();

    // -- signing out ends the session on the control plane too
    const cookies = await b.context.cookies();
    const session = cookies.find((c) => c.name === 'aigw_session');
    assert.ok(session?.httpOnly && session.sameSite === 'Strict', JSON.stringify(session));
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.getByRole('button', { name: `Account menu for ${env('ADMIN_USER')}` }).click();
    await page.getByRole('menuitem', { name: 'Sign out' }).click();
    await page.waitForURL('**/login');
    const reuse = await fetch(env('ADMIN_URL') + '/api/auth/me', { headers: { cookie: `aigw_session=${session.value}` } });
    assert.equal(reuse.status, 401, 'the old session still works after sign-out');

    // -- a link followed signed out: sign in, then that very page
    await page.goto(`${env('ADMIN_URL')}/requests?model=${encodeURIComponent(env('MODEL'))}`);
    await page.waitForURL('**/login?next=**');
    assert.equal(await page.getByText('Your session ended').count(), 0);
    await input(page, 'Username').fill(env('ADMIN_USER'));
    await input(page, 'Password').fill(env('ADMIN_PASSWORD'));
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { level: 2, name: 'Requests' }).waitFor();
    assert.equal(await input(page, 'Model').inputValue(), env('MODEL'));
    // -- the session ends under the page: the sign-in page says so, and
    // signing in comes back
    await b.context.clearCookies();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'People' }).click();
    await page.getByText('Your session ended').waitFor();
    await input(page, 'Username').fill(env('ADMIN_USER'));
    await input(page, 'Password').fill(env('ADMIN_PASSWORD'));
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { level: 2, name: 'People and data planes' }).waitFor();
    // An address with no page says so, instead of showing another page.
    await page.goto(`${env('ADMIN_URL')}/nonexistent`);
    await page.getByRole('heading', { level: 2, name: 'Not found' }).waitFor();
    await eventually(async () => assert.equal(await page.title(), 'Not found · AI Gateway admin'));

    assert.deepEqual(b.errors, [], 'errors in the page');
    console.log(`RESULT ${JSON.stringify({ request_id: requestId, input_tokens: u.prompt_tokens })}`);
  } catch (e) {
    await onFailure(page, 'admin');
    throw e;
  } finally {
    await b.close();
  }
});
