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

/** Longest secret the control plane takes (visible ASCII, as an HTTP header carries it). */
export const MAX_SECRET = 8192;

/**
 * A webhook URL's error, checked as the control plane checks it: http or
 * https, a host (and a port from 1 to 65535), no credentials, no spaces.
 * A query string is taken: many receivers take their token there
 * (`?token=`), and like a path it is shown to admins only. `listed` is
 * the URL as the list showed it (whole to admins, `https://host/…` to
 * others): sent back unchanged it keeps the stored URL, but a changed one
 * must be typed whole.
 */
export function webhookUrlError(url: string, listed = ''): string | null {
  const u = url.trim();
  if (u === '') return 'URL is required';
  if (listed && u === listed) return null;
  const rest = u.startsWith('https://') ? u.slice(8) : u.startsWith('http://') ? u.slice(7) : null;
  if (rest === null) return 'must start with https:// or http://';
  const authority = rest.split(/[/?#]/)[0];
  const credentials =
    'must not carry credentials (user:password@): the secret signs each alert; a receiver token may go in the path or query';
  if (authority.includes('@')) return credentials;
  if (u.includes('…')) return 'type the whole URL: the part shown as … is hidden from your role';
  // host[:port], an IPv6 host in brackets.
  const m = /^(\[[^\]]*\]|[^[\]:]*)(?::(.*))?$/.exec(authority);
  if (!m || m[1] === '' || m[1] === '[]') return 'is not a valid URL';
  const port = m[2];
  if (port !== undefined && (!/^[0-9]{1,5}$/.test(port) || +port < 1 || +port > 65535)) {
    // `https://user:pa/ss@host`: a password holding `/` reads as a port.
    return rest.slice(authority.length).includes('@') ? credentials : 'has an invalid port (a number from 1 to 65535)';
  }
  if (/[\s\u0000-\u001f\u007f<>`]/.test(u)) return 'is not a valid URL';
  try {
    new URL(u);
  } catch {
    return 'is not a valid URL';
  }
  return null;
}

/**
 * A write-only secret's error: `required` for a new object (an empty one
 * otherwise keeps the stored secret).
 */
export function secretError(secret: string, required: boolean, missing = 'required'): string | null {
  if (secret === '') return required ? missing : null;
  if (secret.length > MAX_SECRET) return `too long (at most ${MAX_SECRET.toLocaleString('en')} characters)`;
  if (!/^[\x21-\x7e]+$/.test(secret)) return 'visible ASCII characters only, without spaces or line breaks';
  return null;
}

const LOCAL_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/;

/**
 * A `datetime-local` field's value (local time) as milliseconds since the
 * epoch; empty is null.
 */
export function parseLocalTime(text: string): Parsed {
  const t = text.trim();
  if (t === '') return { value: null, error: null };
  const m = LOCAL_TIME.exec(t);
  if (!m) return { value: null, error: 'not a date and time' };
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map((x) => Number(x ?? 0));
  const at = new Date(0);
  // setFullYear: years below 100 are not taken as 19xx.
  at.setFullYear(y, mo - 1, d);
  at.setHours(h, mi, s, 0);
  if (at.getFullYear() !== y || at.getMonth() !== mo - 1 || at.getDate() !== d) {
    return { value: null, error: 'not a date and time' };
  }
  return { value: at.getTime(), error: null };
}

/** `ms` as a `datetime-local` field's value: local time, to the minute. */
export function localTimeText(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getFullYear(), 4)}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** A time range's error, said by its end: it must end after it starts. */
export function rangeError(since: number | null, until: number | null): string | null {
  return since !== null && until !== null && until <= since ? 'must be after From' : null;
}
