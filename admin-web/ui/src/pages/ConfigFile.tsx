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
  List,
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
import { kindName, planSummary, plural } from '../labels';
import { Clip } from '../components/Clip';
import { ErrorState } from '../components/States';
import { notifyError } from '../components/notify';
import { modals } from '@mantine/modals';

const COLORS: Record<string, string> = { create: 'teal', update: 'blue', delete: 'red', unchanged: 'gray' };

/** Deletions listed by name in the confirmation; the rest are counted (all are in the table below it). */
const LISTED = 15;

/** What applying deletes, in red: how many of what, and which. */
function Deletions({ deletions, kinds }: { deletions: ConfigChange[]; kinds: string }) {
  return (
    <Alert color="red" title={`${plural(deletions.length, 'deletion')}: ${kinds}`} data-testid="plan-deletions">
      <List size="sm" spacing={2}>
        {deletions.slice(0, LISTED).map((d) => (
          <List.Item key={`${d.kind}/${d.name}`} style={{ overflowWrap: 'anywhere' }}>
            {kindName(d.kind)} <b>{d.name}</b>
          </List.Item>
        ))}
      </List>
      {deletions.length > LISTED && (
        <Text size="sm" mt={4}>
          and {plural(deletions.length - LISTED, 'more')}, listed in the changes below.
        </Text>
      )}
    </Alert>
  );
}

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
  const summary = planSummary(planned?.changes ?? []);
  const changes = summary.changes;
  const deleting = summary.deletions.length;
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
                title: deleting ? `Apply the file and delete ${plural(deleting, 'object')}?` : 'Apply the file?',
                size: deleting ? 'lg' : undefined,
                children: (
                  <Stack gap="sm">
                    <Text size="sm">{plural(changes, 'change')} will be made now, audited under your name.</Text>
                    {deleting > 0 && (
                      <>
                        <Deletions deletions={summary.deletions} kinds={summary.deletedKinds} />
                        <Text size="sm">A client key or a provider credential deleted now cannot be brought back with its secret.</Text>
                      </>
                    )}
                  </Stack>
                ),
                labels: { confirm: deleting ? `Apply and delete ${deleting}` : 'Apply', cancel: 'Cancel' },
                confirmProps: { color: deleting ? 'red' : 'orange' },
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
            {changes === 0 ? 'Nothing would change' : plural(changes, 'change')}
            {deleting > 0 && (
              <Text span c="var(--mantine-color-red-light-color)" fw={700}>
                {`, ${plural(deleting, 'deletion')}: ${summary.deletedKinds}`}
              </Text>
            )}
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
              { accessor: 'name', title: 'Name', render: (c) => <Clip text={c.name} width={260} /> },
              {
                accessor: 'details',
                title: 'Details',
                render: (c) => <span style={{ overflowWrap: 'anywhere' }}>{c.details.join('; ') || '–'}</span>,
              },
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
