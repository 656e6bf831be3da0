// Where the sign-in page comes from and returns to. Pure functions (no
// React): `npm test` runs them under node.

/**
 * The sign-in page's address: `next` is where to return after signing in
 * (this page, unless it is the start page); `ended` says the session ended.
 */
export function loginUrl(next: string, ended: boolean): string {
  const p = new URLSearchParams();
  if (next && next !== '/' && !next.startsWith('/login')) p.set('next', next);
  if (ended) p.set('ended', '1');
  const q = p.toString();
  return q ? `/login?${q}` : '/login';
}

/** Where to go after signing in: `next` if it is a page of this site, else the start page. */
export function afterLogin(search: string): string {
  const next = new URLSearchParams(search).get('next') ?? '';
  // Only a path here: never another origin (`//host`, `/\host`).
  return /^\/(?![/\\])/.test(next) && !next.startsWith('/login') ? next : '/';
}
