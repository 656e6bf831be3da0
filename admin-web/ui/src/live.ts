// What the overview's live view does after its stream fails. Pure (no
// React): `npm test` runs it under node.

/** Waits between reconnects: quick at first, then every 30 s at most. */
const BACKOFF_MS = [1_000, 2_000, 5_000, 10_000, 30_000];
/** A stream that delivered for this long starts its backoff afresh. */
export const HEALTHY_MS = 30_000;

/**
 * After the live stream failed: `stop` when the session is over (signed
 * out, revoked or its role changed: reconnecting cannot help), else how
 * long to wait before connecting again. `code` is the error body's code of
 * a server `error` event, or null when the connection itself failed or was
 * refused (the control plane or admin-web restarting answers 503 or
 * nothing, and the browser's EventSource gives up on its own after a
 * non-200 answer). `attempt` counts failures since the stream was last
 * healthy, from 0. `random` (0..1) spreads the waits by ±20 %, so the tabs
 * of every admin do not all come back in the same instant.
 */
export function afterLiveError(code: string | null, attempt: number, random = 0.5): 'stop' | number {
  if (code === 'unauthenticated' || code === 'permission_denied' || code === 'csrf') return 'stop';
  const base = BACKOFF_MS[Math.min(Math.max(attempt, 0), BACKOFF_MS.length - 1)];
  return Math.round(base * (0.8 + 0.4 * Math.min(Math.max(random, 0), 1)));
}

/**
 * Which wait of the backoff comes next, after `failures` failures in a row:
 * the first again only if the stream that just failed had delivered for
 * `HEALTHY_MS` (one that sends its first update and fails at once keeps
 * backing off).
 */
export function backoffStep(failures: number, healthyForMs: number): number {
  return healthyForMs >= HEALTHY_MS ? 0 : failures;
}

/** The code of a server `error` event's data (`{"error":{"code":…}}`), if any. */
export function errorCode(data: unknown): string | null {
  if (typeof data !== 'string' || data === '') return null;
  try {
    const body = JSON.parse(data) as { error?: { code?: unknown } };
    return typeof body?.error?.code === 'string' ? body.error.code : null;
  } catch {
    return null;
  }
}
