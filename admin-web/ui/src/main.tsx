import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { MantineProvider, createTheme, localStorageColorSchemeManager } from '@mantine/core';
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

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // A refused call is not retried; a network blip is, twice.
      retry: (n, e) => !(e instanceof ApiError && e.status > 0) && n < 2,
      refetchOnWindowFocus: false,
    },
  },
});

setUnauthenticatedHandler(() => {
  queryClient.setQueryData(['me'], null);
  if (!window.location.pathname.startsWith('/login')) window.location.assign('/login');
});

const theme = createTheme({
  primaryColor: 'indigo',
  defaultRadius: 'md',
  fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
});

const colorSchemeManager = localStorageColorSchemeManager({ key: 'aigw-color-scheme' });

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <MantineProvider theme={theme} defaultColorScheme="auto" colorSchemeManager={colorSchemeManager}>
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
