// Unit tests of the alert webhooks' form checks (src/validate.ts) and of the
// audit log's address (src/nav.ts: filters and page kept in the query), run
// by `npm test` like validate.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  localTimeText,
  MAX_SECRET,
  parseLocalTime,
  rangeError,
  secretError,
  webhookUrlError,
} from '../node_modules/.cache/unit/validate.js';
import {
  AUDIT_KINDS,
  auditQuery,
  withAuditFilter,
  withAuditPage,
  withoutAuditFilters,
} from '../node_modules/.cache/unit/nav.js';

test('a webhook URL is refused as the control plane would refuse it, by its field', () => {
  assert.equal(webhookUrlError('https://hooks.example.com/aigw'), null);
  assert.equal(webhookUrlError(' http://10.0.0.5:8080/alerts '), null);
  assert.equal(webhookUrlError('https://hooks.slack.com/services/T0/B0/abc#x'), null);
  assert.equal(webhookUrlError(''), 'URL is required');
  assert.equal(webhookUrlError('   '), 'URL is required');
  for (const bad of ['hooks.example.com/aigw', 'ftp://hooks.example.com', 'HTTPS://hooks.example.com']) {
    assert.equal(webhookUrlError(bad), 'must start with https:// or http://', bad);
  }
  // Credentials before the host are refused (a password holding `/` too);
  // a receiver's token in the query is taken, as in the path.
  for (const bad of ['https://user:pw@hooks.example.com/x', 'https://user:p/w@hooks.example.com/x']) {
    assert.match(webhookUrlError(bad), /^must not carry credentials/, bad);
  }
  for (const ok of [
    'https://hooks.example.com/x?token=abc',
    'https://hooks.example.com?token=abc',
    'https://chat.example.com/v1/spaces/AAA/messages?key=k-1&token=t-2',
    'https://[::1]:9000/hook',
  ]) {
    assert.equal(webhookUrlError(ok), null, ok);
  }
  for (const bad of ['https://hooks.example.com:0/x', 'https://hooks.example.com:70000/x', 'https://hooks.example.com:x/y']) {
    assert.match(webhookUrlError(bad), /invalid port/, bad);
  }
  for (const bad of [
    'https://',
    'https:///path',
    'https://[::1/x',
    'https://hooks example.com',
    'https://hooks.example.com/a\tb',
    'https://hooks.example.com/x?token=a b',
    'https://hooks.example.com/<x>',
  ]) {
    assert.equal(webhookUrlError(bad), 'is not a valid URL', bad);
  }
});

test('a masked webhook URL is kept as listed, and a changed one must be whole', () => {
  const listed = 'https://hooks.slack.com/…';
  assert.equal(webhookUrlError(listed, listed), null);
  assert.match(webhookUrlError('https://hooks.example.com/…', listed), /type the whole URL/);
  assert.equal(webhookUrlError('https://hooks.example.com/new', listed), null);
});

test('a webhook secret is required only for a new one, and is header-safe', () => {
  assert.equal(secretError('', false), null, 'an empty secret keeps the stored one');
  assert.equal(secretError('', true), 'required');
  assert.equal(secretError('', true, 'a new webhook needs its secret'), 'a new webhook needs its secret');
  assert.equal(secretError('whsec-0123456789', true), null);
  assert.match(secretError('two words', false), /visible ASCII/);
  assert.match(secretError('line\nbreak', false), /visible ASCII/);
  assert.match(secretError('clé', false), /visible ASCII/);
  assert.equal(secretError('x'.repeat(MAX_SECRET), false), null);
  assert.match(secretError('x'.repeat(MAX_SECRET + 1), false), /^too long/);
});

test('a local date and time is read as typed, and written back the same', () => {
  assert.deepEqual(parseLocalTime(''), { value: null, error: null });
  const at = parseLocalTime('2025-03-04T05:06');
  assert.equal(at.error, null);
  assert.equal(at.value, new Date(2025, 2, 4, 5, 6).getTime());
  assert.equal(localTimeText(at.value), '2025-03-04T05:06');
  assert.equal(parseLocalTime('2025-03-04T05:06:07').value, new Date(2025, 2, 4, 5, 6, 7).getTime());
  // Years before 100 are not taken as 19xx (the browser reports them while a year is typed).
  const early = parseLocalTime('0020-01-01T00:00');
  assert.equal(new Date(early.value).getFullYear(), 20);
  assert.equal(localTimeText(early.value), '0020-01-01T00:00');
  for (const bad of ['2025-02-30T10:00', '2025-13-01T10:00', 'yesterday', '2025-03-04']) {
    assert.equal(parseLocalTime(bad).error, 'not a date and time', bad);
  }
  assert.equal(rangeError(null, 5), null);
  assert.equal(rangeError(5, null), null);
  assert.equal(rangeError(5, 6), null);
  assert.equal(rangeError(5, 5), 'must be after From');
  assert.equal(rangeError(6, 5), 'must be after From');
});

test("the audit log's filters and page are read from its address", () => {
  assert.deepEqual(auditQuery(''), { filters: {}, cursors: [] });
  assert.deepEqual(
    auditQuery('?actor=user%3Aolga&object_kind=webhook&since_ms=1700000000000&until_ms=1800000000000&page=a&page=b'),
    {
      filters: { actor: 'user:olga', object_kind: 'webhook', since_ms: 1700000000000, until_ms: 1800000000000 },
      cursors: ['a', 'b'],
    },
  );
  // Empty values and times that are not whole milliseconds are left out.
  assert.deepEqual(auditQuery('actor=%20&object_kind=&since_ms=yesterday&until_ms=1.5&page='), {
    filters: {},
    cursors: [],
  });
});

test('setting an audit filter goes back to the first page and keeps the rest', () => {
  const q = 'actor=user%3Aolga&page=a&page=b';
  const kind = new URLSearchParams(withAuditFilter(q, 'object_kind', 'team'));
  assert.equal(kind.get('actor'), 'user:olga');
  assert.equal(kind.get('object_kind'), 'team');
  assert.deepEqual(kind.getAll('page'), []);
  assert.equal(new URLSearchParams(withAuditFilter(q, 'since_ms', 1234)).get('since_ms'), '1234');
  assert.equal(new URLSearchParams(withAuditFilter(q, 'actor', '')).has('actor'), false);
  assert.equal(new URLSearchParams(withAuditFilter(q, 'actor', null)).has('actor'), false);
  assert.equal(withoutAuditFilters('actor=a&object_kind=b&since_ms=1&until_ms=2&page=c&other=x'), 'other=x');
  // Paging: Older appends the next cursor, Newer drops the last.
  assert.deepEqual(new URLSearchParams(withAuditPage(q, ['a', 'b'], 'c')).getAll('page'), ['a', 'b', 'c']);
  assert.deepEqual(new URLSearchParams(withAuditPage(q, ['a', 'b'], null)).getAll('page'), ['a']);
  assert.equal(new URLSearchParams(withAuditPage(q, ['a', 'b'], null)).get('actor'), 'user:olga');
});

test('the audit log offers every kind of object the control plane records, webhooks included', () => {
  for (const k of ['provider', 'client_key', 'budget', 'team', 'webhook', 'user', 'session']) {
    assert.ok(AUDIT_KINDS.includes(k), k);
  }
  assert.equal(new Set(AUDIT_KINDS).size, AUDIT_KINDS.length);
});
