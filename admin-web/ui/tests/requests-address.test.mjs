// Unit tests of the request log's address (src/nav.ts): its filters,
// period and page are the page's query, and every change is built on the
// query as it is now, so quick changes keep each other. Run by `npm test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requestsQuery, withQueryValue, withRequestsFilter, withRequestsPage } from '../node_modules/.cache/unit/nav.js';

test("the request log's filters, period and page are read from its address", () => {
  assert.deepEqual(requestsQuery(''), { filters: {}, period: '24h', cursors: [], at: 0 });
  assert.deepEqual(
    requestsQuery('?client_key=app&model=gpt-4o-mini&status_class=5xx&period=7d&page=a&page=b&at=1700000000000&other=x'),
    {
      filters: { client_key: 'app', model: 'gpt-4o-mini', status_class: '5xx' },
      period: '7d',
      cursors: ['a', 'b'],
      at: 1700000000000,
    },
  );
  // Empty values are no filter; an anchor that is no number is none.
  assert.deepEqual(requestsQuery('client_key=&model=&period=&page=&at=soon'), {
    filters: {},
    period: '24h',
    cursors: [],
    at: 0,
  });
});

test('two filters set one after the other, each on the address as it is then, keep both', () => {
  // As the page does it: each change reads the address, changes it, and
  // writes it back before the page is drawn again.
  let address = 'period=1h&page=a&at=1700000000000';
  address = withRequestsFilter(address, 'client_key', 'app');
  address = withRequestsFilter(address, 'status_class', 'ok');
  const q = requestsQuery(address);
  assert.deepEqual(q.filters, { client_key: 'app', status_class: 'ok' });
  assert.equal(q.period, '1h');
  // A new filter starts from the first page, anchored afresh.
  assert.deepEqual(q.cursors, []);
  assert.equal(q.at, 0);
});

test('a filter typed key by key keeps every key and the other filters', () => {
  let address = withRequestsFilter('', 'client_key', 'app');
  let typed = '';
  for (const key of 'gpt-4o-mini') {
    typed += key;
    address = withRequestsFilter(address, 'model', typed);
  }
  assert.deepEqual(requestsQuery(address).filters, { client_key: 'app', model: 'gpt-4o-mini' });
  // Emptied: the filter is gone, the other kept.
  address = withRequestsFilter(address, 'model', '');
  assert.deepEqual(requestsQuery(address).filters, { client_key: 'app' });
  assert.equal(withRequestsFilter(address, 'client_key', null), '');
});

test('the period is a filter too; the default one is left out of the address', () => {
  const q = 'model=m&page=a&at=5';
  assert.equal(withRequestsFilter(q, 'period', '7d'), 'model=m&period=7d');
  assert.equal(withRequestsFilter('model=m&period=7d', 'period', '24h'), 'model=m');
});

test('paging keeps the filters and anchors the period while past the first page', () => {
  const q = 'model=m&period=1h';
  const older = withRequestsPage(q, 'c1', 1700000000000);
  assert.deepEqual(requestsQuery(older), {
    filters: { model: 'm' },
    period: '1h',
    cursors: ['c1'],
    at: 1700000000000,
  });
  const older2 = withRequestsPage(older, 'c2', 1800000000000);
  // The anchor is what the caller passes: the page passes the one in the address.
  assert.deepEqual(requestsQuery(older2).cursors, ['c1', 'c2']);
  assert.deepEqual(requestsQuery(withRequestsPage(older2, null, 1700000000000)).cursors, ['c1']);
  // Back on the first page: no cursor, no anchor.
  assert.equal(withRequestsPage(older, null, 1700000000000), 'model=m&period=1h');
  assert.equal(withRequestsPage(older2, 'first', 1700000000000), 'model=m&period=1h');
});

test('withQueryValue sets or removes one value and resets only what it is told to', () => {
  assert.equal(withQueryValue('a=1&page=x&b=2', 'a', 'z', ['page']), 'a=z&b=2');
  assert.equal(withQueryValue('a=1&page=x', 'a', null), 'page=x');
  assert.equal(withQueryValue('a=1', 'n', 0), 'a=1&n=0');
  assert.equal(withQueryValue('a=1', 'a', ''), '');
});

test('an address names its page, or a page the role may not see, or none', async () => {
  const { pageAccess, pageAt, pageTitle } = await import('../node_modules/.cache/unit/nav.js');
  const viewer = (m) => m !== 'SignInService/GetOidcSettings';
  const member = () => false;
  assert.equal(pageTitle('/keys', viewer), 'Client keys · AI Gateway admin');
  assert.equal(pageTitle('/', member), 'Overview · AI Gateway admin');
  assert.equal(pageTitle('/requests/abc-123', member), 'Requests · AI Gateway admin');
  assert.equal(pageTitle('/people/audit', viewer), 'People · AI Gateway admin');
  assert.equal(pageTitle('/login', member), 'Sign in · AI Gateway admin');
  assert.equal(pageAt('/keys/')?.label, 'Client keys');
  // No page there.
  assert.equal(pageAccess('/nonexistent', viewer), 'not-found');
  assert.equal(pageAccess('/keys/x', viewer), 'not-found');
  assert.equal(pageAccess('/requests/a/b', viewer), 'not-found');
  assert.equal(pageAccess('/keysx', viewer), 'not-found');
  assert.equal(pageTitle('/nonexistent', viewer), 'Not found · AI Gateway admin');
  // A page this role may not see.
  assert.equal(pageAccess('/settings', viewer), 'forbidden');
  assert.equal(pageAccess('/providers', member), 'forbidden');
  assert.equal(pageAccess('/people/audit', member), 'forbidden');
  assert.equal(pageTitle('/config', member), 'No access · AI Gateway admin');
  assert.equal(pageAccess('/account', member), 'page');
});
