// The frame around every page: navigation (a drawer at phone width), the
// colour scheme switch and the account menu. Links a role may not use are
// not shown.
import type { ReactNode } from 'react';
import { NavLink as RouterLink, useLocation } from 'react-router';
import {
  ActionIcon,
  AppShell,
  Badge,
  Burger,
  Group,
  Menu,
  NavLink,
  Text,
  Title,
  UnstyledButton,
  useComputedColorScheme,
  useMantineColorScheme,
} from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import {
  IconChartBar,
  IconCloudComputing,
  IconFileCode,
  IconKey,
  IconList,
  IconMoon,
  IconSettings,
  IconSun,
  IconUser,
  IconUsers,
} from '@tabler/icons-react';
import { useAuth } from '../auth';

interface Item {
  to: string;
  label: string;
  icon: ReactNode;
  method?: string;
}

const ITEMS: Item[] = [
  { to: '/', label: 'Overview', icon: <IconChartBar size={18} /> },
  { to: '/requests', label: 'Requests', icon: <IconList size={18} /> },
  { to: '/keys', label: 'Client keys', icon: <IconKey size={18} /> },
  { to: '/providers', label: 'Providers', icon: <IconCloudComputing size={18} />, method: 'AdminService/ListProviders' },
  { to: '/people', label: 'People', icon: <IconUsers size={18} />, method: 'IdentityService/ListAuditLog' },
  { to: '/config', label: 'Config as code', icon: <IconFileCode size={18} />, method: 'ConfigFileService/ExportConfig' },
  { to: '/settings', label: 'Sign-in settings', icon: <IconSettings size={18} />, method: 'SignInService/GetOidcSettings' },
  { to: '/account', label: 'My account', icon: <IconUser size={18} /> },
];

function ColorSchemeToggle() {
  const { setColorScheme } = useMantineColorScheme();
  const computed = useComputedColorScheme('light');
  const next = computed === 'dark' ? 'light' : 'dark';
  return (
    <ActionIcon
      variant="default"
      size="lg"
      aria-label={`Switch to ${next} mode`}
      onClick={() => setColorScheme(next)}
    >
      {computed === 'dark' ? <IconSun size={18} /> : <IconMoon size={18} />}
    </ActionIcon>
  );
}

export function Layout({ children }: { children: ReactNode }) {
  const [opened, { toggle, close }] = useDisclosure();
  const { me, can, signOut } = useAuth();
  const location = useLocation();
  const items = ITEMS.filter((i) => !i.method || can(i.method));
  return (
    <AppShell
      header={{ height: 56 }}
      navbar={{ width: 230, breakpoint: 'sm', collapsed: { mobile: !opened } }}
      padding="md"
    >
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="sm" wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Toggle navigation" />
            <Title order={1} size="h4">
              AI Gateway
            </Title>
          </Group>
          <Group gap="sm" wrap="nowrap">
            <ColorSchemeToggle />
            <Menu position="bottom-end" withinPortal>
              <Menu.Target>
                <UnstyledButton aria-label="Account menu">
                  <Group gap={6} wrap="nowrap">
                    <Text size="sm" fw={600} visibleFrom="xs">
                      {me.username || me.token_name || me.kind}
                    </Text>
                    <Badge variant="light">{me.role}</Badge>
                  </Group>
                </UnstyledButton>
              </Menu.Target>
              <Menu.Dropdown>
                <Menu.Item component={RouterLink} to="/account">
                  My account
                </Menu.Item>
                <Menu.Item color="red" onClick={() => void signOut()}>
                  Sign out
                </Menu.Item>
              </Menu.Dropdown>
            </Menu>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Main">
        {items.map((i) => (
          <NavLink
            key={i.to}
            component={RouterLink}
            to={i.to}
            label={i.label}
            leftSection={i.icon}
            active={i.to === '/' ? location.pathname === '/' : location.pathname.startsWith(i.to)}
            onClick={close}
          />
        ))}
      </AppShell.Navbar>
      <AppShell.Main>
        {children}
      </AppShell.Main>
    </AppShell>
  );
}
