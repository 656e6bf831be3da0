// Sign-in: username and password, or the identity provider when an admin
// set one up. A failed SSO sign-in comes back here with ?error=sso, a
// password changed with ?notice=password-changed: codes, never words.
import { useEffect, useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import {
  Alert,
  Button,
  Center,
  Divider,
  Paper,
  PasswordInput,
  Stack,
  TextInput,
  Title,
} from '@mantine/core';
import { api } from '../api';
import { errorText } from '../components/States';
import { afterLogin, loginError, loginErrorCookie, loginNotice, pageTitle, ssoStart } from '../nav';

export function LoginPage() {
  const options = useQuery({ queryKey: ['sign-in-options'], queryFn: api.options, retry: false });
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(() => {
    const { search, protocol } = window.location;
    const why = loginError(search, document.cookie, protocol);
    // Shown once: a reload does not show it again.
    document.cookie =
      protocol === 'https:'
        ? `${loginErrorCookie(protocol)}=; Path=/; Max-Age=0; Secure; SameSite=Strict`
        : `${loginErrorCookie(protocol)}=; Path=/login; Max-Age=0; SameSite=Strict`;
    return why;
  });
  const [ended] = useState(() => new URLSearchParams(window.location.search).get('ended') === '1');
  const [notice] = useState(() => loginNotice(window.location.search));
  useEffect(() => {
    document.title = pageTitle('/login', () => false);
  }, []);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.login(username, password);
      window.location.assign(afterLogin(window.location.search));
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  }

  return (
    <Center mih="100vh" p="md">
      <main style={{ width: '100%', maxWidth: 380 }}>
        <Paper withBorder shadow="sm" p="xl">
          <form onSubmit={submit}>
            <Stack>
              <Title order={1} size="h3">
                Sign in to AI Gateway
              </Title>
              {notice && !error && (
                <Alert color="blue" role="status" title="Signed out">
                  {notice}
                </Alert>
              )}
              {ended && !notice && !error && (
                <Alert color="blue" role="status" title="Your session ended">
                  Sign in again to continue where you were.
                </Alert>
              )}
              {error && (
                <Alert color="red" role="alert" title="Not signed in">
                  {error}
                </Alert>
              )}
              <TextInput
                label="Username"
                autoComplete="username"
                required
                value={username}
                onChange={(e) => setUsername(e.currentTarget.value)}
              />
              <PasswordInput
                label="Password"
                autoComplete="current-password"
                required
                value={password}
                onChange={(e) => setPassword(e.currentTarget.value)}
              />
              <Button type="submit" loading={busy}>
                Sign in
              </Button>
              {options.data?.oidc && (
                <>
                  <Divider label="or" labelPosition="center" />
                  <Button component="a" href={ssoStart(window.location.search)} variant="default">
                    {options.data.oidc_display_name}
                  </Button>
                </>
              )}
            </Stack>
          </form>
        </Paper>
      </main>
    </Center>
  );
}
