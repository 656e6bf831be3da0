// Filter fields on pages whose filters are the address's query (the audit
// log, the request log): each change is built on the address as it is
// now, and what is typed stays as typed while the page catches up.
import { useEffect, useState } from 'react';

/**
 * The address's query as it is now. The page is drawn again only after
 * the address changes (in a transition), so a change made in between (a
 * second field filled at once, a key typed fast) must build on this, not
 * on the query the page was drawn with.
 */
export const currentSearch = () => window.location.search;

/**
 * A filter field's text, kept as typed while the address holds what it
 * says, and replaced when something else changed the address (Clear,
 * Back, a link). `drawn` is the address's value the page was drawn with;
 * `now` reads the address's value as it is now.
 */
export function useFieldText(drawn: string, now: () => string, holds: (typed: string, now: string) => boolean) {
  const [text, setText] = useState(drawn);
  useEffect(() => {
    const n = now();
    setText((t) => (holds(t, n) ? t : n));
    // Only when the address the page is drawn with changes.
  }, [drawn]);
  return [text, setText] as const;
}
