// An admin signs in over HTTPS, in a real browser, through nginx ending TLS
// as it is usually set up: its default `Host` rewrite (admin-web sees its
// own address, not the browser's) and `X-Forwarded-Proto`. The session
// cookie is then `__Host-` named, Secure, host-only and HttpOnly, changes
// made with it pass the same-origin check, and signing out ends it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, input, launch, nav, onFailure, signIn } from '../lib.mjs';

test('https sign-in behind nginx', { timeout: 120_000 }, async () => {
  const b = await launch({ trustSpki: env('TRUST_SPKI') });
  const { page, context } = b;
  try {
    assert.ok(env('ADMIN_URL').startsWith('https://'));
    await signIn(page, env('ADMIN_USER'), env('ADMIN_PASSWORD'));
    const cookies = await context.cookies(env('ADMIN_URL'));
    const session = cookies.find((c) => c.name === '__Host-aigw_session');
    assert.ok(session, `no __Host- session cookie: ${cookies.map((c) => c.name)}`);
    assert.ok(session.secure && session.httpOnly && session.sameSite === 'Strict' && session.path === '/', JSON.stringify(session));
    assert.ok(!session.domain.startsWith('.'), `a host-only cookie, not ${session.domain}`);
    assert.equal(cookies.filter((c) => c.name === 'aigw_session').length, 0);

    // A change made with the session cookie (same origin, CSRF header).
    await nav(page, 'Client keys', 'Client keys');
    await page.getByRole('button', { name: 'New client key' }).click();
    await input(page.getByRole('dialog'), 'Name').fill('tls-app');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByTestId('secret-once').waitFor();
    await page.getByRole('button', { name: 'I have copied it' }).click();
    await page.getByRole('row', { name: /tls-app/ }).waitFor();

    await page.getByRole('button', { name: 'Account menu' }).click();
    await page.getByRole('menuitem', { name: 'Sign out' }).click();
    await page.waitForURL('**/login');
    const after = await context.cookies(env('ADMIN_URL'));
    assert.equal(after.filter((c) => c.name.endsWith('aigw_session')).length, 0, JSON.stringify(after));
    // (Playwright's own client, outside the browser: told the test CA's
    // certificate is fine.)
    const reuse = await page.request.get(env('ADMIN_URL') + '/api/auth/me', {
      headers: { cookie: `__Host-aigw_session=${session.value}` },
      ignoreHTTPSErrors: true,
    });
    assert.equal(reuse.status(), 401, 'the old session still works after sign-out');
    assert.deepEqual(b.errors, []);
  } catch (e) {
    await onFailure(page, 'https');
    throw e;
  } finally {
    await b.close();
  }
});
