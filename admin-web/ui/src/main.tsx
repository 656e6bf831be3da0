import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import {
  type CSSVariablesResolver,
  Drawer,
  MantineProvider,
  Modal,
  Notification,
  createTheme,
  localStorageColorSchemeManager,
} from '@mantine/core';
import { Notifications } from '@mantine/notifications';
import { ModalsProvider } from '@mantine/modals';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { BrowserRouter } from 'react-router';
import '@mantine/core/styles.css';
import '@mantine/notifications/styles.css';
import 'mantine-datatable/styles.css';
import './index.css';
import { App } from './App';
import { ApiError, setUnauthenticatedHandler } from './api';
import { loginUrl } from './nav';

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // A refused call is not retried; a network blip is, twice.
      retry: (n, e) => !(e instanceof ApiError && e.status > 0) && n < 2,
      refetchOnWindowFocus: false,
    },
  },
});

// A 401 after the page loaded: the session ended (expired, signed out
// elsewhere, revoked). The sign-in page says so and comes back here.
setUnauthenticatedHandler(() => {
  if (window.location.pathname.startsWith('/login')) return;
  window.location.assign(loginUrl(window.location.pathname + window.location.search, true));
});

const theme = createTheme({
  primaryColor: 'indigo',
  // Shade 8: white text on it meets WCAG AA contrast (4.5:1).
  primaryShade: { light: 8, dark: 8 },
  defaultRadius: 'md',
  fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
  // Orange and yellow darkest shades deep enough for text on their pale one.
  colors: {
    orange: ['#fff4e6', '#ffe8cc', '#ffd8a8', '#ffc078', '#ffa94d', '#ff922b', '#fd7e14', '#f76707', '#c2410c', '#9a3412'],
    yellow: ['#fff9db', '#fff3bf', '#ffec99', '#ffe066', '#ffd43b', '#fcc419', '#fab005', '#f59f00', '#a16207', '#854d0e'],
  },
  components: {
    // Dialog close buttons are icons: give them a name screen readers say.
    // A title naming an object ("Revoke <name>?") breaks a long name rather than overflow.
    Modal: Modal.extend({
      defaultProps: { closeButtonProps: { 'aria-label': 'Close' } },
      styles: { title: { overflowWrap: 'anywhere' } },
    }),
    Drawer: Drawer.extend({ defaultProps: { closeButtonProps: { 'aria-label': 'Close' } } }),
    Notification: Notification.extend({ defaultProps: { closeButtonProps: { 'aria-label': 'Dismiss' } } }),
  },
});

// Secondary ("dimmed") text a shade darker in light mode and lighter in
// dark mode than Mantine's default, for WCAG AA contrast (4.5:1).
// "light" variants (badges, soft buttons) get the palest background and the
// darkest text of their colour in light mode, for the same reason.
const LIGHT_VARIANT_COLORS = ['teal', 'red', 'orange', 'yellow', 'blue', 'indigo', 'gray', 'green', 'cyan', 'grape'];
const resolver: CSSVariablesResolver = () => ({
  variables: {},
  light: {
    '--mantine-color-dimmed': 'var(--mantine-color-gray-7)',
    ...Object.fromEntries(
      LIGHT_VARIANT_COLORS.flatMap((c) => [
        [`--mantine-color-${c}-light`, `var(--mantine-color-${c}-0)`],
        [`--mantine-color-${c}-light-hover`, `var(--mantine-color-${c}-1)`],
        [`--mantine-color-${c}-light-color`, `var(--mantine-color-${c}-9)`],
      ]),
    ),
  },
  dark: { '--mantine-color-dimmed': 'var(--mantine-color-dark-1)' },
});

const colorSchemeManager = localStorageColorSchemeManager({ key: 'aigw-color-scheme' });

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <MantineProvider
      theme={theme}
      defaultColorScheme="auto"
      colorSchemeManager={colorSchemeManager}
      cssVariablesResolver={resolver}
    >
      <Notifications position="top-right" />
      <QueryClientProvider client={queryClient}>
        <ModalsProvider>
          <BrowserRouter>
            <App />
          </BrowserRouter>
        </ModalsProvider>
      </QueryClientProvider>
    </MantineProvider>
  </StrictMode>,
);
