// What a client key or a budget used against its limits today and this
// month, as the tables beside those limits show it. The control plane
// counts a global limit over all regions together and a regional one in
// each region alone, and sends its figures that way (`used`, one entry per
// scope); the busiest scope is the one that meets its limit first.
import { num, usd } from './format.js';

/** Tokens and cost of one scope: a region, or "" for all regions. */
export interface BudgetUse {
  region: string;
  tokens_today: number;
  cost_today: number;
  cost_this_month: number;
}

/** The limits use is measured against; unset ones are left out. */
export interface UseLimits {
  tokens_per_day?: number | null;
  cost_per_day?: number | null;
  cost_per_month?: number | null;
}

/** One line of the "Used" column: text, and how full (null: no limit). */
export interface UsageLine {
  text: string;
  percent: number | null;
}

const set = (v: number | null | undefined): v is number => v !== null && v !== undefined;

/**
 * One line per tokens or cost limit, for the scope nearest its limit ("in
 * eu" when regional), or a single line of what was used when none is set
 * and anything was. Empty when nothing was used and nothing is limited.
 */
export function usageLines(limits: UseLimits | null | undefined, used: BudgetUse[] | null | undefined): UsageLine[] {
  const scopes = used ?? [];
  const lines: UsageLine[] = [];
  const against = (limit: number, pick: (u: BudgetUse) => number, show: (v: number) => string, period: string) => {
    let top: BudgetUse | null = null;
    for (const u of scopes) if (top === null || pick(u) > pick(top)) top = u;
    const value = top ? pick(top) : 0;
    const where = top && top.region ? ` in ${top.region}` : '';
    lines.push({
      text: `${show(value)} of ${show(limit)} ${period}${where}`,
      percent: limit > 0 ? Math.min(100, (value / limit) * 100) : 100,
    });
  };
  if (set(limits?.tokens_per_day)) against(limits.tokens_per_day, (u) => u.tokens_today, num, 'tokens today');
  if (set(limits?.cost_per_day)) against(limits.cost_per_day, (u) => u.cost_today, usd, 'today');
  if (set(limits?.cost_per_month)) against(limits.cost_per_month, (u) => u.cost_this_month, usd, 'this month');
  if (lines.length === 0 && scopes.length > 0) {
    const sum = (pick: (u: BudgetUse) => number) => scopes.reduce((a, u) => a + pick(u), 0);
    lines.push({
      text: `${num(sum((u) => u.tokens_today))} tokens · ${usd(sum((u) => u.cost_today))} today · ${usd(sum((u) => u.cost_this_month))} this month`,
      percent: null,
    });
  }
  return lines;
}
