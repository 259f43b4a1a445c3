// Times of syslog lines. The traditional BSD stamp (`Feb  3 04:05:06`) has neither year nor zone:
// the year comes from when the line was read and the zone from configuration; RFC 3339 stamps
// carry both. Pure functions: the clock (`observedMs`) is an argument.

const months = new Map<string, number>(['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'].map((name, i) => [name, i]));

/** A zone for stamps without one: `local` (the agent's), `UTC`, a fixed offset `+02:00`, or an IANA name. */
export interface TimeZoneResolver {
  /** The zone as configured, for messages. */
  readonly name: string;
  /** Milliseconds to add to UTC to get local wall time at the UTC instant `utcMs`. */
  offsetMs(utcMs: number): number;
}

export interface ParsedTime {
  /** Milliseconds since the epoch. */
  ms: number;
  /** Nanoseconds within the millisecond (RFC 3339 fractions beyond ms). */
  subMsNanos: number;
  /** Offset of the stamp as `+hh:mm`, for ECS `event.timezone`. */
  timezone: string;
}

const DAY = 86_400_000;

/** Builds the resolver for a configured zone; throws RangeError on an unknown zone (config validation calls it). */
export function timeZoneResolver(zone: string): TimeZoneResolver {
  if (zone === 'local') {
    return { name: zone, offsetMs: (utcMs) => -new Date(utcMs).getTimezoneOffset() * 60_000 };
  }
  if (zone === 'UTC' || zone === 'Z') return { name: zone, offsetMs: () => 0 };
  const fixed = /^([+-])(\d{2}):?(\d{2})$/.exec(zone);
  if (fixed !== null) {
    const offset = (fixed[1] === '-' ? -1 : 1) * (Number(fixed[2]) * 60 + Number(fixed[3])) * 60_000;
    return { name: zone, offsetMs: () => offset };
  }
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone: zone, // throws RangeError for an unknown zone
    hourCycle: 'h23',
    year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
  });
  // Offsets change at most a few times a year and on whole quarter hours: cache per 15 minutes.
  const cache = new Map<number, number>();
  return {
    name: zone,
    offsetMs(utcMs) {
      const key = Math.floor(utcMs / 900_000);
      let offset = cache.get(key);
      if (offset === undefined) {
        const parts: Record<string, number> = {};
        for (const p of format.formatToParts(new Date(key * 900_000))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
        const wall = Date.UTC(parts.year ?? 1970, (parts.month ?? 1) - 1, parts.day ?? 1, parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0);
        offset = wall - key * 900_000;
        if (cache.size > 4096) cache.clear();
        cache.set(key, offset);
      }
      return offset;
    },
  };
}

export function formatOffset(offsetMs: number): string {
  const sign = offsetMs < 0 ? '-' : '+';
  const minutes = Math.abs(Math.round(offsetMs / 60_000));
  return `${sign}${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

/**
 * `Mmm dd hh:mm:ss` (already split) -> UTC, inferring the year from `observedMs`: the year in which
 * the stamp is closest to, and not more than two days after, the time it was read. A December line
 * read in January is last year's; a line a few hours "in the future" (clock skew) is this year's.
 */
export function bsdTime(
  month: string, day: number, hour: number, minute: number, second: number, fractionMs: number,
  observedMs: number, zone: TimeZoneResolver,
): ParsedTime | undefined {
  const mon = months.get(month);
  if (mon === undefined || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return undefined;
  // Lines come in runs of the same minute: the year and zone work is done once per stamp minute
  // and hour of reading (offsets change on whole minutes; the year choice only near its
  // two-day threshold, where an hour of reading time does not matter).
  const key = ((mon * 32 + day) * 24 + hour) * 60 + minute + Math.floor(observedMs / 3_600_000) * 1_000_000;
  let start: MinuteStart | null | undefined;
  if (zone === lastMinute.zone && key === lastMinute.key) {
    // The same minute as the line before: no map to look in.
    start = lastMinute.start;
  } else {
    let cache = minuteCaches.get(zone);
    if (cache === undefined) {
      cache = new Map();
      minuteCaches.set(zone, cache);
    }
    start = cache.get(key);
    if (start === undefined) {
      start = minuteStart(mon, day, hour, minute, observedMs, zone) ?? null;
      if (cache.size >= 1024) cache.clear();
      cache.set(key, start);
    }
    lastMinute = { zone, key, start };
  }
  if (start === null) return undefined;
  return { ms: start.ms + second * 1000 + fractionMs, subMsNanos: 0, timezone: start.timezone };
}

/** The UTC start of a stamp's minute and its offset (null in the caches: no such time, as Feb 30). */
type MinuteStart = { ms: number; timezone: string };

const minuteCaches = new WeakMap<TimeZoneResolver, Map<number, MinuteStart | null>>();
/** The last minute looked up, with its zone and key as in bsdTime. */
let lastMinute: { zone: TimeZoneResolver | undefined; key: number; start: MinuteStart | null } = { zone: undefined, key: -1, start: null };

function minuteStart(mon: number, day: number, hour: number, minute: number, observedMs: number, zone: TimeZoneResolver): MinuteStart | undefined {
  const observedYear = new Date(observedMs + zone.offsetMs(observedMs)).getUTCFullYear();
  let best: number | undefined;
  for (const year of [observedYear + 1, observedYear, observedYear - 1]) {
    const wall = Date.UTC(year, mon, day, hour, minute);
    // Feb 29 in a year without one rolls over to Mar 1: not this year.
    if (new Date(wall).getUTCDate() !== day) continue;
    const utc = wall - zone.offsetMs(wall - zone.offsetMs(wall));
    if (utc > observedMs + 2 * DAY) continue;
    if (best === undefined || utc > best) best = utc;
  }
  if (best === undefined) return undefined;
  return { ms: best, timezone: formatOffset(zone.offsetMs(best)) };
}

const rfc3339 = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})$/i;

type Zone = { offsetMs: number; timezone: string };
/** Zone suffixes (`Z`, `+01:00`, `-0500`) seen so far -> offset and `event.timezone`: a host writes one or two. */
const zoneSuffixes = new Map<string, Zone>();
/** The last zone suffix read, and its zone. */
let lastSuffix: { text: string; zone: Zone | undefined } = { text: '', zone: undefined };

/**
 * The last date and time to the second (`2025-03-04T09:15:02`) and its value as if it were UTC
 * (undefined: not a valid time). Lines come in runs of the same second.
 */
let lastClock: { text: string; wallMs: number | undefined } = { text: '', wallMs: undefined };

/** 10^(9 - n): a fraction of n digits -> nanoseconds. */
const nanosScale = [1e9, 1e8, 1e7, 1e6, 1e5, 1e4, 1e3, 100, 10, 1];

/**
 * RFC 3339 (as rsyslog's high-precision format writes it) -> UTC; undefined when it is not one.
 * The pattern only checks the text (`test`: no match array, no string per part): where each part
 * starts follows from it, and the parts are read in place. The clock and the zone suffix are
 * compared with the last ones; a string is cut only when one changes.
 */
export function rfc3339Time(text: string): ParsedTime | undefined {
  if (!rfc3339.test(text)) return undefined;
  // `YYYY-MM-DDThh:mm:ss` is the first 19 characters.
  if (lastClock.text.length !== 19 || !text.startsWith(lastClock.text)) {
    const clock = text.slice(0, 19);
    lastClock = { text: clock, wallMs: clockWallMs(clock) };
  }
  if (lastClock.wallMs === undefined) return undefined;
  // Nine digits of fraction as one number: the milliseconds are its first three, the nanoseconds within them the rest.
  let at = 19;
  let fraction = 0;
  if (text.charCodeAt(19) === 0x2e /* . */) {
    at = 20;
    while (isDigit(text.charCodeAt(at))) at++;
    fraction = digitsAt(text, 20, at - 20) * nanosScale[at - 20]!;
  }
  const ms = Math.floor(fraction / 1e6);
  if (lastSuffix.text.length !== text.length - at || !text.endsWith(lastSuffix.text)) {
    const suffix = text.slice(at);
    lastSuffix = { text: suffix, zone: zoneSuffixes.get(suffix) };
  }
  let zone = lastSuffix.zone;
  if (zone === undefined) {
    const suffix = lastSuffix.text;
    const upper = suffix.toUpperCase();
    const offsetMs = upper === 'Z' ? 0 : (upper[0] === '-' ? -1 : 1) * (Number(upper.slice(1, 3)) * 60 + Number(upper.slice(-2))) * 60_000;
    zone = { offsetMs, timezone: formatOffset(offsetMs) };
    if (zoneSuffixes.size >= 64) zoneSuffixes.clear();
    zoneSuffixes.set(suffix, zone);
    lastSuffix.zone = zone;
  }
  return { ms: lastClock.wallMs + ms - zone.offsetMs, subMsNanos: fraction - ms * 1e6, timezone: zone.timezone };
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/** `YYYY-MM-DDThh:mm:ss` (digits checked by the pattern) -> milliseconds as if UTC; undefined when out of range. */
function clockWallMs(clock: string): number | undefined {
  const mon = digitsAt(clock, 5, 2);
  const day = digitsAt(clock, 8, 2);
  const hour = digitsAt(clock, 11, 2);
  const minute = digitsAt(clock, 14, 2);
  const second = digitsAt(clock, 17, 2);
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return undefined;
  const wall = Date.UTC(digitsAt(clock, 0, 4), mon - 1, day, hour, minute, second);
  // A day the month does not have (2024-02-30, 2025-04-31) rolls over into the next month: refused,
  // as bsdTime refuses Feb 30.
  if (Number.isNaN(wall) || new Date(wall).getUTCDate() !== day) return undefined;
  return wall;
}

/** The number written by the `count` ASCII digits at `at` (a pattern matched them: no string per number). */
export function digitsAt(text: string, at: number, count: number): number {
  let n = 0;
  for (let i = at; i < at + count; i++) n = n * 10 + text.charCodeAt(i) - 0x30;
  return n;
}
