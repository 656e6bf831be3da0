// Unit tests of the overview's live view retry policy (src/live.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HEALTHY_MS, afterLiveError, errorCode, backoffStep } from '../node_modules/.cache/unit/live.js';

test('a lost connection or an unavailable control plane is retried, backing off to 30 s', () => {
  assert.equal(afterLiveError(null, 0), 1000);
  assert.equal(afterLiveError('unavailable', 1), 2000);
  assert.equal(afterLiveError('internal', 2), 5000);
  assert.equal(afterLiveError(null, 4), 30000);
  assert.equal(afterLiveError(null, 50), 30000);
  // Spread by ±20 %.
  assert.equal(afterLiveError(null, 4, 0), 24000);
  assert.equal(afterLiveError(null, 4, 1), 36000);
});

test('only a stream that stayed up a while starts the backoff afresh', () => {
  assert.equal(backoffStep(3, HEALTHY_MS), 0);
  assert.equal(backoffStep(3, 1000), 3);
  assert.equal(backoffStep(0, 0), 0);
});

test('an ended session stops the live view for good', () => {
  assert.equal(afterLiveError('unauthenticated', 0), 'stop');
  assert.equal(afterLiveError('permission_denied', 3), 'stop');
  assert.equal(afterLiveError('csrf', 0), 'stop');
});

test('the code is read from a server error event, never guessed', () => {
  assert.equal(errorCode('{"error":{"code":"unavailable","message":"down"}}'), 'unavailable');
  assert.equal(errorCode(''), null);
  assert.equal(errorCode(undefined), null);
  assert.equal(errorCode('not json'), null);
  assert.equal(errorCode('{"error":{"code":7}}'), null);
});
