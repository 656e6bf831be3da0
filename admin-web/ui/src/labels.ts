// What the UI says of codes the API returns (why a request failed, which
// limit refused it, what a configuration plan deletes), counts in words,
// and the role a new API token starts with. Pure functions (no React):
// `npm test` runs them under node.
import type { ConfigChange, Role } from './types.js';

const whole = new Intl.NumberFormat('en');

/** "1 change", "14 changes"; `many` when adding "s" is wrong. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${whole.format(n)} ${n === 1 ? one : many}`;
}

/**
 * Why a request failed, in words, for the data plane's error codes (the
 * trace's `error`); null for a code this UI does not know (or free text),
 * which is then shown as it is.
 */
const FAILURES: Record<string, string> = {
  missing_key: 'the request carried no client key',
  invalid_key: 'the client key is unknown or revoked',
  expired_key: 'the client key has expired',
  bad_json: 'the request body is not valid JSON',
  invalid_request: 'the request is not valid',
  unknown_model: 'no route or provider serves the model',
  model_not_allowed: 'the client key may not use the model',
  model_not_priced: 'the model has no price and the client key has a cost limit',
  body_too_large: 'the request body is too large',
  body_timeout: 'the request body did not arrive in time',
  not_found: 'the gateway does not serve this URL',
  method_not_allowed: 'the URL does not take this method',
  websocket_not_served: 'WebSocket requests are not served; the app was told to use HTTP',
  not_ready: 'the data plane had not received its configuration yet',
  busy: 'the data plane was holding too many request bodies at once',
  pool_exhausted: "every credential of the provider was cooling down after errors or rate limits",
  pool_unusable: "every credential of the provider is rejected by it or disabled",
  rate_limited: 'a rate or budget limit refused it',
  upstream_timeout: 'the provider did not answer in time',
  upstream_error: 'the provider could not be reached or its answer broke off',
  upstream_status: 'the provider answered with an error',
  untranslatable: "the request uses something the provider's format cannot express",
  internal: 'an internal error in the gateway',
};

export function failureText(code: string): string | null {
  return Object.hasOwn(FAILURES, code) ? FAILURES[code] : null;
}

const LIMITS: Record<string, string> = {
  rps: 'requests per second',
  rpm: 'requests per minute',
  tokens_per_minute: 'tokens per minute',
  tokens_per_day: 'tokens per day',
  cost_per_day: 'cost per day',
  cost_per_month: 'cost per month',
  concurrent: 'concurrent requests',
};

/**
 * Which limit refused a request, from its trace's `refused_by`
 * ("<budget id>/<limit>", the budget id `key:<id>`, `user:<id>` or
 * `team:<id>`), named by what the trace itself knows: the request's
 * client key and that key's owner (whose budget, and whose team's, it
 * counts toward).
 */
export function refusalText(refusedBy: string, t: { client_key_name: string; owner: string }): string {
  const at = refusedBy.lastIndexOf('/');
  if (at < 0) return refusedBy;
  const id = refusedBy.slice(0, at);
  const code = refusedBy.slice(at + 1);
  const limit = LIMITS[code] ?? code.replace(/_/g, ' ');
  const kind = id.slice(0, id.indexOf(':'));
  if (kind === 'key') return `the limit of client key ${t.client_key_name || id} (${limit})`;
  if (kind === 'user' && t.owner) return `the budget of user ${t.owner} (${limit})`;
  if (kind === 'team' && t.owner) return `the budget of the team of user ${t.owner} (${limit})`;
  return `budget ${id} (${limit})`;
}

/** How the UI names a kind of object of a configuration plan, one and many. */
const KINDS: Record<string, [string, string]> = {
  provider: ['provider', 'providers'],
  price: ['price', 'prices'],
  route: ['route', 'routes'],
  client_key: ['client key', 'client keys'],
  oauth_template: ['OAuth template', 'OAuth templates'],
  team: ['team', 'teams'],
  user_budget: ['user budget', 'user budgets'],
};

export function kindName(kind: string, n = 1): string {
  const [one, many] = KINDS[kind] ?? [kind.replace(/_/g, ' '), `${kind.replace(/_/g, ' ')}s`];
  return n === 1 ? one : many;
}

/** What a configuration plan would do: how many changes, and which of them delete what. */
export interface PlanSummary {
  changes: number;
  deletions: ConfigChange[];
  /** The deletions counted by kind, e.g. "4 providers, 1 team" ('' for none). */
  deletedKinds: string;
}

export function planSummary(changes: readonly ConfigChange[]): PlanSummary {
  const deletions = changes.filter((c) => c.action === 'delete');
  const counts = new Map<string, number>();
  for (const d of deletions) counts.set(d.kind, (counts.get(d.kind) ?? 0) + 1);
  return {
    changes: changes.filter((c) => c.action !== 'unchanged').length,
    deletions,
    deletedKinds: [...counts].map(([kind, n]) => `${whole.format(n)} ${kindName(kind, n)}`).join(', '),
  };
}

/** The roles by power, least first. */
const LEAST_FIRST: Role[] = ['viewer', 'member', 'operator', 'admin'];

/** The roles a caller may give an API token (as the control plane rules). */
export function grantableRoles(role: Role): Role[] {
  if (role === 'admin') return ['admin', 'operator', 'viewer', 'member'];
  if (role === 'operator') return ['operator', 'viewer', 'member'];
  return [role];
}

/**
 * The role a new API token starts with: the least powerful one the
 * caller may give (viewer, which changes nothing, where it may), so a
 * token gets more only when asked for.
 */
export function defaultTokenRole(role: Role): Role {
  const may = grantableRoles(role);
  return LEAST_FIRST.find((r) => may.includes(r)) ?? role;
}
