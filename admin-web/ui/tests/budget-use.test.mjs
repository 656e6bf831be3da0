// Unit tests of the "Used" column of keys and budgets (src/budgetUse.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usageLines } from '../node_modules/.cache/unit/budgetUse.js';

const use = (region, tokens_today, cost_today, cost_this_month) => ({ region, tokens_today, cost_today, cost_this_month });

test('a regional limit shows the region nearest to it', () => {
  const lines = usageLines({ tokens_per_day: 2000, cost_per_month: 10 }, [use('eu', 500, 0.5, 2), use('us', 1500, 0.25, 8)]);
  assert.deepEqual(lines, [
    { text: '1,500 of 2,000 tokens today in us', percent: 75 },
    { text: '$8.00 of $10.00 this month in us', percent: 80 },
  ]);
});

test('a global limit shows the whole, and a used-up one is full', () => {
  assert.deepEqual(usageLines({ cost_per_day: 5, global: true }, [use('', 100, 6, 6)]), [
    { text: '$6.00 of $5.00 today', percent: 100 },
  ]);
  // Nothing used yet still shows the limit, empty.
  assert.deepEqual(usageLines({ cost_per_day: 5 }, []), [{ text: '$0 of $5.00 today', percent: 0 }]);
});

test('use without a tokens or cost limit is summed over regions', () => {
  assert.deepEqual(usageLines({ rpm: 60 }, [use('eu', 12000, 0.5, 1), use('us', 345, 0.25, 2)]), [
    { text: '12.3K tokens · $0.75 today · $3.00 this month', percent: null },
  ]);
  assert.deepEqual(usageLines(null, undefined), []);
});
