// The audit log: every change, who made it and when, newest first,
// filtered by actor, kind of object and time. Filters and page are the
// address's query, so a reload, Back and a shared link show the same
// entries.
import { useSearchParams } from 'react-router';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { Autocomplete, Button, Group, Paper, Select, SimpleGrid, Stack, Text, TextInput } from '@mantine/core';
import { DataTable } from 'mantine-datatable';
import { api } from '../api';
import { useAuth } from '../auth';
import { when } from '../format';
import { AUDIT_KINDS, type AuditFilter, auditQuery, withAuditFilter, withAuditPage, withoutAuditFilters } from '../nav';
import type { AuditEntry } from '../types';
import { localTimeText, parseLocalTime, rangeError } from '../validate';
import { ErrorState } from './States';
import { SCROLL } from './table';
import { currentSearch as current, useFieldText } from './useFieldText';

/** Actors that are no user or token. */
const OTHER_ACTORS = ['bootstrap', 'system', 'anonymous'];

const timeText = (ms: number | undefined) => (ms === undefined ? '' : localTimeText(ms));

/** A local date and time field for `since_ms` or `until_ms`. */
function TimeField({
  label,
  name,
  drawn,
  error,
  onChange,
}: {
  label: string;
  name: 'since_ms' | 'until_ms';
  drawn: number | undefined;
  error: string | null;
  onChange: (ms: number | null) => void;
}) {
  // The browser reports a half-typed value as empty, which the address
  // then holds too: the half typed stays.
  const [text, setText] = useFieldText(
    timeText(drawn),
    () => timeText(auditQuery(current()).filters[name]),
    (typed, now) => parseLocalTime(typed).value === parseLocalTime(now).value,
  );
  return (
    <TextInput
      type="datetime-local"
      label={label}
      size="xs"
      value={text}
      error={error}
      onChange={(e) => {
        const v = e.currentTarget.value;
        setText(v);
        const parsed = parseLocalTime(v);
        if (!parsed.error) onChange(parsed.value);
      }}
    />
  );
}

export function AuditLog() {
  const { can } = useAuth();
  const [params, setParams] = useSearchParams();
  const search = params.toString();
  const { filters, cursors } = auditQuery(search);
  const token = cursors[cursors.length - 1];
  const q = useQuery({
    queryKey: ['audit', filters, token],
    queryFn: () => api.audit(filters, token),
    placeholderData: keepPreviousData,
  });
  const users = useQuery({ queryKey: ['users'], queryFn: api.users });
  const tokens = useQuery({
    queryKey: ['api-tokens'],
    queryFn: api.apiTokens,
    enabled: can('IdentityService/ListApiTokens'),
  });
  const actors = [
    ...new Set([
      ...(users.data?.users ?? []).map((u) => `user:${u.username}`),
      ...(tokens.data?.tokens ?? []).map((t) => `token:${t.name}`),
      ...OTHER_ACTORS,
    ]),
  ];
  // A kind this UI does not know (a link from a newer one) is still shown.
  const kind = filters.object_kind;
  const kinds: string[] = [...AUDIT_KINDS];
  if (kind && !kinds.includes(kind)) kinds.push(kind);
  /** The address with `change` made to its query; typing replaces the history entry, the rest adds one. */
  const go = (change: (query: string) => string, replace = false) =>
    setParams(new URLSearchParams(change(current())), { replace });
  const set =
    (k: AuditFilter, replace = false) =>
    (v: string | number | null) =>
      go((query) => withAuditFilter(query, k, v), replace);
  const [actor, setActor] = useFieldText(
    params.get('actor') ?? '',
    () => new URLSearchParams(current()).get('actor') ?? '',
    (typed, now) => typed === now,
  );
  const filtered = Object.keys(filters).length > 0;
  const entries = q.data?.entries ?? [];
  return (
    <Stack>
      <Paper withBorder p="sm">
        <SimpleGrid cols={{ base: 1, xs: 2, md: 4 }} spacing="xs">
          <Autocomplete
            label="Actor"
            size="xs"
            placeholder="user:NAME, token:NAME"
            data={actors}
            value={actor}
            onChange={(v) => {
              setActor(v);
              set('actor', true)(v);
            }}
          />
          <Select
            label="Object kind"
            size="xs"
            placeholder="any"
            clearable
            searchable
            data={kinds}
            value={kind ?? null}
            onChange={set('object_kind')}
          />
          <TimeField label="From" name="since_ms" drawn={filters.since_ms} error={null} onChange={set('since_ms', true)} />
          <TimeField
            label="Before"
            name="until_ms"
            drawn={filters.until_ms}
            error={rangeError(filters.since_ms ?? null, filters.until_ms ?? null)}
            onChange={set('until_ms', true)}
          />
        </SimpleGrid>
        <Group justify="space-between" mt="xs">
          <Text size="xs" c="dimmed">
            Actor and kind match exactly; times are your browser's.
          </Text>
          <Button size="compact-xs" variant="default" disabled={!filtered} onClick={() => go(withoutAuditFilters)}>
            Clear filters
          </Button>
        </Group>
      </Paper>
      {q.isError && <ErrorState error={q.error} />}
      <DataTable<AuditEntry>
        withTableBorder
        scrollAreaProps={SCROLL}
        borderRadius="md"
        fetching={q.isFetching}
        minHeight={entries.length ? undefined : 140}
        records={entries}
        idAccessor="id"
        noRecordsText={filtered ? 'No changes match these filters' : 'No changes yet'}
        columns={[
          { accessor: 'at_ms', title: 'When', render: (e) => when(e.at_ms) },
          { accessor: 'actor', title: 'Who' },
          { accessor: 'action', title: 'Did' },
          { accessor: 'object', title: 'What', render: (e) => `${e.object_kind} ${e.object_name}` },
          { accessor: 'detail', title: 'Detail' },
        ]}
      />
      <Group justify="flex-end">
        <Text size="sm" c="dimmed" data-testid="audit-page">
          Page {cursors.length + 1}
        </Text>
        <Button variant="default" disabled={!cursors.length} onClick={() => go((query) => withAuditPage(query, auditQuery(query).cursors, null))}>
          Newer
        </Button>
        <Button
          variant="default"
          disabled={!q.data?.next_page_token || q.isPlaceholderData}
          onClick={() => {
            const t = q.data?.next_page_token;
            if (t) go((query) => withAuditPage(query, auditQuery(query).cursors, t));
          }}
        >
          Older
        </Button>
      </Group>
    </Stack>
  );
}
