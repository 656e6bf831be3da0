// Checks of what is typed into forms, before anything is sent: a number is
// taken as typed or refused with a message by its field, never clamped or
// rounded into another value. Pure functions (no React): `npm test` runs
// them under node.

/** A field's value: `value` when it is valid (null when left empty), else `error`. */
export interface Parsed {
  value: number | null;
  error: string | null;
}

/** Largest whole number the browser holds exactly (the API's are 64-bit). */
export const MAX_WHOLE = Number.MAX_SAFE_INTEGER;
/** Largest 32-bit value (e.g. seconds between health checks). */
export const MAX_U32 = 4_294_967_295;
/** Largest amount of US dollars a budget may have. */
export const MAX_USD = 1_000_000_000;
/** Largest price, USD per million tokens (the control plane's bound). */
export const MAX_PRICE = 1_000_000;

const WHOLE = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function tooLarge(max: number): string {
  return `too large (at most ${max.toLocaleString('en')})`;
}

/** A whole number ≥ `min`, at most `max`; empty is null (or, `required`, an error). */
export function parseWhole(
  text: string,
  { min = 1, max = MAX_WHOLE, required = false }: { min?: number; max?: number; required?: boolean } = {},
): Parsed {
  const t = text.trim();
  if (t === '') return { value: null, error: required ? 'required' : null };
  const bad = `must be a whole number ≥ ${min}`;
  if (!WHOLE.test(t)) return { value: null, error: DECIMAL.test(t) && Number(t) > max ? tooLarge(max) : bad };
  const n = Number(t);
  if (n < min) return { value: null, error: bad };
  if (n > max) return { value: null, error: tooLarge(max) };
  return { value: n, error: null };
}

/** A number ≥ 0 (decimals allowed), at most `max`; empty is null (or, `required`, an error). */
export function parseDecimal(
  text: string,
  { max = MAX_USD, required = false }: { max?: number; required?: boolean } = {},
): Parsed {
  const t = text.trim();
  if (t === '') return { value: null, error: required ? 'required' : null };
  if (!DECIMAL.test(t)) return { value: null, error: 'must be a number ≥ 0' };
  const n = Number(t);
  if (n < 0) return { value: null, error: 'must be ≥ 0' };
  if (!Number.isFinite(n) || n > max) return { value: null, error: tooLarge(max) };
  return { value: n, error: null };
}

/** A name's error: one of only spaces is no name. */
export function nameError(name: string, what = 'name'): string | null {
  return name.trim() === '' ? `${what} is required` : null;
}

/** `app=upstream` entries as a model map, or the first entry that is not one. */
export function parseModelMap(entries: string[]): { map: Record<string, string>; error: string | null } {
  const map: Record<string, string> = {};
  for (const e of entries) {
    const i = e.indexOf('=');
    const from = i < 0 ? '' : e.slice(0, i).trim();
    const to = i < 0 ? '' : e.slice(i + 1).trim();
    if (!from || !to || to.includes('=')) {
      return { map, error: `"${e}" is not app-name=upstream-name` };
    }
    if (from in map) return { map, error: `${from} is mapped twice` };
    map[from] = to;
  }
  return { map, error: null };
}

/** An expiry's error: a key that would be expired when created. */
export function expiryError(atMs: number, nowMs: number): string | null {
  if (Number.isNaN(atMs)) return 'not a date and time';
  if (!atMs) return null;
  return atMs <= nowMs ? 'is in the past: choose a later time, or leave empty for no expiry' : null;
}
