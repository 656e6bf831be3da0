// Searching and paging a list the API sends whole (client keys, prices):
// the browser keeps every row, but draws one page of them. Pure functions
// (no React): `npm test` runs them under node.

/** Rows drawn per page. */
export const PAGE_SIZE = 50;

const whole = new Intl.NumberFormat('en');

/**
 * Whether a row whose searchable texts are `fields` matches `search`: each
 * word of the search is in one of the fields, case ignored. An empty
 * search matches every row.
 */
export function matchesSearch(fields: readonly string[], search: string): boolean {
  const words = search.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return true;
  const texts = fields.map((f) => f.toLowerCase());
  return words.every((w) => texts.some((t) => t.includes(w)));
}

/** One page of the rows that match a search. */
export interface Page<T> {
  rows: T[];
  /** 1-based; a page past the last one is the last one. */
  page: number;
  pages: number;
  /** 1-based positions of the first and last row shown (0 and 0: none). */
  from: number;
  to: number;
  /** Rows that match the search. */
  matched: number;
  /** Rows in all. */
  total: number;
}

/**
 * Page `page` (of `size` rows) of the records that match `search`, in
 * their order; `fields` gives a record's searchable texts.
 */
export function pageOf<T>(
  records: readonly T[],
  search: string,
  fields: (r: T) => readonly string[],
  page: number,
  size: number = PAGE_SIZE,
): Page<T> {
  const matched = search.trim() ? records.filter((r) => matchesSearch(fields(r), search)) : records;
  const pages = Math.max(1, Math.ceil(matched.length / size));
  const p = Math.min(Math.max(1, Math.floor(page) || 1), pages);
  const start = (p - 1) * size;
  const rows = matched.slice(start, start + size);
  return {
    rows,
    page: p,
    pages,
    from: rows.length ? start + 1 : 0,
    to: start + rows.length,
    matched: matched.length,
    total: records.length,
  };
}

/** What a page shows, e.g. "1–50 of 5,300", or "1–3 of 3 matching (5,300 in all)"; '' for no rows at all. */
export function pageText(p: Page<unknown>): string {
  if (p.total === 0) return '';
  if (p.matched === 0) return `None of ${whole.format(p.total)} match`;
  const shown = `${whole.format(p.from)}–${whole.format(p.to)} of ${whole.format(p.matched)}`;
  return p.matched < p.total ? `${shown} matching (${whole.format(p.total)} in all)` : shown;
}
