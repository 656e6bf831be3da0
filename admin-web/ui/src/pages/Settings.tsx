// Sign-in settings (admins): OpenID Connect against the organisation's
// identity provider, for any number of users.
import { useEffect, useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Alert, Button, Paper, PasswordInput, Select, Stack, Switch, TagsInput, Text, TextInput, Title } from '@mantine/core';
import { api } from '../api';
import type { OidcSettings } from '../types';
import { ErrorState, LoadingState } from '../components/States';
import { notifyDone, notifyError } from '../components/notify';

export default function SettingsPage() {
  const qc = useQueryClient();
  const q = useQuery({ queryKey: ['oidc'], queryFn: api.oidcSettings });
  const [s, setS] = useState<OidcSettings | null>(null);
  useEffect(() => {
    if (q.data && !s) {
      setS({
        ...q.data,
        redirect_url: q.data.redirect_url || `${window.location.origin}/api/auth/oidc/callback`,
      });
    }
  }, [q.data, s]);
  const save = useMutation({
    mutationFn: (v: OidcSettings) => api.setOidcSettings(v),
    onSuccess: (r) => {
      setS({ ...r, client_secret: '' });
      void qc.invalidateQueries({ queryKey: ['oidc'] });
      notifyDone('Sign-in settings saved');
    },
    onError: (e) => notifyError('Not saved', e),
  });
  if (q.isPending || !s) return q.isError ? <ErrorState error={q.error} /> : <LoadingState />;
  const set = (patch: Partial<OidcSettings>) => setS({ ...s, ...patch });
  return (
    <Stack>
      <Title order={2}>Sign-in settings</Title>
      <Paper withBorder p="md" maw={640}>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            save.mutate(s);
          }}
        >
          <Stack>
            <Title order={3} size="h5">
              Single sign-on (OpenID Connect)
            </Title>
            <Text size="sm" c="dimmed">
              Register the redirect URL below with your identity provider. People signing in for the first time get
              the default role; a user whose username is their verified email is linked instead.
            </Text>
            <Switch label="Enabled" checked={s.enabled} onChange={(e) => set({ enabled: e.currentTarget.checked })} />
            <TextInput label="Issuer URL" placeholder="https://accounts.example.com" value={s.issuer}
              onChange={(e) => set({ issuer: e.currentTarget.value })} />
            <TextInput label="Client id" value={s.client_id} onChange={(e) => set({ client_id: e.currentTarget.value })} />
            <PasswordInput
              label="Client secret"
              description={s.client_secret_set ? 'Set. Leave empty to keep it.' : 'Not set (public client with PKCE).'}
              autoComplete="off"
              value={s.client_secret}
              onChange={(e) => set({ client_secret: e.currentTarget.value })}
            />
            <TextInput label="Redirect URL" value={s.redirect_url} onChange={(e) => set({ redirect_url: e.currentTarget.value })} />
            <Select
              label="Role of new users"
              allowDeselect={false}
              data={['member', 'viewer', 'operator']}
              value={s.default_role}
              onChange={(v) => set({ default_role: (v ?? 'viewer') as OidcSettings['default_role'] })}
            />
            <TextInput label="Button text" placeholder="Sign in with single sign-on" value={s.display_name}
              onChange={(e) => set({ display_name: e.currentTarget.value })} />
            <TagsInput label="Scopes besides openid" value={s.scopes} onChange={(v) => set({ scopes: v })} />
            {save.isError && <Alert color="red">Not saved</Alert>}
            <Button type="submit" loading={save.isPending}>
              Save
            </Button>
          </Stack>
        </form>
      </Paper>
    </Stack>
  );
}
