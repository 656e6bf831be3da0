// The frame around every page: navigation (a drawer at phone width), the
// colour scheme switch and the account menu. Links a role may not use are
// not shown.
import { useEffect, type ReactNode } from 'react';
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
import { PAGES, pageTitle } from '../nav';

const ICONS: Record<string, ReactNode> = {
  '/': <IconChartBar size={18} />,
  '/requests': <IconList size={18} />,
  '/keys': <IconKey size={18} />,
  '/providers': <IconCloudComputing size={18} />,
  '/people': <IconUsers size={18} />,
  '/config': <IconFileCode size={18} />,
  '/settings': <IconSettings size={18} />,
  '/account': <IconUser size={18} />,
};

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
  const items = PAGES.filter((i) => !i.method || can(i.method));
  const who = me.username || me.token_name || me.kind;
  // The window's title names the page (tabs, history and screen readers say it).
  const title = pageTitle(location.pathname, can);
  useEffect(() => {
    document.title = title;
  }, [title]);
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
                <UnstyledButton aria-label={`Account menu for ${who}`}>
                  <Group gap={6} wrap="nowrap">
                    <Text size="sm" fw={600} visibleFrom="xs">
                      {who}
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
            key={i.path}
            component={RouterLink}
            to={i.path}
            label={i.label}
            leftSection={ICONS[i.path]}
            active={i.path === '/' ? location.pathname === '/' : location.pathname.startsWith(i.path)}
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
