// Number, money, time and change formatting shared by every page.

const compact = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });
const whole = new Intl.NumberFormat('en');

export const num = (n: number) => (Math.abs(n) >= 10_000 ? compact.format(n) : whole.format(n));

export function usd(n: number): string {
  if (n === 0) return '$0';
  if (Math.abs(n) < 0.01) return `$${n.toPrecision(2)}`;
  return `$${n.toFixed(2)}`;
}

export function ms(v: number): string {
  if (v === 0) return '–';
  if (v < 1) return `${(v * 1000).toFixed(0)} µs`;
  if (v < 1000) return `${v.toFixed(v < 10 ? 1 : 0)} ms`;
  return `${(v / 1000).toFixed(2)} s`;
}

export const us = (v: number) => ms(v / 1000);

export function when(at: number): string {
  if (!at) return '–';
  return new Date(at).toLocaleString();
}

export function ago(at: number, now = Date.now()): string {
  if (!at) return 'never';
  const s = Math.round((now - at) / 1000);
  if (s < 0) return `in ${-s} s`;
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** Relative change against the previous period, e.g. "+12%". */
export function change(cur: number, prev: number): string | null {
  if (prev === 0) return cur === 0 ? null : 'new';
  const pct = ((cur - prev) / prev) * 100;
  if (Math.abs(pct) < 0.5) return '±0%';
  return `${pct > 0 ? '+' : ''}${pct.toFixed(0)}%`;
}

export const pct = (part: number, all: number) => (all === 0 ? '0%' : `${((part / all) * 100).toFixed(1)}%`);
