// What the overview's live view does after its stream fails. Pure (no
// React): `npm test` runs it under node.

/** Waits between reconnects: quick at first, then every 30 s at most. */
const BACKOFF_MS = [1_000, 2_000, 5_000, 10_000, 30_000];

/**
 * After the live stream failed: `stop` when the session is over (signed
 * out, revoked or its role changed: reconnecting cannot help), else how
 * long to wait before connecting again. `code` is the error body's code of
 * a server `error` event, or null when the connection itself failed or was
 * refused (the control plane or admin-web restarting answers 503 or
 * nothing, and the browser's EventSource gives up on its own after a
 * non-200 answer). `attempt` counts failures since the stream last
 * delivered an update, from 0.
 */
export function afterLiveError(code: string | null, attempt: number): 'stop' | number {
  if (code === 'unauthenticated' || code === 'permission_denied' || code === 'csrf') return 'stop';
  return BACKOFF_MS[Math.min(Math.max(attempt, 0), BACKOFF_MS.length - 1)];
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
