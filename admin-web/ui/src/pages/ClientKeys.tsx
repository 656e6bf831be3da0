// Client keys: the keys apps present. Create one (its secret is shown
// once), set its limits, allowed models and expiry, revoke or delete it,
// and see each key's usage over the last 7 days. Members see and manage
// only their own. The API sends every key at once; the table searches
// them and draws one page.
import { useMemo, useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import {
  Badge,
  Button,
  Group,
  Modal,
  Select,
  Stack,
  TagsInput,
  Text,
  TextInput,
  Title,
} from '@mantine/core';
import { Sparkline } from '@mantine/charts';
import '@mantine/charts/styles.css';
import { SCROLL } from '../components/table';
import { DataTable } from 'mantine-datatable';
import { api, nameTaken } from '../api';
import { expiryError, nameError } from '../validate';
import { useAuth } from '../auth';
import { num, when } from '../format';
import type { ClientKeyInfo, ClientKeySpec } from '../types';
import { ErrorState, errorText } from '../components/States';
import { LimitsFields, limitsText, UsageCell, useLimits } from '../components/Limits';
import { confirmDanger, showSecretOnce } from '../components/Secret';
import { notifyDone, notifyError } from '../components/notify';
import { NameField } from '../components/NameField';
import { Pager, SearchBox, usePaged } from '../components/Paged';
import { Clip } from '../components/Clip';

/** What the search box looks in: the key's name, its owner and its allowed model globs. */
const searchable = (k: ClientKeyInfo) => [k.name, k.owner, ...k.models];

function toLocalInput(msv: number): string {
  if (!msv) return '';
  const d = new Date(msv);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function KeyForm({ initial, onClose }: { initial: ClientKeyInfo | null; onClose: () => void }) {
  const { can, me } = useAuth();
  const qc = useQueryClient();
  const isNew = initial === null;
  const [name, setName] = useState(initial?.name ?? '');
  const [models, setModels] = useState<string[]>(initial?.models ?? []);
  const limits = useLimits(initial);
  const [expires, setExpires] = useState(toLocalInput(initial?.expires_at_ms ?? 0));
  const [owner, setOwner] = useState<string | null>(initial?.owner || null);
  const mayChooseOwner = can('IdentityService/CreateUser') || me.role === 'operator';
  const users = useQuery({ queryKey: ['users'], queryFn: api.users, enabled: mayChooseOwner });
  const [submitted, setSubmitted] = useState(false);
  const [taken, setTaken] = useState<string | null>(null);
  const expiresMs = expires ? new Date(expires).getTime() : 0;
  // An edit may keep an expiry that has passed (the key is expired already).
  const expiryErr =
    submitted && (isNew || expiresMs !== (initial?.expires_at_ms ?? 0)) ? expiryError(expiresMs, Date.now()) : null;
  const save = useMutation({
    mutationFn: () => {
      const spec: ClientKeySpec = {
        name: name.trim(),
        key: '',
        models,
        ...limits.limits(),
        // Kept as they are (set through apply files or the API).
        global: initial?.global ?? false,
        when_store_down: initial?.when_store_down ?? '',
        expires_at_ms: expiresMs,
        owner: owner ?? '',
      };
      return api.putClientKey(spec, isNew);
    },
    onSuccess: (r) => {
      void qc.invalidateQueries({ queryKey: ['client-keys'] });
      onClose();
      if (r.generated_key) showSecretOnce(`Client key ${name.trim()} created`, 'key', r.generated_key);
      else notifyDone(r.changed ? `Saved ${name.trim()}` : 'Nothing changed');
    },
    onError: (e) => (isNew && nameTaken(e) ? setTaken(errorText(e)) : notifyError('Not saved', e)),
  });
  return (
    <Modal opened onClose={onClose} title={isNew ? 'New client key' : `Edit ${initial.name}`}>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          setSubmitted(true);
          const expiryBad =
            (isNew || expiresMs !== (initial?.expires_at_ms ?? 0)) && expiryError(expiresMs, Date.now()) !== null;
          if ((isNew && nameError(name)) || !limits.valid || expiryBad) return;
          save.mutate();
        }}
      >
        <Stack>
          <NameField
            label="Name"
            fixed={!isNew}
            value={name}
            submitted={submitted}
            taken={taken}
            onChange={setName}
            clearTaken={() => setTaken(null)}
          />
          <TagsInput
            label="Allowed models"
            description="Model names or globs (gpt-4o*); empty allows every model. Press Enter after each."
            value={models}
            onChange={setModels}
          />
          <LimitsFields values={limits.values} set={limits.set} parsed={limits.parsed} />
          <Group grow>
            <TextInput
              label="Expires"
              type="datetime-local"
              value={expires}
              error={expiryErr}
              onChange={(e) => setExpires(e.currentTarget.value)}
            />
          </Group>
          {mayChooseOwner && (
            <Select
              label="Owner"
              description="The user whose key this is (they see and manage it)"
              clearable
              searchable
              value={owner}
              onChange={setOwner}
              data={(users.data?.users ?? []).map((u) => u.username)}
            />
          )}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={save.isPending}>
              {isNew ? 'Create key' : 'Save'}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

export default function ClientKeysPage() {
  const { can, me } = useAuth();
  const qc = useQueryClient();
  const keys = useQuery({ queryKey: ['client-keys'], queryFn: api.clientKeys });
  const usage = useQuery({ queryKey: ['key-usage'], queryFn: () => api.overview({ range: '7d' }) });
  const [editing, setEditing] = useState<ClientKeyInfo | null | 'new'>(null);
  const mayWrite = can('AdminService/UpsertClientKey');
  const trends = useMemo(() => new Map((usage.data?.by_client_key ?? []).map((g) => [g.name, g])), [usage.data]);
  const trend = (name: string) => trends.get(name);
  const all = useMemo(() => keys.data?.client_keys ?? [], [keys.data]);
  const { shown, search, setSearch, setPage } = usePaged(all, searchable);
  const act = (what: string, f: () => Promise<unknown>) =>
    f()
      .then(() => {
        notifyDone(what);
        void qc.invalidateQueries({ queryKey: ['client-keys'] });
      })
      .catch((e) => notifyError('Not done', e));
  const now = Date.now();
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>{me.role === 'member' ? 'My client keys' : 'Client keys'}</Title>
        {mayWrite && <Button onClick={() => setEditing('new')}>New client key</Button>}
      </Group>
      <Text size="sm" c="dimmed">
        Apps send their key as <code>Authorization: Bearer</code>, <code>x-api-key</code>,{' '}
        <code>x-goog-api-key</code> or <code>?key=</code>. Only a hint of each key is stored in readable form.
      </Text>
      {keys.isError && <ErrorState error={keys.error} />}
      {all.length > 0 && (
        <SearchBox
          label="Search client keys"
          placeholder="Search by name, owner or model"
          value={search}
          onChange={setSearch}
        />
      )}
      <DataTable<ClientKeyInfo>
        withTableBorder
        scrollAreaProps={SCROLL}
        borderRadius="md"
        minHeight={shown.rows.length ? undefined : 160}
        fetching={keys.isPending}
        records={shown.rows}
        idAccessor="name"
        noRecordsText={
          all.length ? 'No client keys match the search' : mayWrite ? 'No client keys yet: create one' : 'No client keys'
        }
        columns={[
          { accessor: 'name', title: 'Name', render: (k) => <Clip text={k.name} width={180} /> },
          { accessor: 'key_hint', title: 'Key', render: (k) => <code>{k.key_hint}</code> },
          { accessor: 'owner', title: 'Owner', render: (k) => (k.owner ? <Clip text={k.owner} width={120} /> : '–') },
          {
            accessor: 'state',
            title: 'State',
            render: (k) =>
              k.revoked ? (
                <Badge color="red" variant="light">revoked</Badge>
              ) : k.expires_at_ms && k.expires_at_ms < now ? (
                <Badge color="orange" variant="light">expired</Badge>
              ) : (
                <Badge color="teal" variant="light">active</Badge>
              ),
          },
          {
            accessor: 'limits',
            title: 'Limits',
            render: (k) => limitsText(k),
          },
          { accessor: 'used', title: 'Used', render: (k) => <UsageCell limits={k} used={k.used} /> },
          {
            accessor: 'models',
            title: 'Models',
            render: (k) => (k.models.length ? <Clip text={k.models.join(', ')} width={160} /> : 'all'),
          },
          { accessor: 'expires_at_ms', title: 'Expires', render: (k) => (k.expires_at_ms ? when(k.expires_at_ms) : 'never') },
          {
            accessor: 'usage',
            title: 'Requests, 7 days',
            render: (k) => {
              const g = trend(k.name);
              if (!g) return <Text size="xs" c="dimmed">none</Text>;
              return (
                <Group gap="xs" wrap="nowrap">
                  <Sparkline
                    w={90}
                    h={26}
                    data={g.series.map((p) => p.stats?.requests ?? 0)}
                    curveType="linear"
                    role="img"
                    aria-label={`Requests of ${k.name} over 7 days`}
                  />
                  <Text size="xs">{num(g.stats?.requests ?? 0)}</Text>
                </Group>
              );
            },
          },
          {
            accessor: 'actions',
            title: <span className="sr-only">Actions</span>,
            textAlign: 'right',
            hidden: !mayWrite,
            render: (k) => (
              <Group gap={4} justify="flex-end" wrap="nowrap">
                {!k.revoked && (
                  <Button size="compact-xs" variant="default" onClick={() => setEditing(k)}>
                    Edit
                  </Button>
                )}
                {!k.revoked && (
                  <Button
                    size="compact-xs"
                    color="orange"
                    variant="light"
                    onClick={() =>
                      confirmDanger(
                        `Revoke ${k.name}?`,
                        'Apps using this key are refused within a second. Revocation cannot be undone.',
                        'Revoke',
                        () => void act(`Revoked ${k.name}`, () => api.revokeClientKey(k.name)),
                      )
                    }
                  >
                    Revoke
                  </Button>
                )}
                <Button
                  size="compact-xs"
                  color="red"
                  variant="light"
                  onClick={() =>
                    confirmDanger(
                      `Delete ${k.name}?`,
                      'The key is removed; its requests stay in the log.',
                      'Delete',
                      () => void act(`Deleted ${k.name}`, () => api.deleteClientKey(k.name)),
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
      <Pager shown={shown} onPage={setPage} what="client keys" />
      {editing && <KeyForm initial={editing === 'new' ? null : editing} onClose={() => setEditing(null)} />}
    </Stack>
  );
}
