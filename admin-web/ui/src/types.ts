// The JSON API's shapes (see /api/openapi.json): the Admin API's messages
// with their proto field names.

import type { BudgetUse } from './budgetUse';

export type { BudgetUse };

export interface ApiErrorBody {
  error: { code: string; message: string };
}

export interface UserInfo {
  id: string;
  username: string;
  role: Role;
  disabled: boolean;
  created_at_ms: number;
  updated_at_ms: number;
  /** The team the user belongs to, if any. */
  team: string;
}

export type Role = 'admin' | 'operator' | 'viewer' | 'member';
export const ROLES: Role[] = ['admin', 'operator', 'viewer', 'member'];

export interface Caller {
  kind: string;
  username: string;
  role: Role;
  token_name: string;
  allowed_methods: string[];
}

export interface SignInOptions {
  password: boolean;
  oidc: boolean;
  oidc_display_name: string;
}

export interface CredentialHealth {
  provider: string;
  key: string;
  /** ok | invalid_credential | quota_exhausted | rate_limited | upstream_down | network_error | unknown */
  status: string;
  http_status: number;
  latency_us: number;
  detail: string;
  checked_at_ms: number;
  retry_at_ms: number;
  trigger: string;
}

export interface ProviderKeyInfo {
  name: string;
  secret_hint: string;
  weight: number;
  health: CredentialHealth | null;
  oauth_template: string;
}

export interface ProviderInfo {
  name: string;
  kind: string;
  base_url: string;
  models: string[];
  strategy: string;
  keys: ProviderKeyInfo[];
  model_map: Record<string, string>;
  health_check_interval_secs: number;
  affinity: string;
}

export interface ProviderKeySpec {
  name: string;
  secret: string;
  weight: number;
  oauth_template: string;
}

export interface ProviderSpec {
  name: string;
  kind: string;
  base_url: string;
  models: string[];
  strategy: string;
  keys: ProviderKeySpec[];
  model_map: Record<string, string>;
  health_check_interval_secs: number | null;
  affinity: string;
}

export interface PriceSpec {
  model: string;
  input: number;
  output: number;
  cached_input: number | null;
}

export interface RouteSpec {
  model: string;
  providers: string[];
  /** Refuse fields the provider's format cannot express instead of dropping them. */
  strict: boolean;
  /** An alias: the matched models are served as this model. */
  alias_of: string;
}

/** The limits a client key (or a budget) may have; null: none of that kind. */
export interface KeyLimits {
  rps: number | null;
  rpm: number | null;
  tokens_per_minute: number | null;
  tokens_per_day: number | null;
  cost_per_day: number | null;
  cost_per_month: number | null;
  concurrent: number | null;
  global: boolean;
  when_store_down: string;
}

export interface ClientKeyInfo extends KeyLimits {
  name: string;
  id: string;
  key_hint: string;
  models: string[];
  expires_at_ms: number;
  created_at_ms: number;
  owner: string;
  revoked: boolean;
  revoked_at_ms: number;
  /** Used today and this month: one entry if global, else per region. */
  used: BudgetUse[];
}

export interface ClientKeySpec extends KeyLimits {
  name: string;
  key: string;
  models: string[];
  expires_at_ms: number;
  owner: string;
}

export interface UpsertResult {
  created: boolean;
  changed: boolean;
  generated_key: string;
}

export interface NodeInfo {
  node_id: string;
  region: string;
  applied_version: string;
  last_seen_ms: number;
  connected: boolean;
  last_error: string;
}

export interface NodeList {
  nodes: NodeInfo[];
  current_version: string;
}

export interface ApiTokenInfo {
  id: string;
  name: string;
  role: Role;
  token_hint: string;
  owner: string;
  created_at_ms: number;
  expires_at_ms: number;
  revoked: boolean;
  revoked_at_ms: number;
}

export interface AuditEntry {
  id: string;
  at_ms: number;
  actor: string;
  action: string;
  object_kind: string;
  object_name: string;
  detail: string;
}

export interface TraceInfo {
  request_id: string;
  started_at_ms: number;
  client_key_id: string;
  client_key_name: string;
  owner: string;
  model: string;
  provider: string;
  provider_key: string;
  status: number;
  latency_us: number;
  ttfb_us: number;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  cost: number;
  region: string;
  node_id: string;
  stream: boolean;
  endpoint: string;
  api_format: string;
  error: string;
  upstream_format: string;
  overhead_us: number;
  /** '' when the provider reported usage, else how it was estimated
   * (estimated_abandoned | estimated_broken | estimated_unreported). */
  usage_source: string;
  /** `<budget id>/<limit>` of the budget that refused the request, or ''. */
  refused_by: string;
}

export interface TraceAttempt {
  provider: string;
  provider_key: string;
  status: number;
  latency_us: number;
  error: string;
  cooldown_ms: number;
}

export interface TraceDetail {
  trace: TraceInfo | null;
  attempts: TraceAttempt[];
}

export interface TraceList {
  traces: TraceInfo[];
  next_page_token: string;
}

export interface OverviewStats {
  requests: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  cost: number;
  latency_p50_ms: number;
  latency_p95_ms: number;
  latency_p99_ms: number;
  ttfb_p50_ms: number;
  ttfb_p95_ms: number;
  ttfb_p99_ms: number;
  overhead_p50_ms: number;
  overhead_p95_ms: number;
  overhead_p99_ms: number;
}

export interface OverviewPoint {
  bucket_start_ms: number;
  stats: OverviewStats | null;
}

export interface OverviewGroup {
  name: string;
  stats: OverviewStats | null;
  previous: OverviewStats | null;
  series: OverviewPoint[];
}

export interface Overview {
  since_ms: number;
  until_ms: number;
  bucket_ms: number;
  current: OverviewStats | null;
  previous: OverviewStats | null;
  series: OverviewPoint[];
  by_region: OverviewGroup[];
  by_provider: OverviewGroup[];
  by_model: OverviewGroup[];
  by_client_key: OverviewGroup[];
  by_user: OverviewGroup[];
  /** By the team the keys' owners are in now ("" for none). */
  by_team: OverviewGroup[];
  generated_at_ms: number;
}

export type Range = '1h' | '24h' | '7d' | '30d';

export interface PoolKeyHealth {
  provider: string;
  key: string;
  configured: boolean;
  requests: number;
  errors: number;
  rate_limited: number;
  last_error: string;
  last_error_at_ms: number;
  last_success_at_ms: number;
  rate_limited_recently: boolean;
  latency_p50_ms: number;
  latency_p95_ms: number;
  cooling_until_ms: number;
  last_error_status: number;
}

export interface PoolHealth {
  since_ms: number;
  keys: PoolKeyHealth[];
}

export interface ConfigChange {
  kind: string;
  name: string;
  action: 'create' | 'update' | 'delete' | 'unchanged';
  details: string[];
}

export interface OidcSettings {
  enabled: boolean;
  issuer: string;
  client_id: string;
  client_secret: string;
  client_secret_set: boolean;
  default_role: Role;
  redirect_url: string;
  display_name: string;
  scopes: string[];
}

/** An OAuth account: a provider key whose `oauth_template` is set. */
export interface OAuthAccount {
  provider: string;
  key: string;
  template: string;
  /** not_connected | connected | error | revoked */
  status: string;
  expires_at_ms: number;
  last_refresh_ms: number;
  last_error: string;
  connected_at_ms: number;
  next_refresh_ms: number;
  failures: number;
}

export interface OAuthTemplate {
  name: string;
  description: string;
  provider_kind: string;
  builtin: boolean;
  notes: string;
}

export interface OAuthConnectStart {
  authorize_url: string;
  state: string;
  redirect_uri: string;
  expires_at_ms: number;
}

/** The limits of a user's or a team's budget; null: none of that kind. */
export type BudgetLimits = KeyLimits;

export interface BudgetInfo {
  /** "user:NAME" or "team:NAME" */
  subject: string;
  limits: BudgetLimits | null;
  updated_at_ms: number;
  /** What its keys used today and this month: one entry if global, else per region. */
  used: BudgetUse[];
}

export interface TeamInfo {
  name: string;
  members: string[];
}

/** Where budget alerts are posted, signed with the webhook's secret. */
export interface WebhookInfo {
  name: string;
  /** Whole to admins; `https://host/…` to others (sent back unchanged, it keeps the stored URL). */
  url: string;
  secret_hint: string;
}

export interface WebhookSpec {
  url: string;
  /** Write-only; empty keeps the stored one. */
  secret: string;
}
