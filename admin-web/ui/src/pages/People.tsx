// People and machines: users and roles, teams and the budgets of users and
// teams, the webhooks budget alerts go to, API tokens, the audit log of
// every change, and the connected data planes. The tab is the address's
// last segment (`/people/audit`), so a link or a reload opens it.
import { useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import {
  Anchor,
  Badge,
  Button,
  Code,
  Group,
  Modal,
  MultiSelect,
  PasswordInput,
  Select,
  Stack,
  Switch,
  Tabs,
  Text,
  TextInput,
  Title,
  Tooltip,
} from '@mantine/core';
import { SCROLL } from '../components/table';
import { DataTable } from 'mantine-datatable';
import { api, nameTaken } from '../api';
import { nameError } from '../validate';
import { useAuth } from '../auth';
import { ago, when } from '../format';
import { ROLES, type BudgetInfo, type NodeInfo, type TeamInfo, type UserInfo } from '../types';
import { ErrorState, errorText } from '../components/States';
import { ApiTokens } from '../components/ApiTokens';
import { AuditLog } from '../components/AuditLog';
import { Webhooks } from '../components/Webhooks';
import { confirmDanger, showSecretOnce } from '../components/Secret';
import { LimitsFields, limitsText, UsageCell, useLimits } from '../components/Limits';
import { notifyDone, notifyError } from '../components/notify';
import { snapshotStatus } from '../status';
import { Clip } from '../components/Clip';

function UserForm({ user, onClose }: { user: UserInfo | null; onClose: () => void }) {
  const qc = useQueryClient();
  const [username, setUsername] = useState(user?.username ?? '');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<string | null>(user?.role ?? 'viewer');
  const [disabled, setDisabled] = useState(user?.disabled ?? false);
  const [submitted, setSubmitted] = useState(false);
  const [taken, setTaken] = useState<string | null>(null);
  // Asked before a password is reset: it ends the user's sessions and revokes their tokens.
  const [confirmReset, setConfirmReset] = useState(false);
  const done = () => {
    void qc.invalidateQueries({ queryKey: ['users'] });
    onClose();
  };
  const save = useMutation({
    mutationFn: async () => {
      if (user) {
        await api.updateUser(user.username, { role: role ?? undefined, disabled });
        return '';
      }
      return (await api.createUser(username.trim(), password, role ?? 'viewer')).generated_password;
    },
    onSuccess: (generated) => {
      done();
      if (generated) showSecretOnce(`User ${username.trim()} created`, 'password', generated);
      else notifyDone('Saved');
    },
    onError: (e) => (!user && nameTaken(e) ? setTaken(errorText(e)) : notifyError('Not saved', e)),
  });
  const reset = useMutation({
    mutationFn: () => api.setPassword(user?.username ?? '', ''),
    onSuccess: (r) => {
      done();
      // Their tokens are revoked.
      void qc.invalidateQueries({ queryKey: ['api-tokens'] });
      showSecretOnce(`New password for ${user?.username}`, 'password', r.generated_password);
    },
    onError: (e) => notifyError('Not reset', e),
  });
  return (
    // Escape in the confirmation over it closes only the confirmation.
    <Modal opened onClose={onClose} closeOnEscape={!confirmReset} title={user ? `Edit ${user.username}` : 'New user'}>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          setSubmitted(true);
          if (!user && nameError(username)) return;
          save.mutate();
        }}
      >
        <Stack>
          <TextInput
            label="Username"
            required
            disabled={!!user}
            value={username}
            error={(!user && submitted ? nameError(username, 'username') : null) ?? taken}
            onChange={(e) => {
              setUsername(e.currentTarget.value);
              setTaken(null);
            }}
          />
          {!user && (
            <PasswordInput
              label="Password"
              description="At least 8 characters; leave empty to generate one (shown once)"
              autoComplete="new-password"
              value={password}
              onChange={(e) => setPassword(e.currentTarget.value)}
            />
          )}
          <Select label="Role" allowDeselect={false} data={ROLES} value={role} onChange={setRole} />
          {user && <Switch label="Disabled" checked={disabled} onChange={(e) => setDisabled(e.currentTarget.checked)} />}
          <Group justify="space-between">
            {user ? (
              <Button variant="light" color="orange" loading={reset.isPending} onClick={() => setConfirmReset(true)}>
                Reset password
              </Button>
            ) : (
              <span />
            )}
            <Button type="submit" loading={save.isPending}>
              Save
            </Button>
          </Group>
        </Stack>
      </form>
      {user && (
        // Over the form (like the other confirmations), which stays as edited.
        <Modal
          opened={confirmReset}
          onClose={() => setConfirmReset(false)}
          title={`Reset the password of ${user.username}?`}
          zIndex={400}
          centered
        >
          <Stack>
            <Text size="sm">
              A new password is generated and shown once. {user.username}'s sessions end at once and all their API
              tokens are revoked: automation using them is refused.
            </Text>
            <Group justify="flex-end">
              <Button variant="default" onClick={() => setConfirmReset(false)}>
                Cancel
              </Button>
              <Button
                color="red"
                onClick={() => {
                  setConfirmReset(false);
                  reset.mutate();
                }}
              >
                Reset password
              </Button>
            </Group>
          </Stack>
        </Modal>
      )}
    </Modal>
  );
}

function Users() {
  const { can } = useAuth();
  const q = useQuery({ queryKey: ['users'], queryFn: api.users });
  const [editing, setEditing] = useState<UserInfo | null | 'new'>(null);
  const admin = can('IdentityService/CreateUser');
  return (
    <Stack>
      {admin && (
        <Group justify="flex-end">
          <Button onClick={() => setEditing('new')}>New user</Button>
        </Group>
      )}
      {q.isError && <ErrorState error={q.error} />}
      <DataTable<UserInfo>
        withTableBorder
        scrollAreaProps={SCROLL}
        borderRadius="md"
        fetching={q.isPending}
        minHeight={q.data?.users.length ? undefined : 140}
        records={q.data?.users ?? []}
        idAccessor="id"
        noRecordsText="No users"
        columns={[
          { accessor: 'username', title: 'Username', render: (u) => <Clip text={u.username} width={200} /> },
          { accessor: 'role', title: 'Role', render: (u) => <Badge variant="light">{u.role}</Badge> },
          { accessor: 'team', title: 'Team', render: (u) => u.team || '–' },
          {
            accessor: 'disabled',
            title: 'State',
            render: (u) => (u.disabled ? <Badge color="gray">disabled</Badge> : <Badge color="teal" variant="light">active</Badge>),
          },
          { accessor: 'created_at_ms', title: 'Created', render: (u) => when(u.created_at_ms) },
          {
            accessor: 'actions',
            title: <span className="sr-only">Actions</span>,
            hidden: !admin,
            textAlign: 'right',
            render: (u) => (
              <Button size="compact-xs" variant="default" onClick={() => setEditing(u)}>
                Edit
              </Button>
            ),
          },
        ]}
      />
      {editing && <UserForm user={editing === 'new' ? null : editing} onClose={() => setEditing(null)} />}
    </Stack>
  );
}

function TeamForm({ team, onClose }: { team: TeamInfo | null; onClose: () => void }) {
  const qc = useQueryClient();
  const [name, setName] = useState(team?.name ?? '');
  const [members, setMembers] = useState<string[]>(team?.members ?? []);
  const users = useQuery({ queryKey: ['users'], queryFn: api.users });
  const [submitted, setSubmitted] = useState(false);
  const [taken, setTaken] = useState<string | null>(null);
  const save = useMutation({
    mutationFn: () => api.putTeam(name.trim(), members, !team),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: ['teams'] });
      void qc.invalidateQueries({ queryKey: ['users'] });
      onClose();
      notifyDone(`Saved team ${name.trim()}`);
    },
    onError: (e) => (!team && nameTaken(e) ? setTaken(errorText(e)) : notifyError('Not saved', e)),
  });
  return (
    <Modal opened onClose={onClose} title={team ? `Edit team ${team.name}` : 'New team'}>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          setSubmitted(true);
          if (!team && nameError(name)) return;
          save.mutate();
        }}
      >
        <Stack>
          <TextInput
            label="Team name"
            required
            disabled={!!team}
            value={name}
            error={(!team && submitted ? nameError(name, 'team name') : null) ?? taken}
            onChange={(e) => {
              setName(e.currentTarget.value);
              setTaken(null);
            }}
          />
          <MultiSelect
            label="Members"
            description="A user belongs to one team at most: adding one here moves them"
            searchable
            data={(users.data?.users ?? []).map((u) => u.username)}
            value={members}
            onChange={setMembers}
          />
          <Group justify="flex-end">
            <Button type="submit" loading={save.isPending}>
              Save team
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

function BudgetForm({ budget, onClose }: { budget: BudgetInfo | null; onClose: () => void }) {
  const qc = useQueryClient();
  const users = useQuery({ queryKey: ['users'], queryFn: api.users });
  const teams = useQuery({ queryKey: ['teams'], queryFn: api.teams });
  const [subject, setSubject] = useState<string | null>(budget?.subject ?? null);
  const limits = useLimits(budget?.limits);
  const [global, setGlobal] = useState(budget?.limits?.global ?? false);
  const [storeDown, setStoreDown] = useState<string | null>(budget?.limits?.when_store_down || 'local');
  const [taken, setTaken] = useState<string | null>(null);
  const save = useMutation({
    mutationFn: () =>
      api.setBudget(
        subject ?? '',
        { ...limits.limits(), global, when_store_down: storeDown === 'local' ? '' : (storeDown ?? '') },
        !budget,
      ),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: ['budgets'] });
      onClose();
      notifyDone(`Saved the budget of ${subject}`);
    },
    onError: (e) => (!budget && nameTaken(e) ? setTaken(`${errorText(e)}: edit it instead`) : notifyError('Not saved', e)),
  });
  const subjects = [
    ...(users.data?.users ?? []).map((u) => ({ value: `user:${u.username}`, label: `user ${u.username}` })),
    ...(teams.data?.teams ?? []).map((t) => ({ value: `team:${t.name}`, label: `team ${t.name}` })),
  ];
  return (
    <Modal opened onClose={onClose} size="lg" title={budget ? `Budget of ${budget.subject}` : 'New budget'}>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          if (!limits.valid) return;
          save.mutate();
        }}
      >
        <Stack>
          <Select
            label="For"
            error={taken}
            description="Every key a user owns counts toward the user's budget and their team's"
            required
            searchable
            disabled={!!budget}
            data={budget ? [{ value: budget.subject, label: budget.subject }] : subjects}
            value={subject}
            onChange={(v) => {
              setSubject(v);
              setTaken(null);
            }}
          />
          <LimitsFields values={limits.values} set={limits.set} parsed={limits.parsed} />
          <Group grow align="flex-end">
            <Switch
              label="Global: tokens and cost counted across all regions"
              checked={global}
              onChange={(e) => setGlobal(e.currentTarget.checked)}
            />
            <Select
              label="While Redis does not answer"
              allowDeselect={false}
              data={[
                { value: 'local', label: 'count in each data plane' },
                { value: 'refuse', label: 'refuse requests' },
              ]}
              value={storeDown}
              onChange={setStoreDown}
            />
          </Group>
          <Group justify="flex-end">
            <Button type="submit" loading={save.isPending} disabled={!subject}>
              Save budget
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

function TeamsAndBudgets() {
  const { can } = useAuth();
  const qc = useQueryClient();
  const teams = useQuery({ queryKey: ['teams'], queryFn: api.teams });
  const budgets = useQuery({ queryKey: ['budgets'], queryFn: api.budgets });
  const [team, setTeam] = useState<TeamInfo | null | 'new'>(null);
  const [budget, setBudget] = useState<BudgetInfo | null | 'new'>(null);
  const mayTeams = can('AdminService/UpsertTeam');
  const mayBudgets = can('AdminService/SetBudget');
  const removeTeam = useMutation({
    mutationFn: (name: string) => api.deleteTeam(name),
    onSuccess: (_, name) => {
      void qc.invalidateQueries({ queryKey: ['teams'] });
      void qc.invalidateQueries({ queryKey: ['users'] });
      // The team's budget goes with it.
      void qc.invalidateQueries({ queryKey: ['budgets'] });
      notifyDone(`Deleted team ${name}`);
    },
    onError: (e) => notifyError('Not deleted', e),
  });
  const removeBudget = useMutation({
    mutationFn: (subject: string) => api.setBudget(subject, {}),
    onSuccess: (_, subject) => {
      void qc.invalidateQueries({ queryKey: ['budgets'] });
      notifyDone(`Removed the budget of ${subject}`);
    },
    onError: (e) => notifyError('Not removed', e),
  });
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={3}>Teams</Title>
        {mayTeams && <Button onClick={() => setTeam('new')}>New team</Button>}
      </Group>
      {teams.isError && <ErrorState error={teams.error} />}
      <DataTable<TeamInfo>
        withTableBorder
        scrollAreaProps={SCROLL}
        borderRadius="md"
        fetching={teams.isPending}
        minHeight={teams.data?.teams.length ? undefined : 120}
        records={teams.data?.teams ?? []}
        idAccessor="name"
        noRecordsText="No teams"
        columns={[
          { accessor: 'name', title: 'Team', render: (t) => <Clip text={t.name} width={200} /> },
          {
            accessor: 'members',
            title: 'Members',
            render: (t) => <span style={{ overflowWrap: 'anywhere' }}>{t.members.join(', ') || '–'}</span>,
          },
          {
            accessor: 'actions',
            title: <span className="sr-only">Actions</span>,
            hidden: !mayTeams,
            textAlign: 'right',
            render: (t) => (
              <Group gap="xs" justify="flex-end" wrap="nowrap">
                <Button size="compact-xs" variant="default" onClick={() => setTeam(t)}>
                  Edit
                </Button>
                <Button
                  size="compact-xs"
                  variant="light"
                  color="red"
                  onClick={() => confirmDanger(`Delete team ${t.name}?`, 'Its members stay; its budget goes.', 'Delete', () => removeTeam.mutate(t.name))}
                >
                  Delete
                </Button>
              </Group>
            ),
          },
        ]}
      />
      <Group justify="space-between">
        <Title order={3}>Budgets</Title>
        {mayBudgets && <Button onClick={() => setBudget('new')}>New budget</Button>}
      </Group>
      {can('AdminService/ListWebhooks') && (
        <Text size="sm" c="dimmed">
          Alerts at 50, 80 and 100 % of a limit go to the audit log and to the{' '}
          <Anchor component={Link} to="/people/webhooks" size="sm" underline="always">
            alert webhooks
          </Anchor>
          .
        </Text>
      )}
      {budgets.isError && <ErrorState error={budgets.error} />}
      <DataTable<BudgetInfo>
        withTableBorder
        scrollAreaProps={SCROLL}
        borderRadius="md"
        fetching={budgets.isPending}
        minHeight={budgets.data?.budgets.length ? undefined : 120}
        records={budgets.data?.budgets ?? []}
        idAccessor="subject"
        noRecordsText="No budgets: only the client keys' own limits apply"
        columns={[
          { accessor: 'subject', title: 'For', render: (b) => <Clip text={b.subject} width={220} /> },
          { accessor: 'limits', title: 'Limits', render: (b) => limitsText(b.limits) },
          { accessor: 'used', title: 'Used', render: (b) => <UsageCell limits={b.limits} used={b.used} /> },
          { accessor: 'updated_at_ms', title: 'Changed', render: (b) => when(b.updated_at_ms) },
          {
            accessor: 'actions',
            title: <span className="sr-only">Actions</span>,
            hidden: !mayBudgets,
            textAlign: 'right',
            render: (b) => (
              <Group gap="xs" justify="flex-end" wrap="nowrap">
                <Button size="compact-xs" variant="default" onClick={() => setBudget(b)}>
                  Edit
                </Button>
                <Button
                  size="compact-xs"
                  variant="light"
                  color="red"
                  onClick={() => confirmDanger(`Remove the budget of ${b.subject}?`, 'Its limits stop applying.', 'Remove', () => removeBudget.mutate(b.subject))}
                >
                  Remove
                </Button>
              </Group>
            ),
          },
        ]}
      />
      {team && <TeamForm team={team === 'new' ? null : team} onClose={() => setTeam(null)} />}
      {budget && <BudgetForm budget={budget === 'new' ? null : budget} onClose={() => setBudget(null)} />}
    </Stack>
  );
}

function Nodes() {
  const q = useQuery({ queryKey: ['nodes'], queryFn: api.nodes });
  const current = q.data?.current_version ?? '';
  const now = Date.now();
  return (
    <Stack>
      <Group justify="space-between">
        <Text size="sm">
          Current snapshot <Code>{current.slice(0, 12) || '–'}</Code>
        </Text>
        <Button variant="default" size="xs" onClick={() => void q.refetch()} loading={q.isFetching}>
          Refresh
        </Button>
      </Group>
      {q.isError && <ErrorState error={q.error} />}
      <DataTable<NodeInfo>
        withTableBorder
        scrollAreaProps={SCROLL}
        borderRadius="md"
        fetching={q.isPending}
        minHeight={q.data?.nodes.length ? undefined : 140}
        records={q.data?.nodes ?? []}
        idAccessor="node_id"
        noRecordsText="No data plane has connected"
        columns={[
          { accessor: 'node_id', title: 'Data plane' },
          { accessor: 'region', title: 'Region' },
          {
            accessor: 'connected',
            title: 'Connection',
            render: (n) => (n.connected ? <Badge color="teal" variant="light">connected</Badge> : <Badge color="gray">gone</Badge>),
          },
          {
            accessor: 'applied_version',
            title: 'Snapshot',
            render: (n) => {
              const st = snapshotStatus(n.connected, n.applied_version, current);
              const tip = n.connected
                ? `applied ${n.applied_version.slice(0, 12) || 'none'}`
                : `not connected; had applied ${n.applied_version.slice(0, 12) || 'none'}`;
              const badge = (
                <Badge color={st.color} variant="light">
                  {st.label}
                </Badge>
              );
              return st.label === 'in sync' ? badge : <Tooltip label={tip}>{badge}</Tooltip>;
            },
          },
          { accessor: 'last_seen_ms', title: 'Last ACK / message', render: (n) => ago(n.last_seen_ms, now) },
          { accessor: 'last_error', title: 'Last NACK', render: (n) => n.last_error || '–' },
        ]}
      />
    </Stack>
  );
}

export default function PeoplePage() {
  const { can } = useAuth();
  const navigate = useNavigate();
  const tabs = [
    'users',
    ...(can('AdminService/ListBudgets') ? ['budgets'] : []),
    ...(can('AdminService/ListWebhooks') ? ['webhooks'] : []),
    'tokens',
    'audit',
    'nodes',
  ];
  const { tab: asked } = useParams();
  const tab = asked && tabs.includes(asked) ? asked : 'users';
  return (
    <Stack>
      <Title order={2}>People and data planes</Title>
      <Tabs
        value={tab}
        onChange={(v) => {
          if (v && v !== tab) navigate(v === 'users' ? '/people' : `/people/${v}`);
        }}
        keepMounted={false}
      >
        <Tabs.List>
          <Tabs.Tab value="users">Users</Tabs.Tab>
          {tabs.includes('budgets') && <Tabs.Tab value="budgets">Teams and budgets</Tabs.Tab>}
          {tabs.includes('webhooks') && <Tabs.Tab value="webhooks">Alert webhooks</Tabs.Tab>}
          <Tabs.Tab value="tokens">API tokens</Tabs.Tab>
          <Tabs.Tab value="audit">Audit log</Tabs.Tab>
          <Tabs.Tab value="nodes">Data planes</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="users" pt="md">
          <Users />
        </Tabs.Panel>
        <Tabs.Panel value="budgets" pt="md">
          <TeamsAndBudgets />
        </Tabs.Panel>
        <Tabs.Panel value="webhooks" pt="md">
          <Webhooks />
        </Tabs.Panel>
        <Tabs.Panel value="tokens" pt="md">
          <ApiTokens mine={false} />
        </Tabs.Panel>
        <Tabs.Panel value="audit" pt="md">
          <AuditLog />
        </Tabs.Panel>
        <Tabs.Panel value="nodes" pt="md">
          <Nodes />
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}
