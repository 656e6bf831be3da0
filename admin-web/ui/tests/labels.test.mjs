// Unit tests of what the UI says of the API's codes (src/labels.ts): why a
// request failed, which limit refused it, what a configuration plan
// deletes; and the role a new API token starts with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  defaultTokenRole,
  failureText,
  grantableRoles,
  planSummary,
  plural,
  refusalText,
} from '../node_modules/.cache/unit/labels.js';

test('counts say one or many', () => {
  assert.equal(plural(1, 'change'), '1 change');
  assert.equal(plural(14, 'change'), '14 changes');
  assert.equal(plural(0, 'deletion'), '0 deletions');
  assert.equal(plural(5300, 'key'), '5,300 keys');
  assert.equal(plural(2, 'OAuth template', 'OAuth templates'), '2 OAuth templates');
});

test('why a request failed is said in words; unknown codes and free text are shown as they are', () => {
  assert.equal(failureText('rate_limited'), 'a rate or budget limit refused it');
  assert.equal(failureText('upstream_timeout'), 'the provider did not answer in time');
  assert.equal(failureText('client closed the connection early'), null);
  assert.equal(failureText('toString'), null);
  assert.equal(failureText(''), null);
});

test('the limit that refused a request is named by its key, owner or team', () => {
  const t = { client_key_name: 'ui-app', owner: 'mia' };
  assert.equal(refusalText('user:5222e2f260af4c1b/tokens_per_day', t), 'the budget of user mia (tokens per day)');
  assert.equal(refusalText('key:0f3a/rpm', t), 'the limit of client key ui-app (requests per minute)');
  assert.equal(refusalText('team:77aa/cost_per_month', t), 'the budget of the team of user mia (cost per month)');
  // Without an owner a user's or team's budget keeps its id.
  const ownerless = { client_key_name: 'ci', owner: '' };
  assert.equal(refusalText('user:5222e2f260af/tokens_per_day', ownerless), 'budget user:5222e2f260af (tokens per day)');
  assert.equal(refusalText('team:77aa/concurrent', ownerless), 'budget team:77aa (concurrent requests)');
  // A limit this UI does not know yet, and no limit at all.
  assert.equal(refusalText('key:1/images_per_day', t), 'the limit of client key ui-app (images per day)');
  assert.equal(refusalText('odd', t), 'odd');
});

test('a plan with --prune says how many deletions of what, apart from the other changes', () => {
  const c = (kind, name, action) => ({ kind, name, action, details: [] });
  const plan = [
    c('provider', 'openai', 'delete'),
    c('provider', 'anthropic', 'delete'),
    c('team', 'platform', 'delete'),
    c('client_key', 'ci', 'delete'),
    c('price', 'gpt-4o', 'update'),
    c('route', 'gpt-*', 'create'),
    c('provider', 'mock', 'unchanged'),
  ];
  const s = planSummary(plan);
  assert.equal(s.changes, 6);
  assert.deepEqual(s.deletions.map((d) => d.name), ['openai', 'anthropic', 'platform', 'ci']);
  assert.equal(s.deletedKinds, '2 providers, 1 team, 1 client key');
  const none = planSummary([c('price', 'x', 'create'), c('user_budget', 'mia', 'unchanged')]);
  assert.deepEqual([none.changes, none.deletions.length, none.deletedKinds], [1, 0, '']);
  assert.equal(planSummary([c('user_budget', 'a', 'delete'), c('user_budget', 'b', 'delete')]).deletedKinds, '2 user budgets');
});

test('a new API token starts with the least powerful role the caller may give', () => {
  assert.deepEqual(grantableRoles('admin'), ['admin', 'operator', 'viewer', 'member']);
  assert.equal(defaultTokenRole('admin'), 'viewer');
  assert.equal(defaultTokenRole('operator'), 'viewer');
  assert.deepEqual(grantableRoles('member'), ['member']);
  assert.equal(defaultTokenRole('member'), 'member');
  assert.equal(defaultTokenRole('viewer'), 'viewer');
});
