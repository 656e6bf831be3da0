// API tokens for automation: list (hints only), create (shown once),
// revoke. `mine` limits the list to the caller's own.
import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Badge, Button, Group, Modal, Select, Stack, TextInput } from '@mantine/core';
import { SCROLL } from './table';
import { DataTable } from 'mantine-datatable';
import { api, nameTaken } from '../api';
import { expiryError, nameError } from '../validate';
import { useAuth } from '../auth';
import { when } from '../format';
import type { ApiTokenInfo } from '../types';
import { defaultTokenRole, grantableRoles } from '../labels';
import { Clip } from './Clip';
import { ErrorState, errorText } from './States';
import { confirmDanger, showSecretOnce } from './Secret';
import { notifyDone, notifyError } from './notify';

export function ApiTokens({ mine }: { mine: boolean }) {
  const { me, can } = useAuth();
  const qc = useQueryClient();
  const q = useQuery({ queryKey: ['api-tokens'], queryFn: api.apiTokens });
  const [open, setOpen] = useState(false);
  const [name, setName] = useState('');
  // The least powerful role: a token gets more only when asked for.
  const [role, setRole] = useState<string | null>(defaultTokenRole(me.role));
  const [expires, setExpires] = useState('');
  const [submitted, setSubmitted] = useState(false);
  const [taken, setTaken] = useState<string | null>(null);
  const expiresMs = expires ? new Date(expires).getTime() : 0;
  const create = useMutation({
    mutationFn: () => api.createApiToken(name.trim(), role ?? '', expiresMs),
    onSuccess: (r) => {
      setOpen(false);
      void qc.invalidateQueries({ queryKey: ['api-tokens'] });
      showSecretOnce(`API token ${r.info.name}`, 'token', r.token);
    },
    onError: (e) => (nameTaken(e) ? setTaken(errorText(e)) : notifyError('Not created', e)),
  });
  const records = (q.data?.tokens ?? []).filter((t) => !mine || t.owner === me.username);
  const mayCreate = can('IdentityService/CreateApiToken') && !!me.username;
  return (
    <Stack>
      {mayCreate && (
        <Group justify="flex-end">
          <Button
            onClick={() => {
              setSubmitted(false);
              setTaken(null);
              setRole(defaultTokenRole(me.role));
              setOpen(true);
            }}
          >
            New API token
          </Button>
        </Group>
      )}
      {q.isError && <ErrorState error={q.error} />}
      <DataTable<ApiTokenInfo>
        withTableBorder
        scrollAreaProps={SCROLL}
        borderRadius="md"
        minHeight={records.length ? undefined : 140}
        fetching={q.isPending}
        records={records}
        idAccessor="id"
        noRecordsText="No API tokens"
        columns={[
          { accessor: 'name', title: 'Name', render: (t) => <Clip text={t.name} width={200} /> },
          { accessor: 'token_hint', title: 'Token', render: (t) => <code>{t.token_hint}</code> },
          { accessor: 'role', title: 'Role' },
          { accessor: 'owner', title: 'Owner', render: (t) => t.owner || '(bootstrap)' },
          { accessor: 'expires_at_ms', title: 'Expires', render: (t) => (t.expires_at_ms ? when(t.expires_at_ms) : 'never') },
          {
            accessor: 'state',
            title: 'State',
            render: (t) =>
              t.revoked ? <Badge color="red" variant="light">revoked</Badge> : <Badge color="teal" variant="light">active</Badge>,
          },
          {
            accessor: 'actions',
            title: <span className="sr-only">Actions</span>,
            textAlign: 'right',
            render: (t) =>
              !t.revoked &&
              (me.role === 'admin' || t.owner === me.username) && (
                <Button
                  size="compact-xs"
                  color="red"
                  variant="light"
                  onClick={() =>
                    confirmDanger(`Revoke ${t.name}?`, 'Automation using it is refused at once.', 'Revoke', () =>
                      api
                        .revokeApiToken(t.name)
                        .then(() => {
                          notifyDone(`Revoked ${t.name}`);
                          void qc.invalidateQueries({ queryKey: ['api-tokens'] });
                        })
                        .catch((e) => notifyError('Not revoked', e)),
                    )
                  }
                >
                  Revoke
                </Button>
              ),
          },
        ]}
      />
      <Modal opened={open} onClose={() => setOpen(false)} title="New API token">
        <form
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            setSubmitted(true);
            if (nameError(name) || expiryError(expiresMs, Date.now())) return;
            create.mutate();
          }}
        >
          <Stack>
            <TextInput
              label="Name"
              required
              value={name}
              error={(submitted ? nameError(name) : null) ?? taken}
              onChange={(e) => {
                setName(e.currentTarget.value);
                setTaken(null);
              }}
            />
            <Select label="Role" allowDeselect={false} data={grantableRoles(me.role)} value={role} onChange={setRole} />
            <TextInput
              label="Expires"
              type="datetime-local"
              value={expires}
              error={submitted ? expiryError(expiresMs, Date.now()) : null}
              onChange={(e) => setExpires(e.currentTarget.value)}
            />
            <Button type="submit" loading={create.isPending}>
              Create token
            </Button>
          </Stack>
        </form>
      </Modal>
    </Stack>
  );
}
