// The request log: filters, search by request id (the x-request-id an app
// got), pages newest first (keyset cursors, so pages stay put while new
// requests arrive), and one request's detail with every upstream attempt.
import { useState } from 'react';
import { useNavigate, useParams, useSearchParams } from 'react-router';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import {
  ActionIcon,
  Alert,
  Badge,
  Button,
  Code,
  CopyButton,
  Drawer,
  Group,
  Paper,
  Select,
  SimpleGrid,
  Stack,
  Text,
  TextInput,
  Title,
  Tooltip,
} from '@mantine/core';
import { IconCheck, IconCopy, IconSearch } from '@tabler/icons-react';
import { SCROLL } from '../components/table';
import { DataTable } from 'mantine-datatable';
import { api } from '../api';
import { ms, num, us, usd, when } from '../format';
import type { TraceAttempt, TraceInfo } from '../types';
import { ErrorState, LoadingState } from '../components/States';
import { currentSearch, useFieldText } from '../components/useFieldText';
import { type RequestFilter, requestsQuery, withRequestsFilter, withRequestsPage } from '../nav';
import { failureText, refusalText } from '../labels';
import { Clip } from '../components/Clip';

const PERIODS: Record<string, number> = { '1h': 3600_000, '24h': 86400_000, '7d': 7 * 86400_000 };

export function StatusBadge({ status, error }: { status: number; error?: string }) {
  const color = status >= 500 || (status === 0 && error) ? 'red' : status >= 400 ? 'orange' : 'teal';
  return (
    <Badge color={color} variant="light">
      {status || 'error'}
    </Badge>
  );
}

// Where a trace's token counts (and so its cost) come from, in words.
const USAGE_SOURCES: Record<string, string> = {
  '': 'reported by the provider',
  estimated_abandoned: 'estimated: the app left before the provider reported usage',
  estimated_broken: 'estimated: the upstream stream was cut, stalled or overran',
  estimated_unreported: 'estimated: the provider reported no usage',
};

/** What the trace says of its usage: reported, estimated, or none at all. */
export function usageSource(t: TraceInfo, attempts: TraceAttempt[]): string {
  const s = t.usage_source ?? '';
  // An estimate says so, whatever the status.
  if (s) return USAGE_SOURCES[s] ?? s.replace(/_/g, ' '); // a kind this UI does not know yet
  const tokens = t.input_tokens + t.output_tokens + t.cached_tokens + t.reasoning_tokens;
  if (t.refused_by || attempts.length === 0) {
    return tokens ? 'estimated by the gateway (no upstream call was made)' : 'none: no upstream call was made';
  }
  const failed = t.status < 200 || t.status >= 300;
  if (failed && !tokens) return 'none: the upstream call failed';
  return USAGE_SOURCES[''];
}

function Detail({ id, onClose }: { id: string; onClose: () => void }) {
  const q = useQuery({ queryKey: ['trace', id], queryFn: () => api.trace(id), retry: false });
  const t = q.data?.trace;
  const attempts = q.data?.attempts ?? [];
  return (
    <Drawer opened onClose={onClose} position="right" size="xl" title={<Text fw={700}>Request {id}</Text>}>
      {q.isPending && <LoadingState />}
      {q.isError && <ErrorState error={q.error} title="No such request" />}
      {t && (
        <Stack>
          {t.error && (
            <Alert color="red" title="Why it failed">
              <Text size="sm" data-testid="detail-error">
                {failureText(t.error) ?? t.error}
              </Text>
              {failureText(t.error) && (
                // The code, as the attempts below and the data plane's logs and metrics have it.
                <Text size="xs" c="dimmed" mt={4}>
                  Error code <Code>{t.error}</Code>
                </Text>
              )}
            </Alert>
          )}
          <SimpleGrid cols={2} spacing="xs">
            <Text size="sm" c="dimmed">Started</Text>
            <Text size="sm">{when(t.started_at_ms)}</Text>
            <Text size="sm" c="dimmed">Status</Text>
            <div><StatusBadge status={t.status} error={t.error} /></div>
            <Text size="sm" c="dimmed">Client key</Text>
            <Text size="sm" style={{ overflowWrap: 'anywhere' }}>{t.client_key_name}{t.owner ? ` (${t.owner})` : ''}</Text>
            <Text size="sm" c="dimmed">Model</Text>
            <Text size="sm" style={{ overflowWrap: 'anywhere' }}>{t.model}</Text>
            <Text size="sm" c="dimmed">Provider / credential</Text>
            <Text size="sm">{t.provider || '–'} / {t.provider_key || '–'}</Text>
            <Text size="sm" c="dimmed">Endpoint</Text>
            <Text size="sm">{t.endpoint}{t.stream ? ' (stream)' : ''}</Text>
            <Text size="sm" c="dimmed">Format</Text>
            <Text size="sm" data-testid="translation">
              {t.upstream_format && t.upstream_format !== t.api_format
                ? `${t.api_format} → ${t.upstream_format} (translated)`
                : `${t.api_format} (passed through)`}
            </Text>
            <Text size="sm" c="dimmed">Latency / first byte</Text>
            <Text size="sm">{us(t.latency_us)} / {us(t.ttfb_us)}</Text>
            <Text size="sm" c="dimmed">Gateway overhead</Text>
            <Text size="sm">{us(t.overhead_us)}</Text>
            <Text size="sm" c="dimmed">Tokens</Text>
            <Text size="sm" data-testid="detail-tokens">
              {num(t.input_tokens)} in ({num(t.cached_tokens)} cached) · {num(t.output_tokens)} out
              {t.reasoning_tokens ? ` · ${num(t.reasoning_tokens)} reasoning` : ''}
            </Text>
            <Text size="sm" c="dimmed">Cost</Text>
            <Text size="sm" data-testid="detail-cost">{usd(t.cost)}</Text>
            <Text size="sm" c="dimmed">Usage</Text>
            <Text size="sm" data-testid="detail-usage">{usageSource(t, attempts)}</Text>
            {t.refused_by && (
              <>
                <Text size="sm" c="dimmed">Refused by</Text>
                <div data-testid="detail-refused-by">
                  <Text size="sm">{refusalText(t.refused_by, t)}</Text>
                  <Text size="xs" c="dimmed" style={{ overflowWrap: 'anywhere' }}>
                    <Code>{t.refused_by}</Code>
                  </Text>
                </div>
              </>
            )}
            <Text size="sm" c="dimmed">Region / data plane</Text>
            <Text size="sm">{t.region} / {t.node_id}</Text>
          </SimpleGrid>
          <Title order={3} size="h5">
            Upstream attempts
          </Title>
          <DataTable<TraceAttempt>
            withTableBorder
            scrollAreaProps={SCROLL}
            records={attempts}
            idAccessor={(a) => String(attempts.indexOf(a))}
            minHeight={attempts.length ? undefined : 100}
            noRecordsText="No upstream call was made (refused by the gateway)"
            columns={[
              { accessor: 'n', title: '#', render: (a) => attempts.indexOf(a) + 1 },
              { accessor: 'provider_key', title: 'Credential', render: (a) => `${a.provider} / ${a.provider_key}` },
              { accessor: 'status', title: 'Status', render: (a) => <StatusBadge status={a.status} error={a.error} /> },
              { accessor: 'latency_us', title: 'Headers after', render: (a) => us(a.latency_us) },
              {
                accessor: 'why',
                title: 'Why retried',
                render: (a) =>
                  a.status >= 400 || a.error
                    ? `${a.error || `status ${a.status}`}${a.cooldown_ms ? `; credential cooled down ${ms(a.cooldown_ms)}` : ''}`
                    : attempts.indexOf(a) === attempts.length - 1
                      ? 'answered'
                      : '–',
              },
            ]}
          />
          <Text size="xs" c="dimmed">
            Request id <Code>{t.request_id}</Code> is the x-request-id header the app received.
          </Text>
        </Stack>
      )}
    </Drawer>
  );
}

/**
 * A text filter: what is typed stays as typed while the address (which
 * each key changes, built on the address as it is now) catches up.
 */
function FilterText({
  name,
  label,
  drawn,
  onChange,
}: {
  name: RequestFilter;
  label: string;
  drawn: string;
  onChange: (v: string) => void;
}) {
  const [text, setText] = useFieldText(
    drawn,
    () => requestsQuery(currentSearch()).filters[name] ?? '',
    (typed, now) => typed === now,
  );
  return (
    <TextInput
      label={label}
      size="xs"
      value={text}
      onChange={(e) => {
        const v = e.currentTarget.value;
        setText(v);
        onChange(v);
      }}
    />
  );
}

/** "…" and the end of a request id: its beginning is the data plane's, the same on every row. */
function RequestId({ id }: { id: string }) {
  const short = id.length > 16 ? `…${id.slice(-12)}` : id;
  return (
    <Group gap={2} wrap="nowrap" onClick={(e) => e.stopPropagation()}>
      <Tooltip label={id}>
        <Code data-testid="request-id" title={id}>
          {short}
        </Code>
      </Tooltip>
      <CopyButton value={id}>
        {({ copied, copy }) => (
          <ActionIcon variant="subtle" size="sm" aria-label={`Copy request id ${id}`} onClick={copy}>
            {copied ? <IconCheck size={14} /> : <IconCopy size={14} />}
          </ActionIcon>
        )}
      </CopyButton>
    </Group>
  );
}

export default function RequestsPage() {
  const { id } = useParams();
  const navigate = useNavigate();
  // Filters, period and page are the URL's query, so a refresh, Back and
  // Forward and a shared link keep them.
  const [params, setParams] = useSearchParams();
  // `cursors`: the keyset cursors of the pages after the first, in order.
  const { filters, period, cursors, at } = requestsQuery(params.toString());
  const [search, setSearch] = useState('');
  const page_token = cursors[cursors.length - 1];
  // The period starts at a fixed time (until Refresh), so paging is stable;
  // while paging it is in the URL too.
  const [mounted, setMounted] = useState(() => Date.now());
  const anchor = at || mounted;
  const since_ms = PERIODS[period] ? anchor - PERIODS[period] : undefined;
  const q = useQuery({
    queryKey: ['traces', filters, since_ms, page_token],
    queryFn: () => api.traces({ ...filters, since_ms, page_size: 50, page_token }),
    placeholderData: keepPreviousData,
  });
  /**
   * The address with `change` made to its query as it is now (not as the
   * page was drawn with: a second change before the page is drawn again
   * keeps the first); typing replaces the history entry, the rest adds one.
   */
  const go = (change: (query: string) => string, replace = false) =>
    setParams(new URLSearchParams(change(currentSearch())), { replace });
  /** Another page; past the first, the period stays anchored where it was. */
  const toPage = (next: string | null | 'first') =>
    go((query) => withRequestsPage(query, next, requestsQuery(query).at || mounted));
  const refresh = () => {
    go((query) => withRequestsPage(query, 'first', 0), true);
    setMounted(Date.now());
  };
  const set =
    (k: RequestFilter | 'period', replace = false) =>
    (v: string | null) =>
      go((query) => withRequestsFilter(query, k, v), replace);
  /** This page's query, for the detail's address (and back), as it is now. */
  const here = () => currentSearch();
  const text = (k: RequestFilter, label: string) => (
    <FilterText name={k} label={label} drawn={params.get(k) ?? ''} onChange={set(k, true)} />
  );
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Requests</Title>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (search.trim()) navigate(`/requests/${encodeURIComponent(search.trim())}${here()}`);
          }}
        >
          <Group gap="xs">
            <TextInput
              aria-label="Request id"
              placeholder="Find a request id"
              leftSection={<IconSearch size={16} />}
              value={search}
              onChange={(e) => setSearch(e.currentTarget.value)}
            />
            <Button type="submit" variant="default">
              Find
            </Button>
          </Group>
        </form>
      </Group>
      <Paper withBorder p="sm">
        <SimpleGrid cols={{ base: 2, sm: 3, lg: 5 }} spacing="xs">
          <Select
            label="Period"
            size="xs"
            value={period}
            allowDeselect={false}
            onChange={(v) => {
              setMounted(Date.now());
              set('period')(v);
            }}
            data={[
              { value: '1h', label: 'Last hour' },
              { value: '24h', label: 'Last 24 hours' },
              { value: '7d', label: 'Last 7 days' },
              { value: 'all', label: 'All' },
            ]}
          />
          {text('client_key', 'Client key')}
          {text('user', 'User')}
          {text('model', 'Model')}
          {text('provider', 'Provider')}
          <Select
            label="Status"
            size="xs"
            clearable
            value={params.get('status_class')}
            onChange={set('status_class')}
            data={[
              { value: 'ok', label: 'Succeeded' },
              { value: 'error', label: 'Failed' },
              { value: '2xx', label: '2xx' },
              { value: '4xx', label: '4xx' },
              { value: '5xx', label: '5xx' },
            ]}
          />
          {text('region', 'Region')}
          {text('node_id', 'Data plane')}
        </SimpleGrid>
      </Paper>
      {q.isError && <ErrorState error={q.error} />}
      {q.isPending ? (
        <LoadingState label="Loading requests" />
      ) : (
        <DataTable<TraceInfo>
          withTableBorder
          scrollAreaProps={SCROLL}
          borderRadius="md"
          highlightOnHover
          minHeight={q.data?.traces.length ? undefined : 160}
          fetching={q.isFetching}
          records={q.data?.traces ?? []}
          idAccessor="request_id"
          noRecordsText="No requests match"
          onRowClick={({ record }) => navigate(`/requests/${encodeURIComponent(record.request_id)}${here()}`)}
          columns={[
            { accessor: 'started_at_ms', title: 'Time', render: (t) => when(t.started_at_ms) },
            { accessor: 'client_key_name', title: 'Key', render: (t) => <Clip text={t.client_key_name} width={200} /> },
            { accessor: 'model', title: 'Model', render: (t) => <Clip text={t.model} width={200} /> },
            { accessor: 'provider', title: 'Provider', visibleMediaQuery: (t) => `(min-width: ${t.breakpoints.md})` },
            { accessor: 'status', title: 'Status', render: (t) => <StatusBadge status={t.status} error={t.error} /> },
            { accessor: 'latency_us', title: 'Latency', textAlign: 'right', render: (t) => us(t.latency_us) },
            {
              accessor: 'tokens',
              title: 'Tokens',
              textAlign: 'right',
              render: (t) => `${num(t.input_tokens)} / ${num(t.output_tokens)}`,
            },
            { accessor: 'cost', title: 'Cost', textAlign: 'right', render: (t) => usd(t.cost) },
            {
              accessor: 'request_id',
              title: 'Request id',
              visibleMediaQuery: (t) => `(min-width: ${t.breakpoints.lg})`,
              render: (t) => <RequestId id={t.request_id} />,
            },
          ]}
        />
      )}
      <Group justify="space-between">
        <Button
          variant="default"
          disabled={cursors.length === 0}
          onClick={() => toPage('first')}
        >
          Newest
        </Button>
        <Group gap="xs">
          <Button variant="default" disabled={cursors.length === 0} onClick={() => toPage(null)}>
            Newer
          </Button>
          <Button
            variant="default"
            // Until the page asked for is in, the token shown is the
            // previous page's (a second click would append it again).
            disabled={!q.data?.next_page_token || q.isPlaceholderData}
            onClick={() => {
              const t = q.data?.next_page_token;
              if (t) toPage(t);
            }}
          >
            Older
          </Button>
          <Button
            variant="light"
            onClick={refresh}
          >
            Refresh
          </Button>
        </Group>
      </Group>
      {id && <Detail id={id} onClose={() => navigate(`/requests${here()}`)} />}
    </Stack>
  );
}
