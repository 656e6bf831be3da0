// The limits a client key or a user's or team's budget may have: the
// inputs, and a one-line summary for tables. Empty means no limit of that
// kind.
import { useState } from 'react';
import { Group, NumberInput } from '@mantine/core';
import { num, usd } from '../format';
import type { KeyLimits } from '../types';

const NUMBERS = [
  'rps',
  'rpm',
  'concurrent',
  'tokens_per_minute',
  'tokens_per_day',
  'cost_per_day',
  'cost_per_month',
] as const;
type NumberLimit = (typeof NUMBERS)[number];
type Inputs = Record<NumberLimit, number | string>;

/** The inputs' state, and the limits they say (null where left empty). */
export function useLimits(initial: Partial<KeyLimits> | null | undefined) {
  const [values, setValues] = useState<Inputs>(
    () => Object.fromEntries(NUMBERS.map((k) => [k, initial?.[k] ?? ''])) as Inputs,
  );
  const set = (k: NumberLimit, v: number | string) => setValues((x) => ({ ...x, [k]: v }));
  const limits = () =>
    Object.fromEntries(NUMBERS.map((k) => [k, values[k] === '' ? null : Number(values[k])])) as Record<
      NumberLimit,
      number | null
    >;
  return { values, set, limits };
}

export function LimitsFields({ values, set }: Pick<ReturnType<typeof useLimits>, 'values' | 'set'>) {
  const whole = (k: NumberLimit, label: string) => (
    <NumberInput label={label} min={1} allowDecimal={false} value={values[k]} onChange={(v) => set(k, v)} />
  );
  const money = (k: NumberLimit, label: string) => (
    <NumberInput label={label} min={0} decimalScale={4} value={values[k]} onChange={(v) => set(k, v)} />
  );
  return (
    <>
      <Group grow>
        {whole('rps', 'Requests / second')}
        {whole('rpm', 'Requests / minute')}
        {whole('concurrent', 'In flight at once')}
      </Group>
      <Group grow>
        {whole('tokens_per_minute', 'Tokens / minute')}
        {whole('tokens_per_day', 'Tokens / day')}
      </Group>
      <Group grow>
        {money('cost_per_day', 'Cost / day (USD)')}
        {money('cost_per_month', 'Cost / month (USD)')}
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
