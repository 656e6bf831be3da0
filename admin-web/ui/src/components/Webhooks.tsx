// The webhooks budget alerts are posted to (50, 80 and 100 % of a limit,
// once per threshold and period), each signed with its own secret. The
// secret is write-only: the list shows its hint, and an edit that leaves
// it empty keeps it (for the same URL: a new one needs it again). Roles
// that may not change webhooks see the list only (and, but for admins,
// each URL's origin: chat services put their secret in the path).
import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Alert, Button, Code, Group, Modal, PasswordInput, Stack, Text, TextInput, Title } from '@mantine/core';
import { DataTable } from 'mantine-datatable';
import { api, nameTaken } from '../api';
import { useAuth } from '../auth';
import type { WebhookInfo } from '../types';
import { nameError, secretError, webhookUrlError } from '../validate';
import { ErrorState, errorText } from './States';
import { confirmDanger } from './Secret';
import { notifyDone, notifyError } from './notify';
import { SCROLL } from './table';
import { NameField } from './NameField';

function WebhookForm({ hook, onClose }: { hook: WebhookInfo | null; onClose: () => void }) {
  const qc = useQueryClient();
  const { me } = useAuth();
  const isNew = hook === null;
  const [name, setName] = useState(hook?.name ?? '');
  const [url, setUrl] = useState(hook?.url ?? '');
  const [secret, setSecret] = useState('');
  const [submitted, setSubmitted] = useState(false);
  const [taken, setTaken] = useState<string | null>(null);
  const save = useMutation({
    mutationFn: () => api.putWebhook(name.trim(), { url: url.trim(), secret }, isNew),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: ['webhooks'] });
      onClose();
      notifyDone(`Saved webhook ${name.trim()}`);
    },
    onError: (e) => {
      if (isNew && nameTaken(e)) setTaken(errorText(e));
    },
  });
  const urlErr = submitted ? webhookUrlError(url, hook?.url) : null;
  const secretErr = submitted ? secretError(secret, isNew, 'a new webhook needs its secret') : null;
  // Only admins are shown a URL whole: others edit `https://host/…`.
  const masked = !isNew && hook.url.includes('…') && me.role !== 'admin';
  return (
    <Modal opened onClose={onClose} size="lg" title={hook ? `Edit webhook ${hook.name}` : 'New webhook'}>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          setSubmitted(true);
          if (
            (isNew && nameError(name)) ||
            webhookUrlError(url, hook?.url) ||
            secretError(secret, isNew)
          ) {
            return;
          }
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
          <TextInput
            label="URL"
            required
            description={
              masked
                ? 'Its path is hidden from your role: leave it as it is to keep the stored URL, or type a whole new one'
                : 'Where alerts are posted (a JSON body per alert)'
            }
            placeholder="https://hooks.example.com/aigw"
            autoComplete="off"
            value={url}
            error={urlErr}
            onChange={(e) => setUrl(e.currentTarget.value)}
          />
          <PasswordInput
            label="Secret"
            required={isNew}
            description={
              isNew
                ? 'Signs every alert: HMAC-SHA256 of the body, in the x-aigw-signature header'
                : `Stored (${hook.secret_hint}); leave empty to keep it (a new URL needs it again)`
            }
            placeholder={isNew ? '' : 'unchanged'}
            autoComplete="off"
            value={secret}
            error={secretErr}
            onChange={(e) => setSecret(e.currentTarget.value)}
          />
          {save.isError && !taken && (
            <Alert color="red" title="Not saved" role="alert">
              {errorText(save.error)}
            </Alert>
          )}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={save.isPending}>
              Save webhook
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

export function Webhooks() {
  const { can } = useAuth();
  const qc = useQueryClient();
  const q = useQuery({ queryKey: ['webhooks'], queryFn: api.webhooks });
  const [editing, setEditing] = useState<WebhookInfo | null | 'new'>(null);
  const mayEdit = can('AdminService/UpsertWebhook');
  const mayDelete = can('AdminService/DeleteWebhook');
  const remove = useMutation({
    mutationFn: (name: string) => api.deleteWebhook(name),
    onSuccess: (_, name) => {
      void qc.invalidateQueries({ queryKey: ['webhooks'] });
      notifyDone(`Deleted webhook ${name}`);
    },
    onError: (e) => notifyError('Not deleted', e),
  });
  return (
    <Stack>
      <Group justify="space-between" align="flex-start">
        <Stack gap={4}>
          <Title order={3}>Alert webhooks</Title>
          <Text size="sm" c="dimmed" maw={720}>
            When a budget reaches 50, 80 or 100 % of a limit, the alert goes to the audit log and is posted to every
            webhook below, once per threshold and period, signed with the webhook's secret (HMAC-SHA256 of the body
            in <Code>x-aigw-signature</Code>).
          </Text>
        </Stack>
        {mayEdit && <Button onClick={() => setEditing('new')}>New webhook</Button>}
      </Group>
      {q.isError && <ErrorState error={q.error} />}
      <DataTable<WebhookInfo>
        withTableBorder
        scrollAreaProps={SCROLL}
        borderRadius="md"
        fetching={q.isPending}
        minHeight={q.data?.webhooks.length ? undefined : 120}
        records={q.data?.webhooks ?? []}
        idAccessor="name"
        noRecordsText="No webhooks: budget alerts are only recorded in the audit log"
        columns={[
          { accessor: 'name', title: 'Name' },
          { accessor: 'url', title: 'URL', render: (w) => <Text size="sm" style={{ wordBreak: 'break-all' }}>{w.url}</Text> },
          { accessor: 'secret_hint', title: 'Secret', render: (w) => <Code>{w.secret_hint}</Code> },
          {
            accessor: 'actions',
            title: <span className="sr-only">Actions</span>,
            hidden: !mayEdit && !mayDelete,
            textAlign: 'right',
            render: (w) => (
              <Group gap="xs" justify="flex-end" wrap="nowrap">
                {mayEdit && (
                  <Button size="compact-xs" variant="default" onClick={() => setEditing(w)}>
                    Edit
                  </Button>
                )}
                {mayDelete && (
                  <Button
                    size="compact-xs"
                    variant="light"
                    color="red"
                    onClick={() =>
                      confirmDanger(`Delete webhook ${w.name}?`, 'Budget alerts are no longer posted to it.', 'Delete', () =>
                        remove.mutate(w.name),
                      )
                    }
                  >
                    Delete
                  </Button>
                )}
              </Group>
            ),
          },
        ]}
      />
      {editing && <WebhookForm hook={editing === 'new' ? null : editing} onClose={() => setEditing(null)} />}
    </Stack>
  );
}
