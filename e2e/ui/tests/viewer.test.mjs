// A viewer reads everything and changes nothing: the UI offers no change,
// every change sent to /api directly with the viewer's session is refused,
// and no secret is on any page or in any answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkA11y, env, launch, nav, onFailure, signIn } from '../lib.mjs';

const WRITE_BUTTONS =
  /^(New provider|New price|New route|New client key|New user|New team|New budget|New webhook|Edit|Delete|Remove|Revoke|Apply|Save|Check now|Connect|Reconnect|Refresh now)$/;

test('a viewer can change nothing and sees no secret', { timeout: 180_000 }, async () => {
  const b = await launch();
  const { page } = b;
  const secrets = [env('POOL_SECRET'), env('APP_KEY'), env('WEBHOOK_SECRET'), env('WEBHOOK_PATH')];
  const noSecret = async (where) => {
    const html = await page.content();
    for (const s of secrets) assert.ok(!html.includes(s), `a secret is on ${where}`);
  };
  const noWriteButton = async (where) => {
    const names = await page.getByRole('button').evaluateAll((els) => els.map((e) => e.textContent?.trim() ?? ''));
    const offered = names.filter((n) => WRITE_BUTTONS.test(n));
    assert.deepEqual(offered, [], `${where} offers ${offered}`);
  };
  try {
    await signIn(page, 'vera', env('VIEWER_PASSWORD'));
    const links = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allInnerTexts();
    assert.ok(links.includes('Providers') && links.includes('People') && !links.includes('Sign-in settings'), String(links));

    await nav(page, 'Providers', 'Providers and pools');
    await page.getByRole('row', { name: /mock/ }).waitFor();
    await noWriteButton('providers');
    await noSecret('providers');
    await checkA11y(page, 'providers (viewer)');
    // Each tab's content is drawn first: its buttons come with its rows.
    for (const [tab, drawn] of [
      ['Credential health', page.getByRole('row', { name: /pool-a/ })],
      ['OAuth accounts', page.getByText(/No OAuth accounts/)],
      ['Routes', page.getByText(/No routes/)],
      ['Pricing', page.getByRole('row', { name: new RegExp(env('MODEL')) })],
    ]) {
      await page.getByRole('tab', { name: tab }).click();
      await drawn.waitFor();
      await noWriteButton(tab);
    }
    await nav(page, 'Client keys', 'Client keys');
    await page.getByRole('row', { name: /app/ }).waitFor();
    await noWriteButton('client keys');
    await noSecret('client keys');
    await checkA11y(page, 'client keys (viewer)');
    await nav(page, 'People', 'People and data planes');
    await page.getByRole('row', { name: /vera/ }).waitFor();
    await noWriteButton('people');
    await page.getByRole('tab', { name: 'Teams and budgets' }).click();
    await page.getByText(/No budgets/).waitFor();
    await noWriteButton('teams and budgets');
    // The alert webhooks: listed with the URL's origin and the secret's
    // hint, and nothing to change them with.
    await page.getByRole('tab', { name: 'Alert webhooks' }).click();
    const hook = page.getByRole('row', { name: /ops/ });
    await hook.getByText('https://hooks.example.invalid/…', { exact: true }).waitFor();
    await hook.getByText(`…${env('WEBHOOK_SECRET').slice(-4)}`, { exact: false }).waitFor();
    await noWriteButton('alert webhooks');
    await noSecret('alert webhooks');
    await checkA11y(page, 'alert webhooks (viewer)');
    await nav(page, 'Config as code', 'Configuration as code');
    await page.getByRole('button', { name: 'Load the live configuration' }).click();
    await page.getByRole('button', { name: 'Show changes' }).click();
    await page.getByText('Nothing would change').waitFor();
    await noWriteButton('config as code');
    await noSecret('config as code');
    await checkA11y(page, 'config as code (viewer)');

    // Through /api directly, with the viewer's own session cookie.
    const api = (method, path, data) =>
      page.request.fetch(`${env('ADMIN_URL')}/api${path}`, {
        method,
        headers: { 'x-aigw-csrf': '1' },
        data,
      });
    const refused = [
      ['PUT', '/providers/mock', { kind: 'openai-compatible', base_url: 'http://127.0.0.1:9', keys: [] }],
      ['DELETE', '/providers/mock'],
      ['PUT', '/pricing/gpt-4o-mini', { input: 0, output: 0 }],
      ['PUT', '/routes/gpt-*', { providers: ['mock'] }],
      ['PUT', '/client-keys/vera-key', {}],
      ['POST', '/client-keys/app/revoke'],
      ['DELETE', '/client-keys/app'],
      ['POST', '/users', { username: 'eve', password: 'eve-password', role: 'admin' }],
      ['PATCH', '/users/vera', { role: 'admin' }],
      ['POST', '/config/apply', { yaml: 'pricing: []\n', prune: true }],
      ['PUT', '/settings/oidc', { enabled: false, default_role: 'viewer' }],
      ['POST', '/providers/mock/keys/pool-a/check'],
      ['POST', '/providers/mock/keys/pool-a/oauth/start', {}],
      ['PUT', '/budgets/user:vera', { rpm: 1000 }],
      ['PUT', '/teams/readers', { members: ['vera'] }],
      ['PUT', '/webhooks/ops', { url: 'https://attacker.example.invalid/', secret: 'viewer-secret-0000' }],
      ['PUT', '/webhooks/vera', { url: 'https://attacker.example.invalid/', secret: 'viewer-secret-0000' }],
      ['DELETE', '/webhooks/ops'],
    ];
    for (const [method, path, body] of refused) {
      const r = await api(method, path, body);
      assert.equal(r.status(), 403, `${method} ${path}: ${r.status()} ${await r.text()}`);
      assert.equal((await r.json()).error.code, 'permission_denied');
    }
    for (const path of ['/providers', '/client-keys', '/config/export', '/traces', '/pool-health', '/audit', '/nodes',
                      '/credential-health', '/oauth/accounts', '/budgets', '/teams', '/webhooks']) {
      const r = await api('GET', path);
      assert.equal(r.status(), 200, path);
      const text = await r.text();
      for (const s of secrets) assert.ok(!text.includes(s), `a secret in GET ${path}`);
    }
    assert.deepEqual(b.errors, [], 'errors in the page');
  } catch (e) {
    await onFailure(page, 'viewer');
    throw e;
  } finally {
    await b.close();
  }
});
