import { Suspense, lazy } from 'react';
import { Navigate, Route, Routes, useLocation } from 'react-router';
import { Center, Loader } from '@mantine/core';
import { AuthProvider, useAuth, useMe } from './auth';
import { loginUrl, pageAccess } from './nav';
import { Layout } from './components/Layout';
import { LoginPage } from './pages/Login';
import { ErrorState, NoPageState } from './components/States';

// Every page but sign-in is its own chunk: the first load stays small and
// the charting library comes only with the pages that draw charts.
const Overview = lazy(() => import('./pages/Overview'));
const Requests = lazy(() => import('./pages/Requests'));
const ClientKeys = lazy(() => import('./pages/ClientKeys'));
const Providers = lazy(() => import('./pages/Providers'));
const People = lazy(() => import('./pages/People'));
const ConfigFile = lazy(() => import('./pages/ConfigFile'));
const Account = lazy(() => import('./pages/Account'));
const Settings = lazy(() => import('./pages/Settings'));

/**
 * An address no route took: a page this role may not see (its route is
 * left out), or no page at all. Said so, not sent elsewhere.
 */
function NoPage() {
  const { can, me } = useAuth();
  const { pathname } = useLocation();
  return pageAccess(pathname, can) === 'forbidden' ? (
    <NoPageState title="You do not have access to this page">
      Your role ({me.role}) may not see it. An admin can give you another role.
    </NoPageState>
  ) : (
    <NoPageState title="Not found">There is no page at this address.</NoPageState>
  );
}

function Pages() {
  const { can } = useAuth();
  return (
    <Suspense
      fallback={
        <Center h={300}>
          <Loader aria-label="Loading page" />
        </Center>
      }
    >
      <Routes>
        <Route path="/" element={<Overview />} />
        <Route path="/requests" element={<Requests />} />
        <Route path="/requests/:id" element={<Requests />} />
        <Route path="/keys" element={<ClientKeys />} />
        {can('AdminService/ListProviders') && <Route path="/providers" element={<Providers />} />}
        {can('IdentityService/ListAuditLog') && <Route path="/people/:tab?" element={<People />} />}
        {can('ConfigFileService/ExportConfig') && <Route path="/config" element={<ConfigFile />} />}
        <Route path="/account" element={<Account />} />
        {can('SignInService/GetOidcSettings') && <Route path="/settings" element={<Settings />} />}
        <Route path="/login" element={<Navigate to="/" replace />} />
        <Route path="*" element={<NoPage />} />
      </Routes>
    </Suspense>
  );
}

export function App() {
  const me = useMe();
  const location = useLocation();
  if (location.pathname === '/login') return <LoginPage />;
  if (me.isPending) {
    return (
      <Center h="100vh">
        <Loader aria-label="Loading" />
      </Center>
    );
  }
  if (me.isError || !me.data) {
    // Signed out (null), or a session that ended (401): sign in, then
    // come back to this page.
    const status = (me.error as { status?: number } | null)?.status;
    if (status === 401 || !me.isError) {
      return <Navigate to={loginUrl(location.pathname + location.search, status === 401)} replace />;
    }
    return <ErrorState error={me.error} />;
  }
  return (
    <AuthProvider me={me.data}>
      <Layout>
        <Pages />
      </Layout>
    </AuthProvider>
  );
}
