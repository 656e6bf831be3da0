// Helpers for the browser tests: Debian's Chromium through playwright-core
// (never a downloaded browser), sign-in, axe-core checks, screenshots, and
// waiting for a condition instead of sleeping.
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (the tests are started by e2e/tests/test_ui.py)`);
  return v;
}

/** A fresh browser profile; returns { context, page, errors, close }.
 *  `close` removes the profile too (each is a few MB, and every run made
 *  dozens of them). */
/** `trustSpki`: the base64 SHA-256 of a test certificate's key, which the
 * browser then takes as valid (an HTTPS origin signed by a test CA). */
export async function launch({ width = 1280, height = 900, colorScheme = 'light', trustSpki = '' } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'aigw-ui-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: env('CHROMIUM'),
    headless: true,
    viewport: { width, height },
    colorScheme,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...(trustSpki ? [`--ignore-certificate-errors-spki-list=${trustSpki}`] : []),
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15_000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const close = async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, page, errors, close };
}

export async function eventually(fn, { timeout = 20_000, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (let delay = 50; ; delay = Math.min(delay * 1.5, 500)) {
    try {
      const result = await fn();
      // A condition written as an expression must not pass by being returned.
      if (result === false) throw new Error('still false');
      return result;
    } catch (e) {
      last = e;
    }
    if (Date.now() + delay > deadline) {
      throw new Error(`not true after ${timeout} ms: ${what}: ${last?.message ?? last}`);
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** The text field labelled `label` (plain, or a Mantine combobox input). */
export function input(scope, label) {
  const name = new RegExp(`^${label}`);
  return scope.getByRole('textbox', { name }).or(scope.getByRole('combobox', { name })).first();
}

export async function signIn(page, user, password) {
  await page.goto(env('ADMIN_URL') + '/login');
  await input(page, 'Username').fill(user);
  await input(page, 'Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

/** Chooses `option` in the Mantine Select labelled `label`. */
export async function choose(page, label, option) {
  await input(page, label).click();
  await page.getByRole('option', { name: option, exact: true }).click();
}

/** Goes to a page through the navigation (no reload) and waits for its title. */
export async function nav(page, link, heading) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: link }).click();
  await page.getByRole('heading', { level: 2, name: heading }).waitFor();
}

/** No serious or critical axe-core violation on what the page shows now. */
export async function checkA11y(page, where) {
  // Let transitions finish, so colours are the final ones: a fading row
  // read mid-fade fails colour contrast (on a loaded machine 300 ms was not
  // always enough).
  await page.waitForTimeout(300);
  await settle(page);
  let { r, bad } = await axe(page);
  if (bad.length) {
    // Once more after a pause: what a late transition showed goes, a real
    // violation stays.
    await page.waitForTimeout(1000);
    await settle(page);
    ({ r, bad } = await axe(page));
  }
  if (bad.length) {
    const lines = bad.map(
      (v) => `${v.impact} ${v.id}: ${v.help}\n    ${v.nodes.slice(0, 4).map((n) => n.target.join(' ') + ' ' + (n.failureSummary ?? '').replace(/\n/g, ' ')).join('\n    ')}`,
    );
    throw new Error(`axe on ${where}:\n  ${lines.join('\n  ')}`);
  }
  return r.violations.length;
}

/** Waits (3 s at most) until no CSS transition or animation is running. */
async function settle(page) {
  await page
    .waitForFunction(() => document.getAnimations().every((a) => a.playState !== 'running'), null, { timeout: 3000 })
    .catch(() => {});
}

async function axe(page) {
  const r = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  return { r, bad: r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical') };
}

export async function shot(page, name, { fullPage = true } = {}) {
  const dir = env('SCREENSHOT_DIR');
  mkdirSync(dir, { recursive: true });
  await page.waitForTimeout(400);
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage });
}

/** Saves what the browser shows when a test fails. */
export async function onFailure(page, name) {
  try {
    const dir = env('ARTIFACT_DIR');
    mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: join(dir, `${name}-failure.png`), fullPage: true });
  } catch {
    /* the browser may be gone */
  }
}

/** The same money format as the UI (admin-web/ui/src/format.ts). */
export function usd(n) {
  if (n === 0) return '$0';
  if (Math.abs(n) < 0.01) return `$${n.toPrecision(2)}`;
  return `$${n.toFixed(2)}`;
}
