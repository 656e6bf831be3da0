// An admin sets up where budget alerts go, in a real browser: from the
// budgets to the alert webhooks, a new webhook whose URL and secret are
// checked by their fields, listed with its secret's hint and never the
// secret, edited (the secret left as it is), deleted after a confirmation.
// Then the audit log: filtered by kind (the webhook's three changes),
// by actor and kind (an operator's 55 team changes, over two pages), a
// reload keeps filters and page, a time range, and Clear. The stack
// (test_ui.py) made the operator olga and her teams.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkA11y, choose, env, eventually, input, launch, nav, onFailure, shot, signIn } from '../lib.mjs';

const URL1 = 'https://hooks.example.invalid/services/aigw';
// A receiver's token in the query is taken (shown whole to admins only).
const URL2 = 'https://alerts.example.invalid/aigw/v2?token=rcv-0123';

test('alert webhooks, and the audit log filtered', { timeout: 180_000 }, async () => {
  const b = await launch();
  const { page } = b;
  const secret = env('WEBHOOK_SECRET');
  const listed = async () =>
    (await (await page.request.get(`${env('ADMIN_URL')}/api/webhooks`)).json()).webhooks;
  /** The audit log's rows as shown, each row's cells joined by tabs. */
  const rows = () => page.locator('tbody tr').allInnerTexts();
  try {
    await signIn(page, env('ADMIN_USER'), env('ADMIN_PASSWORD'));
    await nav(page, 'People', 'People and data planes');
    // Found from the budgets, which alerts are about.
    await page.getByRole('tab', { name: 'Teams and budgets' }).click();
    await page.getByRole('link', { name: 'alert webhooks' }).click();
    await page.waitForURL((u) => u.pathname === '/people/webhooks');
    await page.getByRole('tab', { name: 'Alert webhooks', selected: true }).waitFor();
    await page.getByText('No webhooks: budget alerts are only recorded in the audit log').waitFor();
    await checkA11y(page, 'alert webhooks, none');

    // -- a new webhook: URL and secret are checked by their fields
    await page.getByRole('button', { name: 'New webhook' }).click();
    const dialog = page.getByRole('dialog');
    await input(dialog, 'Name').fill('ops-alerts');
    await input(dialog, 'URL').fill('hooks.example.invalid/aigw');
    await dialog.getByRole('button', { name: 'Save webhook' }).click();
    await dialog.getByText('must start with https:// or http://').waitFor();
    await dialog.getByText('a new webhook needs its secret').waitFor();
    await input(dialog, 'URL').fill('https://ops:pw@hooks.example.invalid/aigw');
    await dialog.getByText(/must not carry credentials/).waitFor();
    await input(dialog, 'URL').fill('https://hooks.example.invalid:99999/aigw');
    await dialog.getByText(/invalid port/).waitFor();
    await input(dialog, 'URL').fill(URL1);
    await dialog.getByLabel(/^Secret/).fill('has a space');
    await dialog.getByText(/visible ASCII characters only/).waitFor();
    await dialog.getByLabel(/^Secret/).fill(secret);
    await dialog.getByText(/visible ASCII characters only/).waitFor({ state: 'detached' });
    await checkA11y(page, 'new webhook dialog');
    await dialog.getByRole('button', { name: 'Save webhook' }).click();
    await dialog.waitFor({ state: 'detached' });
    const row = page.getByRole('row', { name: /ops-alerts/ });
    await row.waitFor();
    // Listed with the hint of its secret, never the secret.
    const [stored] = await listed();
    assert.equal(stored.url, URL1);
    assert.ok(stored.secret_hint.endsWith(`…${secret.slice(-4)}`), stored.secret_hint);
    assert.ok(!stored.secret_hint.includes(secret));
    const cells = await row.getByRole('cell').allInnerTexts();
    assert.deepEqual(cells.slice(0, 3), ['ops-alerts', URL1, stored.secret_hint]);
    assert.ok(!(await page.content()).includes(secret), 'the webhook secret is on the page');
    await eventually(async () => assert.equal(await page.locator('.mantine-Notification-root').count(), 0), {
      what: 'the notices are gone',
    });
    await checkA11y(page, 'alert webhooks');
    await shot(page, 'alert-webhooks');

    // "New webhook" with a name in use replaces nothing.
    await page.getByRole('button', { name: 'New webhook' }).click();
    await input(dialog, 'Name').fill('ops-alerts');
    await input(dialog, 'URL').fill(URL2);
    await dialog.getByLabel(/^Secret/).fill('another-secret-0000');
    await dialog.getByRole('button', { name: 'Save webhook' }).click();
    await dialog.getByText('a webhook named ops-alerts already exists').waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    assert.deepEqual(await listed(), [stored]);

    // -- edited: a new URL needs the secret again (kept, it would sign
    // alerts for whoever runs the new URL)
    await row.getByRole('button', { name: 'Edit' }).click();
    assert.ok(await input(dialog, 'Name').isDisabled());
    assert.equal(await dialog.getByLabel(/^Secret/).inputValue(), '', 'the secret is in the form');
    await dialog.getByText(`Stored (${stored.secret_hint}); leave empty to keep it (a new URL needs it again)`).waitFor();
    await input(dialog, 'URL').fill(URL2);
    await dialog.getByRole('button', { name: 'Save webhook' }).click();
    await dialog.getByText(/re-enter the secret: the URL changed/).waitFor();
    assert.deepEqual(await listed(), [stored], 'refused, nothing changed');
    await dialog.getByLabel(/^Secret/).fill('rotated-secret-0123wxyz');
    await dialog.getByRole('button', { name: 'Save webhook' }).click();
    await dialog.waitFor({ state: 'detached' });
    await row.getByText(URL2).waitFor();
    assert.deepEqual(await listed(), [{ ...stored, url: URL2, secret_hint: 'rota…wxyz' }]);
    assert.ok((await row.innerText()).includes('rota…wxyz'));

    // -- deleted, once confirmed
    await row.getByRole('button', { name: 'Delete' }).click();
    await dialog.getByText('Budget alerts are no longer posted to it.').waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    assert.equal((await listed()).length, 1, 'deleted without confirmation');
    await row.getByRole('button', { name: 'Delete' }).click();
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await row.waitFor({ state: 'detached' });
    await page.getByText('No webhooks: budget alerts are only recorded in the audit log').waitFor();
    assert.deepEqual(await listed(), []);

    // -- the audit log by kind: the webhook's three changes, nothing else
    await page.getByRole('tab', { name: 'Audit log' }).click();
    await page.waitForURL((u) => u.pathname === '/people/audit');
    await choose(page, 'Object kind', 'webhook');
    await page.waitForURL(/[?&]object_kind=webhook/);
    await eventually(async () => {
      const shown = await rows();
      assert.equal(shown.length, 3, shown.join('\n'));
      assert.deepEqual(
        shown.map((r) => r.split('\t').slice(1, 4)),
        [
          ['user:admin', 'delete', 'webhook ops-alerts'],
          ['user:admin', 'update', 'webhook ops-alerts'],
          ['user:admin', 'create', 'webhook ops-alerts'],
        ],
      );
    }, { what: 'only the webhook changes are listed' });
    assert.ok(!(await page.content()).includes(secret), 'the webhook secret is in the audit log');
    await eventually(async () => assert.equal(await page.locator('.mantine-Notification-root').count(), 0), {
      what: 'the notices are gone',
    });
    await checkA11y(page, 'audit log, by kind');
    await shot(page, 'audit-log');

    // -- by actor and kind: olga's team changes, over two pages
    // Typed key by key, as fast as the browser takes keys: none is lost.
    await input(page, 'Actor').pressSequentially('user:olga');
    await page.keyboard.press('Escape');
    await choose(page, 'Object kind', 'team');
    await page.waitForURL((u) => u.searchParams.get('actor') === 'user:olga' && u.searchParams.get('object_kind') === 'team');
    const olgasTeams = async (n) => {
      const shown = await rows();
      assert.equal(shown.length, n, shown.join('\n'));
      for (const r of shown) assert.match(r, /\tuser:olga\tcreate\tteam t-\d\d\t/);
    };
    await eventually(() => olgasTeams(50), { what: "a page of olga's teams" });
    await page.getByRole('button', { name: 'Older' }).click();
    await eventually(() => olgasTeams(5), { what: "the rest of olga's teams" });
    await page.getByTestId('audit-page').getByText('Page 2').waitFor();
    assert.ok(await page.getByRole('button', { name: 'Older' }).isDisabled());
    await checkA11y(page, 'audit log, by actor and kind');

    // -- a reload keeps the filters and the page
    await page.reload();
    await page.getByRole('heading', { level: 2, name: 'People and data planes' }).waitFor();
    await page.getByRole('tab', { name: 'Audit log', selected: true }).waitFor();
    await page.getByTestId('audit-page').getByText('Page 2').waitFor();
    assert.equal(await input(page, 'Actor').inputValue(), 'user:olga');
    assert.equal(await input(page, 'Object kind').inputValue(), 'team');
    await eventually(() => olgasTeams(5), { what: 'the second page after a reload' });
    await page.getByRole('button', { name: 'Newer' }).click();
    await eventually(() => olgasTeams(50), { what: 'the first page again' });

    // -- a time range: before the gateway existed there is nothing
    await page.getByLabel('Before', { exact: true }).fill('2001-01-01T00:00');
    await page.waitForURL((u) => u.searchParams.has('until_ms'));
    await page.getByText('No changes match these filters').waitFor();
    // A range that ends before it starts says so by its end.
    await page.getByLabel('From', { exact: true }).fill('2002-01-01T00:00');
    await page.getByText('must be after From').waitFor();
    // From then on, up to now: olga's teams again.
    await page.getByLabel('Before', { exact: true }).fill('');
    await eventually(() => olgasTeams(50), { what: 'the teams since 2002' });
    assert.ok(new URL(page.url()).searchParams.has('since_ms'));
    await page.reload();
    await page.getByTestId('audit-page').waitFor();
    assert.equal(await page.getByLabel('From', { exact: true }).inputValue(), '2002-01-01T00:00');

    // -- Clear: every change again, the fields emptied
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await page.waitForURL((u) => u.pathname === '/people/audit' && u.search === '');
    await eventually(async () => {
      assert.equal(await input(page, 'Actor').inputValue(), '');
      assert.equal(await input(page, 'Object kind').inputValue(), '');
      assert.equal(await page.getByLabel('From', { exact: true }).inputValue(), '');
    }, { what: 'the filter fields are emptied' });
    await eventually(async () => {
      const shown = await rows();
      assert.equal(shown.length, 50);
      assert.ok(shown.some((r) => !r.includes('user:olga')), 'still filtered by actor');
    }, { what: 'every change again' });

    assert.deepEqual(b.errors, [], 'errors in the page');
  } catch (e) {
    await onFailure(page, 'webhooks');
    throw e;
  } finally {
    await b.close();
  }
});
