// Unit tests of the form checks (src/validate.ts), the data planes' status
// (src/status.ts) and of the sign-in
// return path (src/nav.ts), run by `npm test`: tsc
// compiles the modules into node_modules/.cache/unit, node's runner tests them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_U32,
  expiryError,
  nameError,
  parseDecimal,
  parseModelMap,
  parseWhole,
} from '../node_modules/.cache/unit/validate.js';

test('a whole number is taken as typed or refused, never clamped', () => {
  assert.deepEqual(parseWhole(''), { value: null, error: null });
  assert.deepEqual(parseWhole(' 60 '), { value: 60, error: null });
  assert.equal(parseWhole('-5').error, 'must be a whole number ≥ 1');
  assert.equal(parseWhole('-100').error, 'must be a whole number ≥ 1');
  assert.equal(parseWhole('0').error, 'must be a whole number ≥ 1');
  assert.equal(parseWhole('1.5').error, 'must be a whole number ≥ 1');
  assert.equal(parseWhole('abc').error, 'must be a whole number ≥ 1');
  assert.deepEqual(parseWhole('0', { min: 0 }), { value: 0, error: null });
  assert.equal(parseWhole('-5', { min: 0 }).error, 'must be a whole number ≥ 0');
  assert.match(parseWhole('100000000000000000000').error, /^too large/);
  assert.match(parseWhole('1e20').error, /^too large/);
  assert.match(parseWhole(String(MAX_U32 + 1), { min: 0, max: MAX_U32 }).error, /^too large/);
  assert.equal(parseWhole('', { required: true }).error, 'required');
});

test('an amount is ≥ 0, finite and bounded', () => {
  assert.deepEqual(parseDecimal('2.5'), { value: 2.5, error: null });
  assert.deepEqual(parseDecimal('0'), { value: 0, error: null });
  assert.equal(parseDecimal('-1').error, 'must be ≥ 0');
  assert.match(parseDecimal('1e300').error, /^too large/);
  assert.equal(parseDecimal('1,5').error, 'must be a number ≥ 0');
  assert.equal(parseDecimal('', { required: true }).error, 'required');
});

test('names of only spaces are refused', () => {
  assert.equal(nameError('   '), 'name is required');
  assert.equal(nameError(' a '), null);
});

test('a model map entry without = is an error, not dropped', () => {
  assert.deepEqual(parseModelMap(['fast = gpt-4o-mini']), { map: { fast: 'gpt-4o-mini' }, error: null });
  assert.match(parseModelMap(['fast=gpt-4o-mini', 'oops']).error, /"oops" is not app-name=upstream-name/);
  assert.match(parseModelMap(['a=']).error, /not app-name=upstream-name/);
  assert.match(parseModelMap(['a=b', 'a=c']).error, /mapped twice/);
});

test('an expiry in the past is refused', () => {
  assert.equal(expiryError(0, 1000), null);
  assert.equal(expiryError(2000, 1000), null);
  assert.match(expiryError(500, 1000), /in the past/);
  assert.equal(expiryError(NaN, 1000), 'not a date and time');
});

test('sign-in returns to the page the user was on, and only to a page of this site', async () => {
  const { afterLogin, loginUrl } = await import('../node_modules/.cache/unit/nav.js');
  assert.equal(loginUrl('/people', false), '/login?next=%2Fpeople');
  assert.equal(loginUrl('/requests?model=x', true), '/login?next=%2Frequests%3Fmodel%3Dx&ended=1');
  assert.equal(loginUrl('/', false), '/login');
  assert.equal(afterLogin('?next=%2Fpeople'), '/people');
  assert.equal(afterLogin('?next=%2Frequests%3Fmodel%3Dx&ended=1'), '/requests?model=x');
  assert.equal(afterLogin(''), '/');
  assert.equal(afterLogin('?next=//evil.example'), '/');
  assert.equal(afterLogin('?next=/%5Cevil.example'), '/');
  assert.equal(afterLogin('?next=https://evil.example'), '/');
  assert.equal(afterLogin('?next=/login'), '/');
  // Browsers drop tabs and newlines from a URL: `/<tab>/host` is `//host`.
  assert.equal(afterLogin('?next=%2F%09%2Fevil.example'), '/');
  assert.equal(afterLogin('?next=%2F%0A%5Cevil.example'), '/');
  assert.equal(afterLogin('?next=%2Fx%5Cy'), '/');
  // Dot segments: `/./api` is `/api`, `/x/%2e%2e/login` is `/login`.
  assert.equal(afterLogin('?next=%2F.%2Fapi%2Fauth%2Fme'), '/');
  assert.equal(afterLogin('?next=%2Fx%2F%252e%252E%2Flogin'), '/');
  assert.equal(afterLogin('?next=%2Fapi'), '/');
  assert.equal(afterLogin('?next=%2Frequests%3Fq%3D..%2Fx'), '/requests?q=../x');
});

test('single sign-on asks to go on to the same page, and only to a page of this site', async () => {
  const { ssoStart } = await import('../node_modules/.cache/unit/nav.js');
  assert.equal(ssoStart('?next=%2Frequests%3Fmodel%3Dx'), '/api/auth/oidc/start?next=%2Frequests%3Fmodel%3Dx');
  assert.equal(ssoStart(''), '/api/auth/oidc/start');
  assert.equal(ssoStart('?next=//evil.example'), '/api/auth/oidc/start');
});

test("the sign-in page never shows words from its own address", async () => {
  const { loginError, SSO_FAILED } = await import('../node_modules/.cache/unit/nav.js');
  const http = (search, cookies) => loginError(search, cookies, 'http:');
  assert.equal(http('', ''), null);
  // A link with words of its own, or another code: nothing at all (not
  // even single sign-on's message, which only its own code brings), and
  // not the callback's cookie either.
  assert.equal(http('?error=Your%20account%20is%20locked%2C%20call%20555', ''), null);
  assert.equal(http('?error=Password%20changed%3A%20sign%20in%20again', 'aigw_login_error=planted'), null);
  assert.equal(http('?error=sso', ''), SSO_FAILED);
  // The callback's reason, from its cookie.
  assert.equal(
    http('?error=sso', 'theme=dark; aigw_login_error=the%20identity%20provider%20refused%3A%20access_denied'),
    'the identity provider refused: access_denied',
  );
  assert.equal(http('?error=sso', 'aigw_login_error=%E0%A4%A'), SSO_FAILED);
  assert.equal(http('?error=sso', 'aigw_login_error='), SSO_FAILED);
  assert.equal(http('?error=sso', `aigw_login_error=${'x'.repeat(500)}`).length, 300);
  // Over HTTPS only the __Host- cookie counts: a sibling subdomain can
  // plant the plain one.
  assert.equal(loginError('?error=sso', 'aigw_login_error=planted', 'https:'), SSO_FAILED);
  assert.equal(loginError('?error=sso', '__Host-aigw_login_error=refused', 'https:'), 'refused');
});

test('the sign-in page tells fixed notices by their code, and nothing for another', async () => {
  const { loginNotice, PASSWORD_CHANGED_LOGIN, loginError } = await import('../node_modules/.cache/unit/nav.js');
  const search = PASSWORD_CHANGED_LOGIN.slice(PASSWORD_CHANGED_LOGIN.indexOf('?'));
  assert.equal(loginNotice(search), 'Password changed: sign in again with the new one.');
  // Not an error: no "single sign-on did not complete".
  assert.equal(loginError(search, '', 'http:'), null);
  assert.equal(loginNotice(''), null);
  assert.equal(loginNotice('?notice=Your%20account%20is%20locked'), null);
  assert.equal(loginNotice('?notice=toString'), null);
  assert.equal(loginNotice('?notice=__proto__'), null);
});

test("a node that is not connected is not said to be in sync", async () => {
  const { snapshotStatus } = await import('../node_modules/.cache/unit/status.js');
  assert.deepEqual(snapshotStatus(true, 'v2', 'v2'), { label: 'in sync', color: 'teal' });
  assert.deepEqual(snapshotStatus(true, 'v1', 'v2'), { label: 'behind', color: 'orange' });
  assert.deepEqual(snapshotStatus(false, 'v2', 'v2'), { label: 'was in sync', color: 'gray' });
  assert.deepEqual(snapshotStatus(false, 'v1', 'v2'), { label: 'was behind', color: 'gray' });
});
