// The limits a client key or a user's or team's budget may have: the
// inputs, a one-line summary for tables, and what was used against them. Empty means no limit of that
// kind; anything else must be valid (../validate.ts), never clamped.
import { useState } from 'react';
import { Group, Progress, Stack, Text } from '@mantine/core';
import { usageLines, type BudgetUse } from '../budgetUse';
import { num, usd } from '../format';
import type { KeyLimits } from '../types';
import { parseDecimal, parseWhole, type Parsed } from '../validate';
import { NumberField } from './NumberField';

const WHOLE = ['rps', 'rpm', 'concurrent', 'tokens_per_minute', 'tokens_per_day'] as const;
const MONEY = ['cost_per_day', 'cost_per_month'] as const;
const NUMBERS = [...WHOLE, ...MONEY] as const;
type NumberLimit = (typeof NUMBERS)[number];
type Inputs = Record<NumberLimit, string>;

function parse(k: NumberLimit, text: string): Parsed {
  return (MONEY as readonly string[]).includes(k) ? parseDecimal(text) : parseWhole(text, { min: 1 });
}

/** The inputs' state, and the limits they say (null where left empty). */
export function useLimits(initial: Partial<KeyLimits> | null | undefined) {
  const [values, setValues] = useState<Inputs>(
    () =>
      Object.fromEntries(
        NUMBERS.map((k) => {
          const v = initial?.[k];
          return [k, v === null || v === undefined ? '' : String(v)];
        }),
      ) as Inputs,
  );
  const set = (k: NumberLimit, v: string) => setValues((x) => ({ ...x, [k]: v }));
  const parsed = Object.fromEntries(NUMBERS.map((k) => [k, parse(k, values[k])])) as Record<NumberLimit, Parsed>;
  const limits = () =>
    Object.fromEntries(NUMBERS.map((k) => [k, parsed[k].value])) as Record<NumberLimit, number | null>;
  /** Whether every input holds a valid value (or none). */
  const valid = NUMBERS.every((k) => parsed[k].error === null);
  return { values, set, limits, parsed, valid };
}

export function LimitsFields({
  values,
  set,
  parsed,
}: Pick<ReturnType<typeof useLimits>, 'values' | 'set' | 'parsed'>) {
  const field = (k: NumberLimit, label: string) => (
    <NumberField
      label={label}
      decimal={(MONEY as readonly string[]).includes(k)}
      value={values[k]}
      onChange={(v) => set(k, v)}
      error={parsed[k].error}
    />
  );
  return (
    <>
      <Group grow align="flex-start">
        {field('rps', 'Requests / second')}
        {field('rpm', 'Requests / minute')}
        {field('concurrent', 'In flight at once')}
      </Group>
      <Group grow align="flex-start">
        {field('tokens_per_minute', 'Tokens / minute')}
        {field('tokens_per_day', 'Tokens / day')}
      </Group>
      <Group grow align="flex-start">
        {field('cost_per_day', 'Cost / day (USD)')}
        {field('cost_per_month', 'Cost / month (USD)')}
      </Group>
    </>
  );
}

/** "60 rpm · $5.00/day", or "none". */
export function limitsText(l: Partial<KeyLimits> | null | undefined): string {
  if (!l) return 'none';
  const part = (v: number | null | undefined, f: (v: number) => string) => (v === null || v === undefined ? null : f(v));
  return (
    [
      part(l.rps, (v) => `${num(v)} rps`),
      part(l.rpm, (v) => `${num(v)} rpm`),
      part(l.concurrent, (v) => `${num(v)} at once`),
      part(l.tokens_per_minute, (v) => `${num(v)} tokens/min`),
      part(l.tokens_per_day, (v) => `${num(v)} tokens/day`),
      part(l.cost_per_day, (v) => `${usd(v)}/day`),
      part(l.cost_per_month, (v) => `${usd(v)}/month`),
      l.global ? 'global' : null,
      l.when_store_down === 'refuse' ? 'refuse when Redis is down' : null,
    ]
      .filter(Boolean)
      .join(' · ') || 'none'
  );
}

/** What was used today and this month against the tokens and cost limits. */
export function UsageCell({ limits, used }: { limits: Partial<KeyLimits> | null | undefined; used: BudgetUse[] | undefined }) {
  const lines = usageLines(limits, used);
  if (lines.length === 0) return <Text size="xs" c="dimmed">none yet</Text>;
  return (
    <Stack gap={4} miw={150}>
      {lines.map((l) => (
        <div key={l.text}>
          <Text size="xs">{l.text}</Text>
          {l.percent !== null && (
            <Progress
              size="sm"
              value={l.percent}
              color={l.percent >= 100 ? 'red' : l.percent >= 80 ? 'orange' : 'blue'}
              aria-label={l.text}
            />
          )}
        </div>
      ))}
    </Stack>
  );
}
