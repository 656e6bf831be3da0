// Providers and their credential pools, routes, model maps and pricing;
// each credential's health and cool-down. Secrets are write-only: the
// form never shows one, and a credential left blank keeps its secret.
import { useMemo, useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import {
  ActionIcon,
  Badge,
  Button,
  Group,
  Modal,
  MultiSelect,
  Paper,
  PasswordInput,
  Select,
  Stack,
  Switch,
  Tabs,
  TagsInput,
  Text,
  TextInput,
  Title,
  Tooltip,
} from '@mantine/core';
import { IconTrash } from '@tabler/icons-react';
import { SCROLL } from '../components/table';
import { DataTable } from 'mantine-datatable';
import { api, nameTaken } from '../api';
import { MAX_PRICE, MAX_U32, nameError, parseDecimal, parseModelMap, parseWhole } from '../validate';
import { NumberField } from '../components/NumberField';
import { useAuth } from '../auth';
import { ago, ms, num, us } from '../format';
import type { PoolKeyHealth, PriceSpec, ProviderInfo, ProviderSpec, RouteSpec } from '../types';
import { ErrorState, errorText } from '../components/States';
import { confirmDanger } from '../components/Secret';
import { notifyDone, notifyError } from '../components/notify';
import { OAuthAccountsTab } from '../components/OAuthAccounts';
import { useNow } from '../components/useNow';
import { NameField } from '../components/NameField';
import { Clip } from '../components/Clip';
import { Pager, SearchBox, usePaged } from '../components/Paged';

/** What the pricing search looks in: the model (or glob). */
const priceSearchable = (p: PriceSpec) => [p.model];

const KINDS = ['openai', 'anthropic', 'gemini', 'openai-compatible'];
/** The Kind of a credential that is an API key, not an OAuth account. */
const API_KEY = 'api-key';
const STRATEGIES = ['round-robin', 'weighted', 'least-latency', 'fill-first'];

/** Saves, refreshing `key`'s list; a create-only save whose name is taken calls `onTaken` instead of notifying. */
function useSave<T>(
  key: string,
  f: (v: T) => Promise<unknown>,
  done: () => void,
  onTaken?: (message: string) => void,
) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: f,
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: [key] });
      notifyDone('Saved');
      done();
    },
    onError: (e) => (onTaken && nameTaken(e) ? onTaken(errorText(e)) : notifyError('Not saved', e)),
  });
}

interface KeyRow {
  name: string;
  secret: string;
  weight: string;
  stored: boolean;
  /** An OAuth account of this template (connected through the Admin API). */
  oauth: string;
}

function ProviderForm({ initial, onClose }: { initial: ProviderInfo | null; onClose: () => void }) {
  const [name, setName] = useState(initial?.name ?? '');
  const [kind, setKind] = useState<string | null>(initial?.kind ?? 'openai');
  const [baseUrl, setBaseUrl] = useState(initial?.base_url ?? '');
  const [models, setModels] = useState<string[]>(initial?.models ?? []);
  const [strategy, setStrategy] = useState<string | null>(initial?.strategy ?? 'round-robin');
  const [keys, setKeys] = useState<KeyRow[]>(
    initial?.keys.map((k) => ({ name: k.name, secret: '', weight: String(k.weight), stored: true, oauth: k.oauth_template })) ?? [
      { name: 'key-1', secret: '', weight: '1', stored: false, oauth: '' },
    ],
  );
  const [interval, setInterval_] = useState<string>(String(initial?.health_check_interval_secs ?? 60));
  const templates = useQuery({ queryKey: ['oauth-templates'], queryFn: api.oauthTemplates });
  const kinds = [
    { value: API_KEY, label: 'API key' },
    ...(templates.data?.templates ?? []).map((t) => ({ value: t.name, label: `OAuth: ${t.name}` })),
  ];
  const [affinity, setAffinity] = useState<string | null>(initial?.affinity ?? '');
  const [map, setMap] = useState<string[]>(
    Object.entries(initial?.model_map ?? {}).map(([a, b]) => `${a}=${b}`),
  );
  const isNew = initial === null;
  const [submitted, setSubmitted] = useState(false);
  const [taken, setTaken] = useState<string | null>(null);
  const save = useSave<ProviderSpec>('providers', (p) => api.putProvider(p, isNew), onClose, setTaken);
  const setKey = (i: number, patch: Partial<KeyRow>) =>
    setKeys((ks) => ks.map((k, j) => (j === i ? { ...k, ...patch } : k)));
  const intervalParsed = parseWhole(interval, { min: 0, max: MAX_U32 });
  const weights = keys.map((k) => parseWhole(k.weight, { min: 1, max: MAX_U32, required: true }));
  const mapParsed = parseModelMap(map);
  const keyNameErr = (k: KeyRow) => (submitted ? nameError(k.name, 'credential name') : null);
  const secretErr = (k: KeyRow, now = submitted) =>
    now && !k.oauth && !k.stored && !k.secret ? 'a new credential needs its secret' : null;
  return (
    <Modal opened onClose={onClose} size="lg" title={initial ? `Edit ${initial.name}` : 'New provider'}>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          setSubmitted(true);
          if (
            (isNew && nameError(name)) ||
            intervalParsed.error ||
            weights.some((w) => w.error) ||
            mapParsed.error ||
            keys.some((k) => nameError(k.name) || secretErr(k, true))
          ) {
            return;
          }
          save.mutate({
            name: name.trim(),
            kind: kind ?? '',
            base_url: baseUrl.trim(),
            models,
            strategy: strategy ?? '',
            keys: keys.map((k, i) => ({
              name: k.name.trim(),
              secret: k.oauth ? '' : k.secret,
              weight: weights[i].value ?? 1,
              oauth_template: k.oauth,
            })),
            health_check_interval_secs: intervalParsed.value,
            affinity: affinity ?? '',
            model_map: mapParsed.map,
          });
        }}
      >
        <Stack>
          <Group grow align="flex-start">
            <NameField
              label="Name"
              fixed={!isNew}
              value={name}
              submitted={submitted}
              taken={taken}
              onChange={setName}
              clearTaken={() => setTaken(null)}
            />
            <Select label="Kind" required allowDeselect={false} data={KINDS} value={kind} onChange={setKind} />
          </Group>
          <TextInput
            label="Base URL"
            description="Optional for openai, anthropic and gemini; required for openai-compatible"
            placeholder="https://api.example.com"
            value={baseUrl}
            onChange={(e) => setBaseUrl(e.currentTarget.value)}
          />
          <TagsInput
            label="Models"
            description="Model names or globs routed here; press Enter after each"
            value={models}
            onChange={setModels}
          />
          <TagsInput
            label="Model map"
            description="app-name=upstream-name, e.g. fast=gpt-4o-mini"
            value={map}
            error={mapParsed.error}
            onChange={setMap}
          />
          <Group grow align="flex-start">
            <Select label="Strategy" allowDeselect={false} data={STRATEGIES} value={strategy} onChange={setStrategy} />
            <Select
              label="Affinity"
              allowDeselect={false}
              data={[
                { value: '', label: 'none' },
                { value: 'prompt-cache', label: 'prompt cache' },
              ]}
              value={affinity}
              onChange={setAffinity}
            />
            <NumberField
              label="Health check every (s)"
              description="0: only after a failure"
              value={interval}
              onChange={setInterval_}
              error={intervalParsed.error}
            />
          </Group>
          <Text fw={600} size="sm">
            Credentials
          </Text>
          {keys.map((k, i) => (
            <Paper key={i} withBorder p="xs">
              <Stack gap="xs">
                <Group align="flex-start" wrap="wrap" gap="xs">
                  <TextInput
                    label="Credential name"
                    required
                    style={{ flex: '1 1 140px' }}
                    value={k.name}
                    error={keyNameErr(k)}
                    onChange={(e) => setKey(i, { name: e.currentTarget.value })}
                  />
                  <Select
                    label="Credential kind"
                    w={170}
                    allowDeselect={false}
                    data={kinds}
                    value={k.oauth || API_KEY}
                    onChange={(v) => setKey(i, { oauth: !v || v === API_KEY ? '' : v })}
                  />
                  <NumberField
                    label="Weight"
                    w={90}
                    value={k.weight}
                    onChange={(v) => setKey(i, { weight: v })}
                    error={weights[i].error}
                  />
                  <ActionIcon
                    variant="subtle"
                    color="red"
                    size="lg"
                    mt={26}
                    aria-label={`Remove credential ${k.name}`}
                    onClick={() => setKeys((ks) => ks.filter((_, j) => j !== i))}
                  >
                    <IconTrash size={16} />
                  </ActionIcon>
                </Group>
                {k.oauth ? (
                  <TextInput label="Secret" disabled value="connected under OAuth accounts" w="100%" />
                ) : (
                  <PasswordInput
                    label="Secret"
                    required={!k.stored}
                    placeholder={k.stored ? 'unchanged' : 'sk-…'}
                    autoComplete="off"
                    value={k.secret}
                    error={secretErr(k)}
                    onChange={(e) => setKey(i, { secret: e.currentTarget.value })}
                    w="100%"
                  />
                )}
              </Stack>
            </Paper>
          ))}
          <Button
            variant="light"
            onClick={() =>
              setKeys((ks) => [...ks, { name: `key-${ks.length + 1}`, secret: '', weight: '1', stored: false, oauth: '' }])
            }
          >
            Add credential
          </Button>
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={save.isPending}>
              Save provider
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

function ProvidersTab({ mayWrite }: { mayWrite: boolean }) {
  const q = useQuery({ queryKey: ['providers'], queryFn: api.providers });
  const qc = useQueryClient();
  const [editing, setEditing] = useState<ProviderInfo | null | 'new'>(null);
  return (
    <Stack>
      {mayWrite && (
        <Group justify="flex-end">
          <Button onClick={() => setEditing('new')}>New provider</Button>
        </Group>
      )}
      {q.isError && <ErrorState error={q.error} />}
      <DataTable<ProviderInfo>
        withTableBorder
        scrollAreaProps={SCROLL}
        borderRadius="md"
        minHeight={q.data?.providers.length ? undefined : 160}
        fetching={q.isPending}
        records={q.data?.providers ?? []}
        idAccessor="name"
        noRecordsText="No providers yet"
        columns={[
          { accessor: 'name', title: 'Name', render: (p) => <Clip text={p.name} width={200} /> },
          { accessor: 'kind', title: 'Kind' },
          { accessor: 'base_url', title: 'Base URL', render: (p) => <Clip text={p.base_url || 'default'} width={200} /> },
          { accessor: 'models', title: 'Models', render: (p) => (p.models.length ? <Clip text={p.models.join(', ')} width={200} /> : '–') },
          { accessor: 'strategy', title: 'Strategy' },
          {
            accessor: 'keys',
            title: 'Credentials',
            render: (p) => (
              <Stack gap={2}>
                {p.keys.map((k) => (
                  <Text key={k.name} size="xs" maw={220} style={{ overflowWrap: 'anywhere' }}>
                    {k.name} {k.oauth_template ? `(OAuth: ${k.oauth_template})` : <code>{k.secret_hint}</code>} ×{k.weight}
                  </Text>
                ))}
              </Stack>
            ),
          },
          {
            accessor: 'model_map',
            title: 'Model map',
            render: (p) => {
              const map = Object.entries(p.model_map)
                .map(([a, b]) => `${a} → ${b}`)
                .join(', ');
              return map ? <Clip text={map} width={200} /> : '–';
            },
          },
          {
            accessor: 'actions',
            title: <span className="sr-only">Actions</span>,
            hidden: !mayWrite,
            textAlign: 'right',
            render: (p) => (
              <Group gap={4} justify="flex-end" wrap="nowrap">
                <Button size="compact-xs" variant="default" onClick={() => setEditing(p)}>
                  Edit
                </Button>
                <Button
                  size="compact-xs"
                  color="red"
                  variant="light"
                  onClick={() =>
                    confirmDanger(`Delete ${p.name}?`, 'Its credentials are deleted with it.', 'Delete', () =>
                      api
                        .deleteProvider(p.name)
                        .then(() => {
                          notifyDone(`Deleted ${p.name}`);
                          void qc.invalidateQueries({ queryKey: ['providers'] });
                        })
                        .catch((e) => notifyError('Not deleted', e)),
                    )
                  }
                >
                  Delete
                </Button>
              </Group>
            ),
          },
        ]}
      />
      {editing && <ProviderForm initial={editing === 'new' ? null : editing} onClose={() => setEditing(null)} />}
    </Stack>
  );
}

function RoutesTab({ mayWrite }: { mayWrite: boolean }) {
  const q = useQuery({ queryKey: ['routes'], queryFn: api.routes });
  const providers = useQuery({ queryKey: ['providers'], queryFn: api.providers });
  const qc = useQueryClient();
  const [editing, setEditing] = useState<RouteSpec | null>(null);
  // The route being edited; null while a new one is written.
  const [original, setOriginal] = useState<string | null>(null);
  const [submitted, setSubmitted] = useState(false);
  const [taken, setTaken] = useState<string | null>(null);
  const open = (r: RouteSpec, existing: boolean) => {
    setEditing(r);
    setOriginal(existing ? r.model : null);
    setSubmitted(false);
    setTaken(null);
  };
  const save = useSave<RouteSpec>(
    'routes',
    (r) => api.putRoute({ ...r, model: r.model.trim() }, original === null),
    () => setEditing(null),
    setTaken,
  );
  return (
    <Stack>
      {mayWrite && (
        <Group justify="flex-end">
          <Button onClick={() => open({ model: '', providers: [], strict: false, alias_of: '' }, false)}>New route</Button>
        </Group>
      )}
      {q.isError && <ErrorState error={q.error} />}
      <DataTable<RouteSpec>
        withTableBorder
        scrollAreaProps={SCROLL}
        borderRadius="md"
        minHeight={q.data?.routes.length ? undefined : 160}
        fetching={q.isPending}
        records={q.data?.routes ?? []}
        idAccessor="model"
        noRecordsText="No routes: each model goes to the first provider whose models match"
        columns={[
          { accessor: 'model', title: 'Model glob', render: (r) => <Clip text={r.model} width={260} /> },
          {
            accessor: 'providers',
            title: 'Providers, tried in order',
            render: (r) => <Clip text={r.alias_of ? `alias of ${r.alias_of}` : r.providers.join(' → ')} width={320} />,
          },
          { accessor: 'strict', title: 'Strict', render: (r) => (r.strict ? 'yes' : 'no') },
          {
            accessor: 'actions',
            title: <span className="sr-only">Actions</span>,
            hidden: !mayWrite,
            textAlign: 'right',
            render: (r) => (
              <Group gap={4} justify="flex-end" wrap="nowrap">
                <Button size="compact-xs" variant="default" onClick={() => open(r, true)}>
                  Edit
                </Button>
                <Button
                  size="compact-xs"
                  color="red"
                  variant="light"
                  onClick={() =>
                    api
                      .deleteRoute(r.model)
                      .then(() => void qc.invalidateQueries({ queryKey: ['routes'] }))
                      .catch((e) => notifyError('Not deleted', e))
                  }
                >
                  Delete
                </Button>
              </Group>
            ),
          },
        ]}
      />
      {editing && (
        <Modal opened onClose={() => setEditing(null)} title={original === null ? 'New route' : `Route ${original}`}>
          <form
            noValidate
            onSubmit={(e) => {
              e.preventDefault();
              setSubmitted(true);
              if (nameError(editing.model)) return;
              save.mutate(editing);
            }}
          >
            <Stack>
              <NameField
                label="Model glob"
                what="model glob"
                fixed={original !== null}
                description={original !== null ? 'To serve other models, add a route and delete this one' : undefined}
                value={editing.model}
                submitted={submitted}
                taken={taken}
                onChange={(model) => setEditing({ ...editing, model })}
                clearTaken={() => setTaken(null)}
              />
              <MultiSelect
                label="Providers, in the order tried"
                description="Or leave empty and serve the models as another model (alias)"
                data={(providers.data?.providers ?? []).map((p) => p.name)}
                value={editing.providers}
                onChange={(v) => setEditing({ ...editing, providers: v })}
              />
              <TextInput
                label="Alias of"
                value={editing.alias_of}
                onChange={(e) => setEditing({ ...editing, alias_of: e.currentTarget.value })}
              />
              <Switch
                label="Strict: refuse fields the provider's format cannot express"
                checked={editing.strict}
                onChange={(e) => setEditing({ ...editing, strict: e.currentTarget.checked })}
              />
              <Button type="submit" loading={save.isPending}>
                Save route
              </Button>
            </Stack>
          </form>
        </Modal>
      )}
    </Stack>
  );
}

function PricingTab({ mayWrite }: { mayWrite: boolean }) {
  const q = useQuery({ queryKey: ['pricing'], queryFn: api.pricing });
  const qc = useQueryClient();
  // The price being edited, its numbers as typed; `original` is null for a new one.
  const [editing, setEditing] = useState<{ model: string; input: string; output: string; cached: string } | null>(null);
  const [original, setOriginal] = useState<string | null>(null);
  const [submitted, setSubmitted] = useState(false);
  const [taken, setTaken] = useState<string | null>(null);
  const open = (p: PriceSpec | null) => {
    setEditing(
      p
        ? { model: p.model, input: String(p.input), output: String(p.output), cached: p.cached_input === null || p.cached_input === undefined ? '' : String(p.cached_input) }
        : { model: '', input: '', output: '', cached: '' },
    );
    setOriginal(p?.model ?? null);
    setSubmitted(false);
    setTaken(null);
  };
  const save = useSave<PriceSpec>('pricing', (p) => api.putPrice(p, original === null), () => setEditing(null), setTaken);
  const input = parseDecimal(editing?.input ?? '', { max: MAX_PRICE, required: true });
  const output = parseDecimal(editing?.output ?? '', { max: MAX_PRICE, required: true });
  const cached = parseDecimal(editing?.cached ?? '', { max: MAX_PRICE });
  const all = useMemo(() => q.data?.pricing ?? [], [q.data]);
  const { shown, search, setSearch, setPage } = usePaged(all, priceSearchable);
  return (
    <Stack>
      {(mayWrite || all.length > 0) && (
        <Group justify={all.length ? 'space-between' : 'flex-end'}>
          {all.length > 0 && (
            <SearchBox label="Search prices" placeholder="Search by model" value={search} onChange={setSearch} />
          )}
          {mayWrite && <Button onClick={() => open(null)}>New price</Button>}
        </Group>
      )}
      {q.isError && <ErrorState error={q.error} />}
      <DataTable<PriceSpec>
        withTableBorder
        scrollAreaProps={SCROLL}
        borderRadius="md"
        minHeight={shown.rows.length ? undefined : 160}
        fetching={q.isPending}
        records={shown.rows}
        idAccessor="model"
        noRecordsText={all.length ? 'No prices match the search' : 'No prices: requests cost 0'}
        columns={[
          { accessor: 'model', title: 'Model', render: (p) => <Clip text={p.model} width={320} /> },
          { accessor: 'input', title: 'Input, $ / M tokens', textAlign: 'right' },
          { accessor: 'cached_input', title: 'Cached input', textAlign: 'right', render: (p) => p.cached_input ?? '–' },
          { accessor: 'output', title: 'Output', textAlign: 'right' },
          {
            accessor: 'actions',
            title: <span className="sr-only">Actions</span>,
            hidden: !mayWrite,
            textAlign: 'right',
            render: (p) => (
              <Group gap={4} justify="flex-end" wrap="nowrap">
                <Button size="compact-xs" variant="default" onClick={() => open(p)}>
                  Edit
                </Button>
                <Button
                  size="compact-xs"
                  color="red"
                  variant="light"
                  onClick={() =>
                    api
                      .deletePrice(p.model)
                      .then(() => void qc.invalidateQueries({ queryKey: ['pricing'] }))
                      .catch((e) => notifyError('Not deleted', e))
                  }
                >
                  Delete
                </Button>
              </Group>
            ),
          },
        ]}
      />
      <Pager shown={shown} onPage={setPage} what="prices" />
      {editing && (
        <Modal
          opened
          onClose={() => setEditing(null)}
          title={original === null ? 'New price (USD per million tokens)' : `Price of ${original} (USD per million tokens)`}
        >
          <form
            noValidate
            onSubmit={(e) => {
              e.preventDefault();
              setSubmitted(true);
              if (nameError(editing.model) || input.error || output.error || cached.error) return;
              save.mutate({
                model: editing.model.trim(),
                input: input.value ?? 0,
                output: output.value ?? 0,
                cached_input: cached.value,
              });
            }}
          >
            <Stack>
              <NameField
                label="Model (name or glob)"
                what="model"
                fixed={original !== null}
                description={original !== null ? 'To price other models, add a price and delete this one' : undefined}
                value={editing.model}
                submitted={submitted}
                taken={taken}
                onChange={(model) => setEditing({ ...editing, model })}
                clearTaken={() => setTaken(null)}
              />
              <Group grow align="flex-start">
                <NumberField label="Input" required decimal value={editing.input}
                  error={submitted || editing.input ? input.error : null}
                  onChange={(v) => setEditing({ ...editing, input: v })} />
                <NumberField label="Output" required decimal value={editing.output}
                  error={submitted || editing.output ? output.error : null}
                  onChange={(v) => setEditing({ ...editing, output: v })} />
                <NumberField label="Cached input" decimal value={editing.cached} error={cached.error}
                  onChange={(v) => setEditing({ ...editing, cached: v })} />
              </Group>
              <Button type="submit" loading={save.isPending}>
                Save price
              </Button>
            </Stack>
          </form>
        </Modal>
      )}
    </Stack>
  );
}

const CHECK_COLORS: Record<string, string> = {
  ok: 'teal',
  unknown: 'gray',
  rate_limited: 'yellow',
  quota_exhausted: 'orange',
  invalid_credential: 'red',
  upstream_down: 'red',
  network_error: 'red',
};

function HealthTab({ mayCheck }: { mayCheck: boolean }) {
  const q = useQuery({ queryKey: ['pool-health'], queryFn: api.poolHealth });
  const providers = useQuery({ queryKey: ['providers'], queryFn: api.providers });
  const qc = useQueryClient();
  const now = useNow();
  const checkOf = (k: PoolKeyHealth) =>
    providers.data?.providers.find((p) => p.name === k.provider)?.keys.find((x) => x.name === k.key)?.health ?? null;
  const check = useMutation({
    mutationFn: (k: PoolKeyHealth) => api.checkCredential(k.provider, k.key),
    onSuccess: (h) => {
      notifyDone(`${h.provider} / ${h.key}: ${h.status.replace(/_/g, ' ')}`);
      void qc.invalidateQueries({ queryKey: ['providers'] });
    },
    onError: (e) => notifyError('Not checked', e),
  });
  const state = (k: PoolKeyHealth) => {
    const until = Math.max(k.cooling_until_ms, checkOf(k)?.retry_at_ms ?? 0);
    if (until > now) {
      return (
        <Tooltip label="The data planes keep it out of the pool until then">
          <Badge color="orange" variant="light">
            cooling down, {Math.ceil((until - now) / 1000)} s left
          </Badge>
        </Tooltip>
      );
    }
    if (k.rate_limited_recently) return <Badge color="yellow" variant="light">rate limited recently</Badge>;
    if (!k.requests) return <Badge color="gray" variant="light">no traffic</Badge>;
    if (k.last_error_at_ms > k.last_success_at_ms) return <Badge color="red" variant="light">failing</Badge>;
    return <Badge color="teal" variant="light">healthy</Badge>;
  };
  return (
    <Stack>
      <Group justify="space-between">
        <Text size="sm" c="dimmed">
          Traffic from the last 15 minutes of requests{q.data ? `, read ${ago(q.dataUpdatedAt, now)}` : ''}; health
          checks by the control plane.
        </Text>
        <Button variant="default" size="xs" onClick={() => void q.refetch()} loading={q.isFetching}>
          Refresh
        </Button>
      </Group>
      {q.isError && <ErrorState error={q.error} />}
      <DataTable<PoolKeyHealth>
        withTableBorder
        scrollAreaProps={SCROLL}
        borderRadius="md"
        minHeight={q.data?.keys.length ? undefined : 160}
        fetching={q.isPending}
        records={q.data?.keys ?? []}
        idAccessor={(k) => `${k.provider}/${k.key}`}
        noRecordsText="No credentials"
        columns={[
          { accessor: 'provider', title: 'Provider' },
          { accessor: 'key', title: 'Credential', render: (k) => `${k.key}${k.configured ? '' : ' (removed)'}` },
          { accessor: 'state', title: 'State', render: state, noWrap: true },
          { accessor: 'requests', title: 'Attempts', textAlign: 'right', render: (k) => num(k.requests) },
          { accessor: 'errors', title: 'Errors', textAlign: 'right', render: (k) => `${num(k.errors)} (${num(k.rate_limited)} × 429)` },
          { accessor: 'latency', title: 'Latency p50 / p95', textAlign: 'right',
            render: (k) => `${ms(k.latency_p50_ms)} / ${ms(k.latency_p95_ms)}` },
          {
            accessor: 'last_error',
            title: 'Last error',
            render: (k) =>
              k.last_error_at_ms
                ? `${k.last_error_status ? `${k.last_error_status} ` : ''}${k.last_error} (${ago(k.last_error_at_ms, now)})`
                : '–',
          },
          { accessor: 'last_success_at_ms', title: 'Last success', render: (k) => ago(k.last_success_at_ms, now) },
          {
            accessor: 'check',
            title: 'Health check',
            noWrap: true,
            render: (k) => {
              const h = checkOf(k);
              if (!h) return '–';
              return (
                <Tooltip label={h.detail || `checked by ${h.trigger || 'schedule'}`} disabled={!h.detail && !h.trigger}>
                  <Group gap={4} wrap="nowrap">
                    <Badge color={CHECK_COLORS[h.status] ?? 'gray'} variant="light">
                      {h.status.replace(/_/g, ' ')}
                    </Badge>
                    <Text size="xs">
                      {[h.latency_us ? us(h.latency_us) : '', h.checked_at_ms ? ago(h.checked_at_ms, now) : '']
                        .filter(Boolean)
                        .join(' · ')}
                    </Text>
                  </Group>
                </Tooltip>
              );
            },
          },
          {
            accessor: 'actions',
            title: <span className="sr-only">Actions</span>,
            hidden: !mayCheck,
            textAlign: 'right',
            render: (k) =>
              k.configured && (
                <Button
                  size="compact-xs"
                  variant="default"
                  loading={check.isPending && check.variables === k}
                  onClick={() => check.mutate(k)}
                >
                  Check now
                </Button>
              ),
          },
        ]}
      />
    </Stack>
  );
}

export default function ProvidersPage() {
  const { can } = useAuth();
  const mayWrite = can('AdminService/UpsertProvider');
  return (
    <Stack>
      <Title order={2}>Providers and pools</Title>
      <Tabs defaultValue="providers" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="providers">Providers</Tabs.Tab>
          <Tabs.Tab value="health">Credential health</Tabs.Tab>
          {can('AdminService/ListOAuthAccounts') && <Tabs.Tab value="oauth">OAuth accounts</Tabs.Tab>}
          <Tabs.Tab value="routes">Routes</Tabs.Tab>
          <Tabs.Tab value="pricing">Pricing</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="providers" pt="md">
          <ProvidersTab mayWrite={mayWrite} />
        </Tabs.Panel>
        <Tabs.Panel value="health" pt="md">
          <HealthTab mayCheck={can('AdminService/CheckCredential')} />
        </Tabs.Panel>
        <Tabs.Panel value="oauth" pt="md">
          <OAuthAccountsTab />
        </Tabs.Panel>
        <Tabs.Panel value="routes" pt="md">
          <RoutesTab mayWrite={can('AdminService/UpsertRoute')} />
        </Tabs.Panel>
        <Tabs.Panel value="pricing" pt="md">
          <PricingTab mayWrite={can('AdminService/UpsertPrice')} />
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}
