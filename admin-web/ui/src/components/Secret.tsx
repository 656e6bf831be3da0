// A secret shown once (a generated client key, API token or password),
// with a copy button, in a dialog that says it will not be shown again.
// It closes only by its own button ("I have copied it"): it has no corner
// close button, a click outside does nothing and Escape asks first, since
// a secret closed unseen is lost for good.
import { useEffect, useRef, useState } from 'react';
import { Alert, Button, Code, CopyButton, Group, Modal, Stack, Text } from '@mantine/core';
import { modals } from '@mantine/modals';

function SecretOnce({ what, secret, close }: { what: string; secret: string; close: () => void }) {
  const [asking, setAsking] = useState(false);
  const askingRef = useRef(false);
  askingRef.current = asking;
  // Escape asks instead of closing (the dialog itself ignores it); while
  // asking, Escape closes the question (the question's own dialog does).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && !askingRef.current) setAsking(true);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  return (
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
        <Button onClick={close}>I have copied it</Button>
      </Group>
      {/* Asked on Escape. */}
      <Modal
        opened={asking}
        onClose={() => setAsking(false)}
        title={`Close without the ${what}?`}
        closeOnClickOutside={false}
        zIndex={400}
        centered
      >
        <Stack>
          <Text size="sm">The {what} cannot be shown again once this dialog is closed.</Text>
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setAsking(false)} data-autofocus>
              Back to the {what}
            </Button>
            <Button color="red" onClick={close}>
              Close anyway
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Stack>
  );
}

export function showSecretOnce(title: string, what: string, secret: string) {
  const id = `secret-${Date.now()}`;
  const close = () => modals.close(id);
  modals.open({
    modalId: id,
    title,
    closeOnClickOutside: false,
    closeOnEscape: false,
    withCloseButton: false,
    children: <SecretOnce what={what} secret={secret} close={close} />,
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
