// The overview: the period against the one before, over time, and broken
// down by region, provider, model, client key, user and team. Live: admin-web
// streams a new overview (server-sent events) whenever requests are stored.
import { useEffect, useState } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import {
  Badge,
  CloseButton,
  Group,
  Paper,
  SegmentedControl,
  SimpleGrid,
  Stack,
  Tabs,
  Text,
  Title,
} from '@mantine/core';
import { AreaChart, BarChart, LineChart } from '@mantine/charts';
import '@mantine/charts/styles.css';
import { SCROLL } from '../components/table';
import { DataTable } from 'mantine-datatable';
import { ApiError, api, sessionEnded, type OverviewFilters } from '../api';
import { useAuth } from '../auth';
import { change, ms, num, pct, usd } from '../format';
import type { Overview, OverviewGroup, OverviewStats, Range } from '../types';
import { afterLiveError, backoffStep, errorCode } from '../live';
import { EmptyState, ErrorState, LoadingState } from '../components/States';
import { Clip } from '../components/Clip';

const ZERO: OverviewStats = {
  requests: 0,
  errors: 0,
  input_tokens: 0,
  output_tokens: 0,
  cached_tokens: 0,
  reasoning_tokens: 0,
  cost: 0,
  latency_p50_ms: 0,
  latency_p95_ms: 0,
  latency_p99_ms: 0,
  ttfb_p50_ms: 0,
  ttfb_p95_ms: 0,
  ttfb_p99_ms: 0,
  overhead_p50_ms: 0,
  overhead_p95_ms: 0,
  overhead_p99_ms: 0,
};

type Dim = 'region' | 'provider' | 'model' | 'client_key' | 'user' | 'team';
const DIMS: { key: Dim; label: string; field: keyof Overview }[] = [
  { key: 'model', label: 'Model', field: 'by_model' },
  { key: 'provider', label: 'Provider', field: 'by_provider' },
  { key: 'client_key', label: 'Client key', field: 'by_client_key' },
  { key: 'user', label: 'User', field: 'by_user' },
  { key: 'team', label: 'Team', field: 'by_team' },
  { key: 'region', label: 'Region', field: 'by_region' },
];

/** Keeps the overview in the query cache up to date from the live stream. */
function useLive(filters: OverviewFilters): 'live' | 'connecting' | 'stopped' {
  const qc = useQueryClient();
  const [state, setState] = useState<'live' | 'connecting' | 'stopped'>('connecting');
  const url = api.overviewLiveUrl(filters);
  useEffect(() => {
    let es: EventSource | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let attempt = 0;
    let since = 0;
    let done = false;
    const stop = () => {
      done = true;
      setState('stopped');
    };
    const retry = (code: string | null) => {
      es?.close();
      const healthy = since ? Date.now() - since : 0;
      since = 0;
      const step = backoffStep(attempt, healthy);
      attempt = step + 1;
      const wait = afterLiveError(code, step, Math.random());
      if (wait === 'stop') return stop();
      setState('connecting');
      timer = setTimeout(connect, wait);
    };
    const connect = () => {
      if (done) return;
      const source = new EventSource(url);
      es = source;
      source.addEventListener('overview', (e) => {
        if (!since) since = Date.now();
        qc.setQueryData(['overview', url], JSON.parse((e as MessageEvent).data) as Overview);
        setState('live');
      });
      source.addEventListener('error', (e) => {
        // A server "error" event ends the stream: the session ended (stop)
        // or the control plane went away (connect again). A dropped
        // connection the browser retries by itself; one refused it gives
        // up on, which is also how an ended session is refused (401 before
        // the stream starts): the session is checked through the API,
        // which signs the page out on a 401.
        const data = (e as MessageEvent).data;
        if (data) return retry(errorCode(data));
        if (source.readyState !== EventSource.CLOSED) return setState('connecting');
        source.close();
        api
          .me()
          .then((me) => {
            if (done) return;
            if (me === null) {
              stop();
              sessionEnded();
            } else retry(null);
          })
          .catch((err: unknown) => {
            if (done) return;
            if (err instanceof ApiError && (err.status === 401 || err.status === 403)) stop();
            else retry(null);
          });
      });
    };
    setState('connecting');
    connect();
    return () => {
      done = true;
      clearTimeout(timer);
      es?.close();
    };
  }, [url, qc]);
  return state;
}

function Stat({ label, value, cur, prev, invert, help }: {
  label: string;
  value: string;
  cur?: number;
  prev?: number;
  invert?: boolean;
  help?: string;
}) {
  const c = cur !== undefined && prev !== undefined ? change(cur, prev) : null;
  const up = c !== null && c.startsWith('+');
  const good = invert ? !up : up;
  return (
    <Paper withBorder p="md" radius="md">
      <Text size="xs" c="dimmed" tt="uppercase" fw={700}>
        {label}
      </Text>
      <Group gap="xs" align="baseline" wrap="nowrap">
        <Text fw={700} size="xl" data-testid={`stat-${label}`}>
          {value}
        </Text>
        {c && c !== '±0%' && (
          <Text size="sm" c={c === 'new' ? 'dimmed' : good ? 'teal.8' : 'red.8'} fw={600}>
            {c}
          </Text>
        )}
      </Group>
      {help && (
        <Text size="xs" c="dimmed">
          {help}
        </Text>
      )}
    </Paper>
  );
}

function label(t: number, bucketMs: number): string {
  const d = new Date(t);
  if (bucketMs >= 6 * 3600_000) return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' }) +
    (bucketMs < 86400_000 ? ` ${d.getHours()}:00` : '');
  return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

function GroupTable({ groups, dim, onPick }: { groups: OverviewGroup[]; dim: string; onPick: (name: string) => void }) {
  return (
    <DataTable
      withTableBorder
      scrollAreaProps={SCROLL}
      borderRadius="md"
      highlightOnHover
      minHeight={groups.length ? undefined : 120}
      records={groups}
      idAccessor="name"
      noRecordsText="No requests in this period"
      onRowClick={({ record }) => onPick(record.name)}
      columns={[
        { accessor: 'name', title: dim, render: (g) => <Clip text={g.name || '(none)'} width={260} /> },
        {
          accessor: 'requests',
          title: 'Requests',
          textAlign: 'right',
          render: (g) => {
            const s = g.stats ?? ZERO;
            const c = change(s.requests, g.previous?.requests ?? 0);
            return `${num(s.requests)}${c && c !== '±0%' ? ` (${c})` : ''}`;
          },
        },
        { accessor: 'errors', title: 'Errors', textAlign: 'right', render: (g) => pct(g.stats?.errors ?? 0, g.stats?.requests ?? 0) },
        {
          accessor: 'tokens',
          title: 'Tokens in / out',
          textAlign: 'right',
          render: (g) => `${num(g.stats?.input_tokens ?? 0)} / ${num(g.stats?.output_tokens ?? 0)}`,
        },
        { accessor: 'cost', title: 'Cost', textAlign: 'right', render: (g) => usd(g.stats?.cost ?? 0) },
        { accessor: 'p50', title: 'Latency p50', textAlign: 'right', render: (g) => ms(g.stats?.latency_p50_ms ?? 0) },
        { accessor: 'p95', title: 'p95', textAlign: 'right', render: (g) => ms(g.stats?.latency_p95_ms ?? 0) },
      ]}
    />
  );
}

export default function OverviewPage() {
  const { me } = useAuth();
  const [range, setRange] = useState<Range>('24h');
  const [picked, setPicked] = useState<Partial<Record<Dim, string>>>({});
  const filters: OverviewFilters = { range, ...picked };
  const url = api.overviewLiveUrl(filters);
  const live = useLive(filters);
  const q = useQuery({ queryKey: ['overview', url], queryFn: () => api.overview(filters) });
  const o = q.data;
  const cur = o?.current ?? ZERO;
  const prev = o?.previous ?? ZERO;
  const series = (o?.series ?? []).map((p) => {
    const s = p.stats ?? ZERO;
    return {
      time: label(p.bucket_start_ms, o?.bucket_ms ?? 3600_000),
      Requests: s.requests,
      Errors: s.errors,
      Input: s.input_tokens - s.cached_tokens,
      Cached: s.cached_tokens,
      Output: s.output_tokens,
      Cost: Number(s.cost.toFixed(6)),
      p50: s.latency_p50_ms,
      p95: s.latency_p95_ms,
      p99: s.latency_p99_ms,
      'TTFB p50': s.ttfb_p50_ms,
    };
  });
  return (
    <Stack>
      <Group justify="space-between" wrap="wrap">
        <Group gap="sm">
          <Title order={2}>{me.role === 'member' ? 'My usage' : 'Overview'}</Title>
          <Badge
            color={live === 'live' ? 'teal' : live === 'connecting' ? 'yellow' : 'gray'}
            variant="dot"
            data-testid="live-state"
          >
            {live === 'live' ? 'Live' : live === 'connecting' ? 'Connecting' : 'Not live'}
          </Badge>
        </Group>
        <SegmentedControl
          aria-label="Period"
          value={range}
          onChange={(v) => setRange(v as Range)}
          data={[
            { label: '1 h', value: '1h' },
            { label: '24 h', value: '24h' },
            { label: '7 d', value: '7d' },
            { label: '30 d', value: '30d' },
          ]}
        />
      </Group>
      {Object.keys(picked).length > 0 && (
        <Group gap="xs">
          <Text size="sm">Filtered to</Text>
          {(Object.entries(picked) as [Dim, string][]).map(([k, v]) => (
            <Badge
              key={k}
              variant="light"
              rightSection={
                <CloseButton
                  size="xs"
                  aria-label={`Remove filter ${k}`}
                  onClick={() => setPicked(({ [k]: _, ...rest }) => rest)}
                />
              }
            >
              {k}: {v || '(none)'}
            </Badge>
          ))}
        </Group>
      )}
      {q.isPending && <LoadingState label="Loading the overview" />}
      {q.isError && <ErrorState error={q.error} />}
      {o && (
        <>
          <SimpleGrid cols={{ base: 1, xs: 2, md: 4 }}>
            <Stat label="Requests" value={num(cur.requests)} cur={cur.requests} prev={prev.requests} />
            <Stat
              label="Errors"
              value={`${num(cur.errors)} (${pct(cur.errors, cur.requests)})`}
              cur={cur.errors}
              prev={prev.errors}
              invert
            />
            <Stat
              label="Tokens"
              value={num(cur.input_tokens + cur.output_tokens)}
              cur={cur.input_tokens + cur.output_tokens}
              prev={prev.input_tokens + prev.output_tokens}
              help={`${num(cur.input_tokens)} in (${num(cur.cached_tokens)} cached) · ${num(cur.output_tokens)} out`}
            />
            <Stat label="Cost" value={usd(cur.cost)} cur={cur.cost} prev={prev.cost} invert />
            <Stat
              label="Latency"
              value={ms(cur.latency_p50_ms)}
              help={`p50 ${ms(cur.latency_p50_ms)} · p95 ${ms(cur.latency_p95_ms)} · p99 ${ms(cur.latency_p99_ms)}`}
            />
            <Stat
              label="Time to first byte"
              value={ms(cur.ttfb_p50_ms)}
              help={`p50 ${ms(cur.ttfb_p50_ms)} · p95 ${ms(cur.ttfb_p95_ms)} · p99 ${ms(cur.ttfb_p99_ms)}`}
            />
            <Stat
              label="Gateway overhead"
              value={ms(cur.overhead_p50_ms)}
              help={`p50 ${ms(cur.overhead_p50_ms)} · p95 ${ms(cur.overhead_p95_ms)} · p99 ${ms(cur.overhead_p99_ms)}`}
            />
            <Stat
              label="Previous period"
              value={num(prev.requests)}
              help={`requests · ${usd(prev.cost)} · ${pct(prev.errors, prev.requests)} errors`}
            />
          </SimpleGrid>
          {series.length === 0 ? (
            <Paper withBorder p="md">
              <EmptyState title="No requests in this period">
                Requests show here within a second of being served.
              </EmptyState>
            </Paper>
          ) : (
            <SimpleGrid cols={{ base: 1, lg: 2 }}>
              <Paper withBorder p="md">
                <Text fw={600} mb="sm">
                  Requests and errors
                </Text>
                <AreaChart
                  h={220}
                  data={series}
                  dataKey="time"
                  withDots={false}
                  series={[
                    { name: 'Requests', color: 'indigo.6' },
                    { name: 'Errors', color: 'red.6' },
                  ]}
                />
              </Paper>
              <Paper withBorder p="md">
                <Text fw={600} mb="sm">
                  Tokens
                </Text>
                <BarChart
                  h={220}
                  data={series}
                  dataKey="time"
                  type="stacked"
                  valueFormatter={num}
                  series={[
                    { name: 'Input', color: 'blue.6' },
                    { name: 'Cached', color: 'cyan.5' },
                    { name: 'Output', color: 'grape.6' },
                  ]}
                />
              </Paper>
              <Paper withBorder p="md">
                <Text fw={600} mb="sm">
                  Latency (ms)
                </Text>
                <LineChart
                  h={220}
                  data={series}
                  dataKey="time"
                  withDots={false}
                  series={[
                    { name: 'p50', color: 'teal.6' },
                    { name: 'p95', color: 'orange.6' },
                    { name: 'p99', color: 'red.6' },
                    { name: 'TTFB p50', color: 'gray.6' },
                  ]}
                />
              </Paper>
              <Paper withBorder p="md">
                <Text fw={600} mb="sm">
                  Cost (USD)
                </Text>
                <AreaChart
                  h={220}
                  data={series}
                  dataKey="time"
                  withDots={false}
                  valueFormatter={usd}
                  series={[{ name: 'Cost', color: 'green.7' }]}
                />
              </Paper>
            </SimpleGrid>
          )}
          <Paper withBorder p="md">
            <Tabs defaultValue="model">
              <Tabs.List>
                {DIMS.map((d) => (
                  <Tabs.Tab key={d.key} value={d.key}>
                    By {d.label.toLowerCase()}
                  </Tabs.Tab>
                ))}
              </Tabs.List>
              {DIMS.map((d) => (
                <Tabs.Panel key={d.key} value={d.key} pt="sm">
                  <GroupTable
                    groups={o[d.field] as OverviewGroup[]}
                    dim={d.label}
                    onPick={(name) => setPicked((p) => ({ ...p, [d.key]: name }))}
                  />
                </Tabs.Panel>
              ))}
            </Tabs>
          </Paper>
        </>
      )}
    </Stack>
  );
}
