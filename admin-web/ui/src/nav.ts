// Where the sign-in page comes from and returns to, and what the audit
// log's address holds. Pure functions (no React): `npm test` runs them
// under node.

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

/**
 * The kinds of object the audit log records (`object_kind`), as
 * `GET /api/audit` documents them.
 */
export const AUDIT_KINDS = [
  'provider',
  'provider_key',
  'price',
  'route',
  'client_key',
  'node_credential',
  'oauth_template',
  'budget',
  'team',
  'webhook',
  'user',
  'api_token',
  'session',
  'oidc_settings',
] as const;

/** The audit log's filters, named as `GET /api/audit` names them. */
export interface AuditFilters {
  actor?: string;
  object_kind?: string;
  since_ms?: number;
  until_ms?: number;
}

export type AuditFilter = keyof AuditFilters;

const AUDIT_TEXT = ['actor', 'object_kind'] as const;
const AUDIT_TIME = ['since_ms', 'until_ms'] as const;

/**
 * The audit log's filters and page (the keyset cursors of the pages after
 * the first, in order) as the page's query holds them, so a reload or a
 * shared link shows the same entries. A time that is not a whole number
 * of milliseconds is left out.
 */
export function auditQuery(search: string): { filters: AuditFilters; cursors: string[] } {
  const p = new URLSearchParams(search);
  const filters: AuditFilters = {};
  for (const k of AUDIT_TEXT) {
    const v = p.get(k)?.trim();
    if (v) filters[k] = v;
  }
  for (const k of AUDIT_TIME) {
    const v = p.get(k);
    if (v && /^\d+$/.test(v) && Number.isSafeInteger(Number(v))) filters[k] = Number(v);
  }
  return { filters, cursors: p.getAll('page').filter(Boolean) };
}

/**
 * The query with one filter set (`null` or empty: removed), back on the
 * first page; everything else in it is kept.
 */
export function withAuditFilter(search: string, key: AuditFilter, value: string | number | null): string {
  const p = new URLSearchParams(search);
  p.delete('page');
  if (value === null || value === '') p.delete(key);
  else p.set(key, String(value));
  return p.toString();
}

/** The query with the audit log's filters and page removed. */
export function withoutAuditFilters(search: string): string {
  const p = new URLSearchParams(search);
  for (const k of [...AUDIT_TEXT, ...AUDIT_TIME, 'page']) p.delete(k);
  return p.toString();
}

/** The query showing the page after the one whose cursors are `cursors` (null: the one before). */
export function withAuditPage(search: string, cursors: string[], next: string | null): string {
  const p = new URLSearchParams(search);
  p.delete('page');
  const pages = next === null ? cursors.slice(0, -1) : [...cursors, next];
  for (const c of pages) p.append('page', c);
  return p.toString();
}
