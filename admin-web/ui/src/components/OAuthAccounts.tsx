// OAuth accounts: provider credentials that are subscriptions (Claude,
// ChatGPT for Codex, Gemini Code Assist, or any OAuth 2.0 provider a
// template describes) instead of API keys. Connecting one: the control
// plane makes the authorize URL (PKCE, one-use state), the admin signs in
// there and pastes back the code or the redirect URL. The control plane
// keeps the refresh token; nothing secret reaches the browser.
import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Anchor, Badge, Button, Group, Modal, Stack, TagsInput, Text, TextInput, Tooltip } from '@mantine/core';
import { DataTable } from 'mantine-datatable';
import { SCROLL } from './table';
import { api } from '../api';
import { useAuth } from '../auth';
import { ago, when } from '../format';
import type { OAuthAccount, OAuthConnectStart } from '../types';
import { ErrorState } from './States';
import { notifyDone, notifyError } from './notify';
import { useNow } from './useNow';

const STATUS_COLORS: Record<string, string> = {
  connected: 'teal',
  not_connected: 'gray',
  error: 'orange',
  revoked: 'red',
};

function ConnectModal({ account, onClose }: { account: OAuthAccount; onClose: () => void }) {
  const qc = useQueryClient();
  const [params, setParams] = useState<string[]>([]);
  const [started, setStarted] = useState<OAuthConnectStart | null>(null);
  const [code, setCode] = useState('');
  const start = useMutation({
    mutationFn: () =>
      api.startOAuthConnect(
        account.provider,
        account.key,
        Object.fromEntries(
          params
            .map((p) => p.split('='))
            .filter((kv) => kv.length >= 2)
            .map(([k, ...v]) => [k.trim(), v.join('=').trim()]),
        ),
      ),
    onSuccess: setStarted,
    onError: (e) => notifyError('Could not start', e),
  });
  const complete = useMutation({
    mutationFn: () => api.completeOAuthConnect(started?.state ?? '', code.trim()),
    onSuccess: (a) => {
      void qc.invalidateQueries({ queryKey: ['oauth-accounts'] });
      onClose();
      notifyDone(`${a.provider} / ${a.key}: ${a.status.replace(/_/g, ' ')}`);
    },
    onError: (e) => notifyError('Not connected', e),
  });
  return (
    <Modal opened onClose={onClose} size="lg" title={`Connect ${account.provider} / ${account.key} (${account.template})`}>
      {!started ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            start.mutate();
          }}
        >
          <Stack>
            <TagsInput
              label="Template parameters"
              description="NAME=value for the template's {param:NAME} placeholders, if it has any (e.g. a project id)"
              value={params}
              onChange={setParams}
            />
            <Group justify="flex-end">
              <Button type="submit" loading={start.isPending}>
                Get the sign-in link
              </Button>
            </Group>
          </Stack>
        </form>
      ) : (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            complete.mutate();
          }}
        >
          <Stack>
            <Text size="sm">
              1. Open{' '}
              <Anchor href={started.authorize_url} target="_blank" rel="noopener noreferrer">
                the provider's sign-in page
              </Anchor>{' '}
              and allow access (the link works once, until {when(started.expires_at_ms)}).
            </Text>
            <Text size="sm">
              2. Paste the code it shows, or the whole address it sends you to ({started.redirect_uri}).
            </Text>
            <TextInput
              label="Code or redirect URL"
              required
              autoComplete="off"
              value={code}
              onChange={(e) => setCode(e.currentTarget.value)}
            />
            <Group justify="flex-end">
              <Button type="submit" loading={complete.isPending} disabled={!code.trim()}>
                Connect
              </Button>
            </Group>
          </Stack>
        </form>
      )}
    </Modal>
  );
}

function expiry(a: OAuthAccount, now: number): string {
  if (!a.expires_at_ms) return '–';
  const left = Math.round((a.expires_at_ms - now) / 1000);
  if (left <= 0) return `expired ${ago(a.expires_at_ms, now)}`;
  return left < 3600 ? `in ${Math.ceil(left / 60)} min` : when(a.expires_at_ms);
}

export function OAuthAccountsTab() {
  const { can } = useAuth();
  const qc = useQueryClient();
  const q = useQuery({ queryKey: ['oauth-accounts'], queryFn: api.oauthAccounts });
  const [connecting, setConnecting] = useState<OAuthAccount | null>(null);
  const now = useNow();
  const mayConnect = can('AdminService/StartOAuthConnect');
  const mayRefresh = can('AdminService/RefreshOAuthAccount');
  const refresh = useMutation({
    mutationFn: (a: OAuthAccount) => api.refreshOAuthAccount(a.provider, a.key),
    onSuccess: (a) => {
      void qc.invalidateQueries({ queryKey: ['oauth-accounts'] });
      notifyDone(`${a.provider} / ${a.key}: refreshed`);
    },
    onError: (e) => notifyError('Not refreshed', e),
  });
  return (
    <Stack>
      <Text size="sm" c="dimmed">
        Credentials whose kind is an OAuth template. The control plane refreshes their access tokens before they expire
        and keeps the refresh tokens; data planes only ever get access tokens.
      </Text>
      {q.isError && <ErrorState error={q.error} />}
      <DataTable<OAuthAccount>
        withTableBorder
        scrollAreaProps={SCROLL}
        borderRadius="md"
        minHeight={q.data?.accounts.length ? undefined : 140}
        fetching={q.isPending}
        records={q.data?.accounts ?? []}
        idAccessor={(a) => `${a.provider}/${a.key}`}
        noRecordsText="No OAuth accounts: give a provider's credential an OAuth template as its kind"
        columns={[
          { accessor: 'provider', title: 'Provider' },
          { accessor: 'key', title: 'Credential' },
          { accessor: 'template', title: 'Template' },
          {
            accessor: 'status',
            title: 'State',
            render: (a) => (
              <Badge color={STATUS_COLORS[a.status] ?? 'gray'} variant="light">
                {a.status.replace(/_/g, ' ')}
              </Badge>
            ),
          },
          { accessor: 'expires_at_ms', title: 'Access token expires', render: (a) => expiry(a, now) },
          { accessor: 'last_refresh_ms', title: 'Last refresh', render: (a) => (a.last_refresh_ms ? ago(a.last_refresh_ms, now) : '–') },
          {
            accessor: 'last_error',
            title: 'Last error',
            render: (a) =>
              a.last_error ? (
                <Tooltip label={a.last_error} multiline w={320}>
                  <Text size="xs" lineClamp={1}>
                    {a.failures > 1 ? `${a.failures}× ` : ''}
                    {a.last_error}
                  </Text>
                </Tooltip>
              ) : (
                '–'
              ),
          },
          {
            accessor: 'actions',
            title: <span className="sr-only">Actions</span>,
            hidden: !mayConnect && !mayRefresh,
            textAlign: 'right',
            render: (a) => (
              <Group gap="xs" justify="flex-end" wrap="nowrap">
                {mayRefresh && a.status !== 'not_connected' && a.status !== 'revoked' && (
                  <Button
                    size="compact-xs"
                    variant="default"
                    loading={refresh.isPending && refresh.variables === a}
                    onClick={() => refresh.mutate(a)}
                  >
                    Refresh now
                  </Button>
                )}
                {mayConnect && (
                  <Button size="compact-xs" variant="light" onClick={() => setConnecting(a)}>
                    {a.status === 'not_connected' ? 'Connect' : 'Reconnect'}
                  </Button>
                )}
              </Group>
            ),
          },
        ]}
      />
      {connecting && <ConnectModal account={connecting} onClose={() => setConnecting(null)} />}
    </Stack>
  );
}
