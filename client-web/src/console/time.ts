// Times in the compliance and admin screens: shown in the reader's locale, sent as RFC 3339.

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

/** "6 Dec 2026, 14:05" (the raw string when it does not parse; a dash when absent). */
export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateTime.format(d);
}

/** "6 Dec 2026". */
export function day(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateOnly.format(d);
}

/** An `<input type="datetime-local">` value (local time) as RFC 3339, or undefined when empty. */
export function fromLocalInput(value: string): string | undefined {
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/** Local midnight at the start of an `<input type="date">` day, as RFC 3339. */
export function startOfDay(value: string): string | undefined {
  if (!value) return undefined;
  const [y, m, d] = value.split('-').map(Number);
  if (!y || !m || !d) return undefined;
  return new Date(y, m - 1, d).toISOString();
}

/** Local midnight after an `<input type="date">` day (an end that is excluded), as RFC 3339. */
export function endOfDay(value: string): string | undefined {
  if (!value) return undefined;
  const [y, m, d] = value.split('-').map(Number);
  if (!y || !m || !d) return undefined;
  return new Date(y, m - 1, d + 1).toISOString();
}

/** The current time as an `<input type="datetime-local">` value. */
export function nowLocalInput(): string {
  const d = new Date();
  d.setSeconds(0, 0);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}

/** An excluded end as people say it: "through 30 Jun 2026" when it is a local midnight, else
 * "until 1 Jul 2026, 14:00". */
export function endText(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return `until ${iso}`;
  if (d.getHours() === 0 && d.getMinutes() === 0 && d.getSeconds() === 0) return `through ${dateOnly.format(new Date(d.getTime() - 1))}`;
  return `until ${dateTime.format(d)}`;
}
