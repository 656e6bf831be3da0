// A secret shown once (a generated client key, API token or password),
// with a copy button, in a dialog that says it will not be shown again.
import { Alert, Button, Code, CopyButton, Group, Stack, Text } from '@mantine/core';
import { modals } from '@mantine/modals';

export function showSecretOnce(title: string, what: string, secret: string) {
  modals.open({
    title,
    closeOnClickOutside: false,
    children: (
      <Stack>
        <Alert color="yellow" title="Shown once">
          Copy the {what} now: it is stored only as a hash and cannot be shown again.
        </Alert>
        <Code block data-testid="secret-once" style={{ wordBreak: 'break-all' }}>
          {secret}
        </Code>
        <Group justify="space-between">
          <CopyButton value={secret}>
            {({ copied, copy }) => (
              <Button variant="light" color={copied ? 'teal' : undefined} onClick={copy}>
                {copied ? 'Copied' : `Copy ${what}`}
              </Button>
            )}
          </CopyButton>
          <Button onClick={() => modals.closeAll()}>Done</Button>
        </Group>
      </Stack>
    ),
  });
}

export function confirmDanger(title: string, body: string, label: string, onConfirm: () => void) {
  modals.openConfirmModal({
    title,
    children: <Text size="sm">{body}</Text>,
    labels: { confirm: label, cancel: 'Cancel' },
    confirmProps: { color: 'red' },
    onConfirm,
  });
}
