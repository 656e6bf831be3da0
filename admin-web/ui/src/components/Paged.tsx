// A list the API sends whole, searched and drawn one page at a time
// (thousands of client keys would take seconds to draw at once): the
// search box, the page's rows, and the count and page controls under the
// table. The paging itself is src/paging.ts.
import { useMemo, useState } from 'react';
import { Group, Pagination, Text, TextInput } from '@mantine/core';
import { IconSearch } from '@tabler/icons-react';
import { type Page, pageOf, pageText } from '../paging';

/**
 * The search and page over `records`; `fields` gives a record's searchable
 * texts (a function defined outside the component, so it stays the same).
 * A new search goes back to the first page.
 */
export function usePaged<T>(records: readonly T[], fields: (r: T) => readonly string[]) {
  const [search, setSearchText] = useState('');
  const [page, setPage] = useState(1);
  const shown = useMemo(() => pageOf(records, search, fields, page), [records, search, fields, page]);
  const setSearch = (s: string) => {
    setSearchText(s);
    setPage(1);
  };
  return { shown, search, setSearch, setPage };
}

export function SearchBox({
  label,
  placeholder,
  value,
  onChange,
}: {
  label: string;
  placeholder: string;
  value: string;
  onChange: (v: string) => void;
}) {
  return (
    <TextInput
      aria-label={label}
      placeholder={placeholder}
      leftSection={<IconSearch size={16} />}
      value={value}
      onChange={(e) => onChange(e.currentTarget.value)}
      w={{ base: '100%', sm: 320 }}
    />
  );
}

/** "1–50 of 5,300" and, past one page, the page controls. */
export function Pager({ shown, onPage, what }: { shown: Page<unknown>; onPage: (p: number) => void; what: string }) {
  const text = pageText(shown);
  if (!text) return null;
  return (
    <Group justify="space-between" gap="xs">
      <Text size="sm" c="dimmed" role="status" data-testid="page-count">
        {text}
      </Text>
      {shown.pages > 1 && (
        <nav aria-label={`Pages of ${what}`}>
          <Pagination
            size="sm"
            total={shown.pages}
            value={shown.page}
            onChange={onPage}
            withEdges
            getControlProps={(control) => ({
              'aria-label': { first: 'First page', last: 'Last page', previous: 'Previous page', next: 'Next page' }[control],
            })}
            getItemProps={(p) => ({ 'aria-label': `Page ${p}` })}
          />
        </nav>
      )}
    </Group>
  );
}
