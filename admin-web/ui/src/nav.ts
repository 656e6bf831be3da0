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

/** Shown when single sign-on failed and no reason came with it. */
export const SSO_FAILED = 'Single sign-on did not complete; start again.';

/**
 * The cookie the single sign-on callback leaves its reason in: over HTTPS
 * only the `__Host-` one, which no other host (a sibling subdomain) can
 * set.
 */
export function loginErrorCookie(protocol: string): string {
  return protocol === 'https:' ? '__Host-aigw_login_error' : 'aigw_login_error';
}

/**
 * What the sign-in page says went wrong. Its address carries only a code
 * (anyone can link to `/login?error=…` with words of their own, so none
 * are shown from it); the reason, if any, is in the callback's cookie.
 */
export function loginError(search: string, cookies: string, protocol: string): string | null {
  if (!new URLSearchParams(search).has('error')) return null;
  return cookieValue(cookies, loginErrorCookie(protocol)) ?? SSO_FAILED;
}

function cookieValue(cookies: string, name: string): string | null {
  for (const part of cookies.split(';')) {
    const at = part.indexOf('=');
    if (at < 0 || part.slice(0, at).trim() !== name) continue;
    try {
      const v = decodeURIComponent(part.slice(at + 1).trim());
      return v ? v.slice(0, 300) : null;
    } catch {
      return null;
    }
  }
  return null;
}
