// Signing in through a real OpenID Connect provider (oauth2-mock-server):
// the button appears once an admin set it up, the first sign-in creates the
// user with the default role, the next signs in the same user (and comes
// back to the page it was sent from), and a callback this browser did not
// start is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkA11y, env, input, launch, onFailure } from '../lib.mjs';

test('sign in with OpenID Connect', { timeout: 120_000 }, async () => {
  const b = await launch();
  const { page } = b;
  const ssoSignIn = async () => {
    await page.goto(env('ADMIN_URL') + '/login');
    await page.getByRole('link', { name: 'Sign in with Mock IdP' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
  };
  try {
    await page.goto(env('ADMIN_URL') + '/login');
    await page.getByRole('link', { name: 'Sign in with Mock IdP' }).waitFor();
    await checkA11y(page, 'sign-in page with SSO');
    await ssoSignIn();
    const account = page.getByRole('button', { name: 'Account menu' });
    assert.match(await account.innerText(), /dana\s*viewer/i);
    const links = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allInnerTexts();
    assert.ok(!links.includes('Sign-in settings'), String(links));
    const me = await (await page.request.get(`${env('ADMIN_URL')}/api/auth/me`)).json();
    assert.equal(me.username, 'dana');
    assert.equal(me.kind, 'session');

    await account.click();
    await page.getByRole('menuitem', { name: 'Sign out' }).click();
    await page.waitForURL('**/login');
    await ssoSignIn();
    assert.match(await page.getByRole('button', { name: 'Account menu' }).innerText(), /dana/);

    // Sent to sign in from a page, single sign-on comes back to that page.
    await page.getByRole('button', { name: 'Account menu' }).click();
    await page.getByRole('menuitem', { name: 'Sign out' }).click();
    await page.waitForURL('**/login');
    await page.goto(env('ADMIN_URL') + '/requests?period=7d');
    await page.waitForURL('**/login?next=*');
    await page.getByRole('link', { name: 'Sign in with Mock IdP' }).click();
    await page.waitForURL((u) => u.pathname === '/requests' && u.searchParams.get('period') === '7d');
    await page.getByRole('navigation', { name: 'Main' }).waitFor();

    // A callback with a state this browser never got is refused.
    await b.context.clearCookies();
    await page.goto(`${env('ADMIN_URL')}/api/auth/oidc/callback?code=stolen&state=forged`);
    await page.waitForURL('**/login?error=*');
    await page.getByRole('alert').getByText(/not started in this browser/).waitFor();
    // The reason above was shown once: single sign-on's code again brings
    // only its fixed words.
    await page.goto(`${env('ADMIN_URL')}/login?error=sso`);
    await page.getByRole('alert').getByText(/did not complete/).waitFor();
    assert.ok(!(await page.getByRole('alert').innerText()).includes('not started in this browser'));
    // A link to the sign-in page with words of its own (or any code but
    // single sign-on's) shows nothing: none of its words, and no error.
    await page.goto(`${env('ADMIN_URL')}/login?error=Your%20account%20is%20locked%2C%20call%20555`);
    await input(page, 'Username').waitFor();
    assert.equal(await page.getByRole('alert').count(), 0);
    assert.ok(!(await page.locator('body').innerText()).includes('locked'));
    await page.goto(`${env('ADMIN_URL')}/login?notice=Your%20account%20is%20locked`);
    await input(page, 'Username').waitFor();
    assert.equal(await page.getByText('Signed out').count(), 0);
    assert.ok(!(await page.locator('body').innerText()).includes('locked'));
    assert.deepEqual(b.errors, [], 'errors in the page');
  } catch (e) {
    await onFailure(page, 'oidc');
    throw e;
  } finally {
    await b.close();
  }
});
