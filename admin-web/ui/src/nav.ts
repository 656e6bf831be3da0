// Where the sign-in page comes from and returns to, and what the audit
// log's and the request log's addresses hold. Pure functions (no React):
// `npm test` runs them under node.

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
  return pageOfThisSite(new URLSearchParams(search).get('next') ?? '') ?? '/';
}

/**
 * `next` if it is a page of this site to go on to: a path (never `//host`
 * or `/\host`, another origin), with no control character (browsers drop
 * tabs and newlines, so `/<tab>/host` is `//host`) and no backslash, no `.`
 * or `..` segment (`/./api` is `/api`), not the sign-in page or the API.
 * admin-web checks the same for single sign-on (`page_after_sign_in`).
 */
export function pageOfThisSite(next: string): string | null {
  if (!next.startsWith('/') || next.startsWith('//') || /[\u0000-\u001f\u007f-\u009f\\]/.test(next)) return null;
  const path = next.split(/[?#]/, 1)[0];
  if (path.split('/').some((segment) => /^(?:\.|%2e){1,2}$/i.test(segment))) return null;
  if (path.startsWith('/login') || path === '/api' || path.startsWith('/api/')) return null;
  return next;
}

/** Single sign-on's start, asking to go on to the page the sign-in page was sent from. */
export function ssoStart(search: string): string {
  const next = afterLogin(search);
  return next === '/' ? '/api/auth/oidc/start' : `/api/auth/oidc/start?next=${encodeURIComponent(next)}`;
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

/** The code admin-web's single sign-on callback sends the sign-in page when it failed (`/login?error=sso`). */
export const SSO_ERROR = 'sso';

/**
 * What the sign-in page says went wrong. Its address carries only a code
 * (anyone can link to `/login?error=…` with words of their own, so none
 * are shown from it, and a code other than single sign-on's says
 * nothing); the reason, if any, is in the callback's cookie.
 */
export function loginError(search: string, cookies: string, protocol: string): string | null {
  if (new URLSearchParams(search).get('error') !== SSO_ERROR) return null;
  return cookieValue(cookies, loginErrorCookie(protocol)) ?? SSO_FAILED;
}

/** The notices the sign-in page shows, by their code in its address (`/login?notice=…`). */
const LOGIN_NOTICES: Record<string, string> = {
  'password-changed': 'Password changed: sign in again with the new one.',
};

/** The sign-in page after changing one's own password (which ended every session). */
export const PASSWORD_CHANGED_LOGIN = '/login?notice=password-changed';

/** What the sign-in page tells: fixed words for a known code, nothing for any other. */
export function loginNotice(search: string): string | null {
  const code = new URLSearchParams(search).get('notice') ?? '';
  return Object.hasOwn(LOGIN_NOTICES, code) ? LOGIN_NOTICES[code] : null;
}

/**
 * The pages of the UI: their address, whether one more segment after it
 * is the same page (a request's id, a tab), their name in the navigation
 * and the window's title, and the Admin API method a role must be allowed
 * to see them (none: every role).
 */
export const PAGES: readonly { path: string; label: string; method?: string; sub?: boolean }[] = [
  { path: '/', label: 'Overview' },
  { path: '/requests', label: 'Requests', sub: true },
  { path: '/keys', label: 'Client keys' },
  { path: '/providers', label: 'Providers', method: 'AdminService/ListProviders' },
  { path: '/people', label: 'People', method: 'IdentityService/ListAuditLog', sub: true },
  { path: '/config', label: 'Config as code', method: 'ConfigFileService/ExportConfig' },
  { path: '/settings', label: 'Sign-in settings', method: 'SignInService/GetOidcSettings' },
  { path: '/account', label: 'My account' },
];

/** The page an address shows (`/requests/abc` is Requests), or null for none. */
export function pageAt(pathname: string): (typeof PAGES)[number] | null {
  const path = pathname.length > 1 ? pathname.replace(/\/$/, '') : pathname;
  return (
    PAGES.find(
      (p) => path === p.path || (p.sub && path.startsWith(`${p.path}/`) && !path.slice(p.path.length + 1).includes('/')),
    ) ?? null
  );
}

/** What an address shows a role: its page, a page the role may not see, or nothing. */
export function pageAccess(pathname: string, can: (method: string) => boolean): 'page' | 'forbidden' | 'not-found' {
  const p = pageAt(pathname);
  if (!p) return 'not-found';
  return !p.method || can(p.method) ? 'page' : 'forbidden';
}

/** The window's title: the page's name, then the application's. */
export function pageTitle(pathname: string, can: (method: string) => boolean): string {
  const access = pathname === '/login' ? 'login' : pageAccess(pathname, can);
  const name =
    access === 'login'
      ? 'Sign in'
      : access === 'page'
        ? pageAt(pathname)!.label
        : access === 'forbidden'
          ? 'No access'
          : 'Not found';
  return `${name} · AI Gateway admin`;
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
 * The query with one value set (`null` or empty: removed) and the keys in
 * `reset` removed (a filter changed starts again from the first page);
 * everything else in it is kept. Pages whose filters are in the address
 * call it on the query as it is now (`window.location.search`), not as
 * the page was drawn with: the page is drawn again only after the address
 * changes, so a second change made in between (another field, the next
 * key typed) would otherwise undo the first.
 */
export function withQueryValue(
  search: string,
  key: string,
  value: string | number | null,
  reset: readonly string[] = [],
): string {
  const p = new URLSearchParams(search);
  for (const k of reset) p.delete(k);
  if (value === null || value === '') p.delete(key);
  else p.set(key, String(value));
  return p.toString();
}

/**
 * The query with one filter set (`null` or empty: removed), back on the
 * first page; everything else in it is kept.
 */
export function withAuditFilter(search: string, key: AuditFilter, value: string | number | null): string {
  return withQueryValue(search, key, value, ['page']);
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

/** The request log's filters in its address, named as `GET /api/traces` names them. */
export const REQUEST_FILTERS = ['client_key', 'user', 'model', 'provider', 'status_class', 'region', 'node_id'] as const;

export type RequestFilter = (typeof REQUEST_FILTERS)[number];

/** The request log's period when the address names none. */
export const DEFAULT_PERIOD = '24h';

/**
 * What leaves the request log's page when a filter or the period changes:
 * the keyset cursors of the pages after the first, and the time the
 * period was anchored at while paging.
 */
const REQUESTS_PAGING = ['page', 'at'];

/**
 * The request log's filters, period, page (the cursors of the pages after
 * the first, in order) and the time the period is anchored at while
 * paging (0: none), as the address's query holds them.
 */
export function requestsQuery(search: string): {
  filters: Partial<Record<RequestFilter, string>>;
  period: string;
  cursors: string[];
  at: number;
} {
  const p = new URLSearchParams(search);
  const filters: Partial<Record<RequestFilter, string>> = {};
  for (const k of REQUEST_FILTERS) {
    const v = p.get(k);
    if (v) filters[k] = v;
  }
  return {
    filters,
    period: p.get('period') || DEFAULT_PERIOD,
    cursors: p.getAll('page').filter(Boolean),
    at: Number(p.get('at')) || 0,
  };
}

/**
 * The query with one of the request log's filters set (`null` or empty:
 * removed), or its period (the default one is left out), back on the
 * first page; everything else in it is kept.
 */
export function withRequestsFilter(search: string, key: RequestFilter | 'period', value: string | null): string {
  const v = key === 'period' && value === DEFAULT_PERIOD ? null : value;
  return withQueryValue(search, key, v, REQUESTS_PAGING);
}

/**
 * The query showing another page of the request log: the one whose cursor
 * is `next` (after the page the query shows), the one before (`null`), or
 * the first; past the first, the period stays anchored at `at`.
 */
export function withRequestsPage(search: string, next: string | null | 'first', at: number): string {
  const p = new URLSearchParams(search);
  const cursors = p.getAll('page').filter(Boolean);
  const pages = next === 'first' ? [] : next === null ? cursors.slice(0, -1) : [...cursors, next];
  for (const k of REQUESTS_PAGING) p.delete(k);
  for (const c of pages) p.append('page', c);
  if (pages.length) p.set('at', String(at));
  return p.toString();
}
