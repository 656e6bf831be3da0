// The JSON API's shapes (see /api/openapi.json): the Admin API's messages
// with their proto field names.

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

export interface ProviderKeyInfo {
  name: string;
  secret_hint: string;
  weight: number;
}

export interface ProviderInfo {
  name: string;
  kind: string;
  base_url: string;
  models: string[];
  strategy: string;
  keys: ProviderKeyInfo[];
  model_map: Record<string, string>;
}

export interface ProviderKeySpec {
  name: string;
  secret: string;
  weight: number;
}

export interface ProviderSpec {
  name: string;
  kind: string;
  base_url: string;
  models: string[];
  strategy: string;
  keys: ProviderKeySpec[];
  model_map: Record<string, string>;
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
}

export interface ClientKeyInfo {
  name: string;
  id: string;
  key_hint: string;
  models: string[];
  rpm: number | null;
  tokens_per_day: number | null;
  cost_per_day: number | null;
  expires_at_ms: number;
  created_at_ms: number;
  owner: string;
  revoked: boolean;
  revoked_at_ms: number;
}

export interface ClientKeySpec {
  name: string;
  key: string;
  models: string[];
  rpm: number | null;
  tokens_per_day: number | null;
  cost_per_day: number | null;
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
