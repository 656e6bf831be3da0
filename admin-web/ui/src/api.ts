// The one way the UI calls admin-web: same-origin fetch with the session
// cookie, the CSRF header on every change, JSON errors turned into ApiError.
import type {
  ApiTokenInfo,
  AuditEntry,
  BudgetInfo,
  BudgetLimits,
  Caller,
  ClientKeyInfo,
  ClientKeySpec,
  ConfigChange,
  CredentialHealth,
  NodeList,
  OAuthAccount,
  OAuthConnectStart,
  OAuthTemplate,
  OidcSettings,
  Overview,
  PoolHealth,
  PriceSpec,
  ProviderInfo,
  ProviderSpec,
  Range,
  RouteSpec,
  SignInOptions,
  TeamInfo,
  TraceDetail,
  TraceList,
  UpsertResult,
  UserInfo,
  WebhookInfo,
  WebhookSpec,
} from './types';
import type { AuditFilters } from './nav';

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Called when the session is gone (401 anywhere but sign-in). */
let onUnauthenticated: () => void = () => {};
export function setUnauthenticatedHandler(f: () => void) {
  onUnauthenticated = f;
}
/** Set when the admin signs out: a 401 to a call still in flight then is
 *  the sign-out's own, not a session that ended, and must not send the
 *  page to "your session ended" after (or instead of) the sign-in page. */
let signingOut = false;
export function signOutStarted() {
  signingOut = true;
}
/** What a 401 from the API does (sign-in), for a caller that learnt it otherwise. */
export function sessionEnded() {
  if (!signingOut) onUnauthenticated();
}

async function call<T>(method: string, path: string, body?: unknown, extra?: Record<string, string>): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...extra };
  if (method !== 'GET') headers['x-aigw-csrf'] = '1';
  if (body !== undefined) headers['content-type'] = 'application/json';
  let resp: Response;
  try {
    resp = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', 'admin-web is not reachable; check your connection');
  }
  if (!resp.ok) {
    let code = 'error';
    let message = `${resp.status} ${resp.statusText}`;
    try {
      const j = await resp.json();
      code = j.error?.code ?? code;
      message = j.error?.message ?? message;
    } catch {
      /* not JSON */
    }
    if (resp.status === 401 && !path.startsWith('/api/auth/login')) sessionEnded();
    throw new ApiError(resp.status, code, message);
  }
  return (await resp.json()) as T;
}

const enc = encodeURIComponent;

/** A PUT that only creates: `If-None-Match: *` (an existing object of the name is a 412, not replaced). */
const createOnly = (yes: boolean | undefined) => (yes ? { 'if-none-match': '*' } : undefined);

/** Whether an error says the name is taken (a create-only PUT, or a create). */
export function nameTaken(e: unknown): boolean {
  return e instanceof ApiError && (e.status === 412 || e.code === 'already_exists');
}

function qs(params: Record<string, string | number | undefined | null>): string {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') s.set(k, String(v));
  }
  const t = s.toString();
  return t ? `?${t}` : '';
}

export interface TraceFilters {
  since_ms?: number;
  until_ms?: number;
  client_key?: string;
  user?: string;
  model?: string;
  provider?: string;
  status?: number;
  status_class?: string;
  region?: string;
  node_id?: string;
  page_size?: number;
  page_token?: string;
}

export interface OverviewFilters {
  range: Range;
  client_key?: string;
  user?: string;
  model?: string;
  provider?: string;
  region?: string;
  team?: string;
}

export const api = {
  options: () => call<SignInOptions>('GET', '/api/auth/options'),
  login: (username: string, password: string) =>
    call<{ user: UserInfo; expires_at_ms: number }>('POST', '/api/auth/login', { username, password }),
  logout: () => call<{ ended: boolean }>('POST', '/api/auth/logout'),
  // `null` when signed out (no session at all): no 401 for the browser to log.
  me: () => call<Caller | null>('GET', '/api/auth/me?optional=true'),

  providers: () => call<{ providers: ProviderInfo[] }>('GET', '/api/providers'),
  putProvider: (p: ProviderSpec, isNew?: boolean) =>
    call<UpsertResult>('PUT', `/api/providers/${enc(p.name)}`, p, createOnly(isNew)),
  deleteProvider: (name: string) => call<{ deleted: boolean }>('DELETE', `/api/providers/${enc(name)}`),
  pricing: () => call<{ pricing: PriceSpec[] }>('GET', '/api/pricing'),
  putPrice: (p: PriceSpec, isNew?: boolean) =>
    call<UpsertResult>('PUT', `/api/pricing/${enc(p.model)}`, p, createOnly(isNew)),
  deletePrice: (model: string) => call<{ deleted: boolean }>('DELETE', `/api/pricing/${enc(model)}`),
  routes: () => call<{ routes: RouteSpec[] }>('GET', '/api/routes'),
  putRoute: (r: RouteSpec, isNew?: boolean) =>
    call<UpsertResult>('PUT', `/api/routes/${enc(r.model)}`, r, createOnly(isNew)),
  deleteRoute: (model: string) => call<{ deleted: boolean }>('DELETE', `/api/routes/${enc(model)}`),
  clientKeys: () => call<{ client_keys: ClientKeyInfo[] }>('GET', '/api/client-keys'),
  putClientKey: (k: ClientKeySpec, isNew?: boolean) =>
    call<UpsertResult>('PUT', `/api/client-keys/${enc(k.name)}`, k, createOnly(isNew)),
  revokeClientKey: (name: string) =>
    call<{ revoked: boolean }>('POST', `/api/client-keys/${enc(name)}/revoke`),
  deleteClientKey: (name: string) => call<{ deleted: boolean }>('DELETE', `/api/client-keys/${enc(name)}`),
  nodes: () => call<NodeList>('GET', '/api/nodes'),
  checkCredential: (provider: string, key: string) =>
    call<CredentialHealth>('POST', `/api/providers/${enc(provider)}/keys/${enc(key)}/check`),
  oauthAccounts: () => call<{ accounts: OAuthAccount[] }>('GET', '/api/oauth/accounts'),
  oauthTemplates: () => call<{ templates: OAuthTemplate[] }>('GET', '/api/oauth/templates'),
  startOAuthConnect: (provider: string, key: string, params: Record<string, string>) =>
    call<OAuthConnectStart>('POST', `/api/providers/${enc(provider)}/keys/${enc(key)}/oauth/start`, { params }),
  completeOAuthConnect: (state: string, code: string) =>
    call<OAuthAccount>('POST', '/api/oauth/complete', { state, code }),
  refreshOAuthAccount: (provider: string, key: string) =>
    call<OAuthAccount>('POST', `/api/providers/${enc(provider)}/keys/${enc(key)}/oauth/refresh`),
  budgets: () => call<{ budgets: BudgetInfo[] }>('GET', '/api/budgets'),
  setBudget: (subject: string, limits: Partial<BudgetLimits>, isNew?: boolean) =>
    call<UpsertResult>('PUT', `/api/budgets/${enc(subject)}`, limits, createOnly(isNew)),
  teams: () => call<{ teams: TeamInfo[] }>('GET', '/api/teams'),
  putTeam: (name: string, members: string[], isNew?: boolean) =>
    call<UpsertResult>('PUT', `/api/teams/${enc(name)}`, { members }, createOnly(isNew)),
  deleteTeam: (name: string) => call<{ deleted: boolean }>('DELETE', `/api/teams/${enc(name)}`),
  webhooks: () => call<{ webhooks: WebhookInfo[] }>('GET', '/api/webhooks'),
  putWebhook: (name: string, spec: WebhookSpec, isNew?: boolean) =>
    call<UpsertResult>('PUT', `/api/webhooks/${enc(name)}`, spec, createOnly(isNew)),
  deleteWebhook: (name: string) => call<{ deleted: boolean }>('DELETE', `/api/webhooks/${enc(name)}`),

  users: () => call<{ users: UserInfo[] }>('GET', '/api/users'),
  createUser: (username: string, password: string, role: string) =>
    call<{ user: UserInfo; generated_password: string }>('POST', '/api/users', { username, password, role }),
  updateUser: (username: string, change: { role?: string; disabled?: boolean }) =>
    call<UserInfo>('PATCH', `/api/users/${enc(username)}`, change),
  setPassword: (username: string, new_password: string, current_password = '') =>
    call<{ generated_password: string }>('POST', `/api/users/${enc(username)}/password`, {
      new_password,
      current_password,
    }),
  apiTokens: () => call<{ tokens: ApiTokenInfo[] }>('GET', '/api/api-tokens'),
  createApiToken: (name: string, role: string, expires_at_ms: number) =>
    call<{ token: string; info: ApiTokenInfo }>('POST', '/api/api-tokens', { name, role, expires_at_ms }),
  revokeApiToken: (name: string) => call<{ revoked: boolean }>('POST', `/api/api-tokens/${enc(name)}/revoke`),
  audit: (f: AuditFilters, page_token?: string) =>
    call<{ entries: AuditEntry[]; next_page_token: string }>('GET', `/api/audit${qs({ ...f, page_token })}`),
  oidcSettings: () => call<OidcSettings>('GET', '/api/settings/oidc'),
  setOidcSettings: (s: OidcSettings) => call<OidcSettings>('PUT', '/api/settings/oidc', s),

  traces: (f: TraceFilters) => call<TraceList>('GET', `/api/traces${qs({ ...f })}`),
  trace: (id: string) => call<TraceDetail>('GET', `/api/traces/${enc(id)}`),
  overview: (f: OverviewFilters) => call<Overview>('GET', `/api/overview${qs({ ...f })}`),
  overviewLiveUrl: (f: OverviewFilters) => `/api/overview/live${qs({ ...f })}`,
  poolHealth: () => call<PoolHealth>('GET', '/api/pool-health'),

  exportConfig: () => call<{ yaml: string }>('GET', '/api/config/export'),
  planConfig: (yaml: string, prune: boolean) =>
    call<{ changes: ConfigChange[] }>('POST', '/api/config/plan', { yaml, prune }),
  applyConfig: (yaml: string, prune: boolean) =>
    call<{ lines: string[] }>('POST', '/api/config/apply', { yaml, prune }),
};
