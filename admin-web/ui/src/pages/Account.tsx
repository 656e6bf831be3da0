// The caller's own account: password and their API tokens.
import { useState } from 'react';
import { useMutation } from '@tanstack/react-query';
import { Button, Paper, PasswordInput, Stack, Text, Title } from '@mantine/core';
import { api, signOutStarted } from '../api';
import { PASSWORD_CHANGED_LOGIN } from '../nav';
import { useAuth } from '../auth';
import { ApiTokens } from '../components/ApiTokens';
import { notifyError } from '../components/notify';

export default function AccountPage() {
  const { me } = useAuth();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const change = useMutation({
    mutationFn: () => api.setPassword(me.username, next, current),
    // Changing the password ends every session, this one included: what
    // is still loading is refused (401), which is this, not a session that
    // ended under the page.
    onSuccess: () => {
      signOutStarted();
      window.location.assign(PASSWORD_CHANGED_LOGIN);
    },
    onError: (e) => notifyError('Password not changed', e),
  });
  return (
    <Stack>
      <Title order={2}>My account</Title>
      <Text>
        Signed in as <b>{me.username || me.token_name || me.kind}</b> with role <b>{me.role}</b>.
      </Text>
      {me.username && (
        <Paper withBorder p="md" maw={420}>
          <form
            onSubmit={(e) => {
              e.preventDefault();
              change.mutate();
            }}
          >
            <Stack>
              <Title order={3} size="h5">
                Change password
              </Title>
              <PasswordInput label="Current password" autoComplete="current-password" required value={current}
                onChange={(e) => setCurrent(e.currentTarget.value)} />
              <PasswordInput label="New password" description="At least 8 characters" autoComplete="new-password"
                required value={next} onChange={(e) => setNext(e.currentTarget.value)} />
              <Text size="sm" c="dimmed" id="password-change-effect">
                Changing it signs you out everywhere, this browser included, and revokes all your API tokens:
                automation using them is refused until it gets a new one.
              </Text>
              <Button type="submit" loading={change.isPending} aria-describedby="password-change-effect">
                Change password
              </Button>
            </Stack>
          </form>
        </Paper>
      )}
      <Title order={3} size="h4">
        My API tokens
      </Title>
      <ApiTokens mine />
    </Stack>
  );
}
