// What the data-plane table says of a node's snapshot. Pure (no React):
// `npm test` runs it under node.

export interface SnapshotStatus {
  label: 'in sync' | 'behind' | 'was in sync' | 'was behind';
  color: 'teal' | 'orange' | 'gray';
}

/**
 * A connected node is in sync or behind the current version; of one that
 * is not connected only what it had applied when last heard from is known
 * (it may be serving something else by now), so it says "was".
 */
export function snapshotStatus(connected: boolean, applied: string, current: string): SnapshotStatus {
  const same = applied === current;
  if (!connected) return { label: same ? 'was in sync' : 'was behind', color: 'gray' };
  return same ? { label: 'in sync', color: 'teal' } : { label: 'behind', color: 'orange' };
}
