// Configuration as code: export the live configuration as an apply file
// (secrets left out), paste or upload one, see its diff against the live
// configuration, and apply it with the rules of `control-plane apply`.
import { useState } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import {
  Alert,
  Badge,
  Button,
  Checkbox,
  Code,
  FileButton,
  Group,
  Paper,
  Stack,
  Text,
  Textarea,
  Title,
} from '@mantine/core';
import { SCROLL } from '../components/table';
import { DataTable } from 'mantine-datatable';
import { api } from '../api';
import { useAuth } from '../auth';
import type { ConfigChange } from '../types';
import { ErrorState } from '../components/States';
import { notifyError } from '../components/notify';
import { modals } from '@mantine/modals';

const COLORS: Record<string, string> = { create: 'teal', update: 'blue', delete: 'red', unchanged: 'gray' };

function download(text: string) {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/yaml' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = 'aigw-config.yaml';
  a.click();
  URL.revokeObjectURL(url);
}

export default function ConfigFilePage() {
  const { can } = useAuth();
  const qc = useQueryClient();
  const [yaml, setYaml] = useState('');
  const [prune, setPrune] = useState(false);
  const [planned, setPlanned] = useState<{ yaml: string; prune: boolean; changes: ConfigChange[] } | null>(null);
  const [applied, setApplied] = useState<string[] | null>(null);
  const exp = useMutation({
    mutationFn: api.exportConfig,
    onSuccess: (r) => {
      setYaml(r.yaml);
      setPlanned(null);
    },
    onError: (e) => notifyError('Not exported', e),
  });
  const plan = useMutation({
    mutationFn: () => api.planConfig(yaml, prune),
    // A new plan replaces the last one's diff and outcome, failed or not:
    // nothing shown under its error belongs to another file.
    onMutate: () => {
      setPlanned(null);
      setApplied(null);
      apply.reset();
    },
    onSuccess: (r) => setPlanned({ yaml, prune, changes: r.changes }),
  });
  const apply = useMutation({
    mutationFn: () => api.applyConfig(yaml, prune),
    onSuccess: (r) => {
      setApplied(r.lines);
      setPlanned(null);
      void qc.invalidateQueries();
    },
  });
  const changes = planned?.changes.filter((c) => c.action !== 'unchanged').length ?? 0;
  const upToDate = planned && planned.yaml === yaml && planned.prune === prune;
  return (
    <Stack>
      <Title order={2}>Configuration as code</Title>
      <Text size="sm" c="dimmed">
        The same file <Code>control-plane apply -f</Code> takes. Variables (<Code>{'${VAR}'}</Code>) are refused here;
        a provider credential without <Code>secret</Code> keeps its stored secret.
      </Text>
      <Group>
        <Button variant="default" loading={exp.isPending} onClick={() => exp.mutate()}>
          Load the live configuration
        </Button>
        <FileButton onChange={(f) => f && void f.text().then((t) => setYaml(t))} accept=".yaml,.yml,text/yaml">
          {(props) => (
            <Button variant="default" {...props}>
              Upload a file
            </Button>
          )}
        </FileButton>
        <Button variant="default" disabled={!yaml} onClick={() => download(yaml)}>
          Download
        </Button>
      </Group>
      <Textarea
        label="Apply file (YAML)"
        autosize
        minRows={10}
        maxRows={30}
        styles={{ input: { fontFamily: 'monospace' } }}
        value={yaml}
        onChange={(e) => setYaml(e.currentTarget.value)}
      />
      <Group>
        <Checkbox
          label="Also delete what the file does not name (--prune)"
          checked={prune}
          onChange={(e) => setPrune(e.currentTarget.checked)}
        />
        <Button disabled={!yaml.trim()} loading={plan.isPending} onClick={() => plan.mutate()}>
          Show changes
        </Button>
        {can('ConfigFileService/ApplyConfig') && (
          <Button
            color="orange"
            disabled={!upToDate || changes === 0}
            loading={apply.isPending}
            onClick={() =>
              modals.openConfirmModal({
                title: 'Apply the file?',
                children: <Text size="sm">{changes} change(s) will be made now, audited under your name.</Text>,
                labels: { confirm: 'Apply', cancel: 'Cancel' },
                onConfirm: () => apply.mutate(),
              })
            }
          >
            Apply
          </Button>
        )}
      </Group>
      {plan.isError && <ErrorState error={plan.error} title="The file has a problem" />}
      {apply.isError && <ErrorState error={apply.error} title="Not applied" />}
      {planned && (
        <Paper withBorder p="md">
          <Text fw={600} mb="sm">
            {changes === 0 ? 'Nothing would change' : `${changes} change(s)`}
          </Text>
          <DataTable<ConfigChange>
            withTableBorder
            scrollAreaProps={SCROLL}
            records={planned.changes}
            idAccessor={(c) => `${c.kind}/${c.name}`}
            noRecordsText="The file names nothing"
            minHeight={planned.changes.length ? undefined : 120}
            columns={[
              { accessor: 'action', title: 'Change', render: (c) => <Badge color={COLORS[c.action]} variant="light">{c.action}</Badge> },
              { accessor: 'kind', title: 'Kind' },
              { accessor: 'name', title: 'Name' },
              { accessor: 'details', title: 'Details', render: (c) => c.details.join('; ') || '–' },
            ]}
          />
        </Paper>
      )}
      {applied && (
        <Alert color="teal" title="Applied">
          <Code block data-testid="apply-output">
            {applied.join('\n')}
          </Code>
          {applied.some((l) => l.startsWith('generated key')) && (
            <Text size="sm" mt="xs">
              Generated keys are shown once: copy them now.
            </Text>
          )}
        </Alert>
      )}
    </Stack>
  );
}
