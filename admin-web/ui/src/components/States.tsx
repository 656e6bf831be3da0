// Loading, empty and error states, the same on every page.
import type { ReactNode } from 'react';
import { Alert, Anchor, Center, Loader, Stack, Text, Title } from '@mantine/core';
import { Link } from 'react-router';
import { ApiError } from '../api';

export function LoadingState({ label = 'Loading' }: { label?: string }) {
  return (
    <Center py="xl">
      <Loader aria-label={label} />
    </Center>
  );
}

export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return 'Something went wrong';
}

export function ErrorState({ error, title = 'Could not load this' }: { error: unknown; title?: string }) {
  return (
    <Alert color="red" title={title} role="alert" my="md">
      {errorText(error)}
    </Alert>
  );
}

export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <Center py="xl">
      <Stack align="center" gap={4}>
        <Text fw={600}>{title}</Text>
        {children && (
          <Text c="dimmed" size="sm" ta="center">
            {children}
          </Text>
        )}
      </Stack>
    </Center>
  );
}

/** An address that shows no page (none there, or not for this role), with the way back. */
export function NoPageState({ title, children }: { title: string; children: ReactNode }) {
  return (
    <Center py="xl">
      <Stack align="center" gap="xs">
        <Title order={2}>{title}</Title>
        <Text c="dimmed" size="sm" ta="center">
          {children}
        </Text>
        <Anchor component={Link} to="/" size="sm" underline="always">
          Go to the overview
        </Anchor>
      </Stack>
    </Center>
  );
}
