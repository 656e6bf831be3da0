// Unit tests of searching and paging the lists the API sends whole
// (src/paging.ts): client keys and prices are drawn one page at a time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PAGE_SIZE, matchesSearch, pageOf, pageText } from '../node_modules/.cache/unit/paging.js';

const keys = Array.from({ length: 5300 }, (_, i) => ({
  name: `key-${i + 1}`,
  owner: i % 2 ? 'mia' : 'Otto',
  models: i % 100 === 0 ? ['gpt-4o*', 'claude-*'] : [],
}));
const fields = (k) => [k.name, k.owner, ...k.models];

test('a search matches every word, in any field, case ignored', () => {
  assert.equal(matchesSearch(['app', 'mia'], ''), true);
  assert.equal(matchesSearch(['app', 'mia'], '   '), true);
  assert.equal(matchesSearch(['ui-app', 'Mia'], 'MIA'), true);
  assert.equal(matchesSearch(['ui-app', 'mia', 'gpt-4o*'], 'app gpt-4o'), true);
  assert.equal(matchesSearch(['ui-app', 'mia'], 'app otto'), false);
  assert.equal(matchesSearch([], 'x'), false);
});

test('one page of 50 of 5,300 keys, and its count', () => {
  const first = pageOf(keys, '', fields, 1);
  assert.equal(PAGE_SIZE, 50);
  assert.equal(first.rows.length, 50);
  assert.equal(first.rows[0].name, 'key-1');
  assert.deepEqual([first.page, first.pages, first.from, first.to, first.matched, first.total], [1, 106, 1, 50, 5300, 5300]);
  assert.equal(pageText(first), '1–50 of 5,300');
  const last = pageOf(keys, '', fields, 106);
  assert.equal(last.rows.length, 0 + 5300 - 105 * 50);
  assert.equal(pageText(last), '5,251–5,300 of 5,300');
});

test('a page past the last (after a delete or a search) is the last; a bad page is the first', () => {
  assert.equal(pageOf(keys, '', fields, 999).page, 106);
  assert.equal(pageOf(keys, '', fields, 0).page, 1);
  assert.equal(pageOf(keys, '', fields, Number.NaN).page, 1);
  assert.equal(pageOf(keys.slice(0, 3), '', fields, 2).rows.length, 3);
});

test('a search pages through what it matches, and says of how many', () => {
  const globs = pageOf(keys, 'CLAUDE', fields, 1);
  assert.equal(globs.matched, 53);
  assert.equal(globs.pages, 2);
  assert.equal(pageText(globs), '1–50 of 53 matching (5,300 in all)');
  assert.equal(pageText(pageOf(keys, 'claude', fields, 2)), '51–53 of 53 matching (5,300 in all)');
  const one = pageOf(keys, 'key-5300', fields, 1);
  assert.deepEqual(one.rows.map((k) => k.name), ['key-5300']);
  const none = pageOf(keys, 'nobody', fields, 3);
  assert.deepEqual([none.rows.length, none.page, none.pages, none.from, none.to], [0, 1, 1, 0, 0]);
  assert.equal(pageText(none), 'None of 5,300 match');
  // No rows at all: nothing to count (the table says it is empty).
  assert.equal(pageText(pageOf([], '', fields, 1)), '');
});
