// Times of syslog lines. The traditional BSD stamp (`Feb  3 04:05:06`) has neither year nor zone:
// the year comes from when the line was read and the zone from configuration; RFC 3339 stamps
// carry both. Pure functions: the clock (`observedMs`) is an argument.

const months: Record<string, number> = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 };

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
  const mon = months[month];
  if (mon === undefined || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return undefined;
  // Lines come in runs of the same minute: the year and zone work is done once per stamp minute
  // and hour of reading (offsets change on whole minutes; the year choice only near its
  // two-day threshold, where an hour of reading time does not matter).
  let cache = minuteCaches.get(zone);
  if (cache === undefined) {
    cache = new Map();
    minuteCaches.set(zone, cache);
  }
  const key = ((mon * 32 + day) * 24 + hour) * 60 + minute + Math.floor(observedMs / 3_600_000) * 1_000_000;
  let start = cache.get(key);
  if (start === undefined) {
    start = minuteStart(mon, day, hour, minute, observedMs, zone) ?? null;
    if (cache.size >= 1024) cache.clear();
    cache.set(key, start);
  }
  if (start === null) return undefined;
  return { ms: start.ms + second * 1000 + fractionMs, subMsNanos: 0, timezone: start.timezone };
}

const minuteCaches = new WeakMap<TimeZoneResolver, Map<number, { ms: number; timezone: string } | null>>();

function minuteStart(mon: number, day: number, hour: number, minute: number, observedMs: number, zone: TimeZoneResolver): { ms: number; timezone: string } | undefined {
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

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})$/i;

/** RFC 3339 (as rsyslog's high-precision format writes it) -> UTC; undefined when it is not one. */
export function rfc3339Time(text: string): ParsedTime | undefined {
  const m = rfc3339.exec(text);
  if (m === null) return undefined;
  const [mon, day, hour, minute, second] = [Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])];
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return undefined;
  const fraction = (m[7] ?? '').padEnd(9, '0');
  const wall = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), Number(fraction.slice(0, 3)));
  if (Number.isNaN(wall)) return undefined;
  const zone = (m[8] ?? 'Z').toUpperCase();
  let offsetMs = 0;
  if (zone !== 'Z') {
    offsetMs = (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(-2))) * 60_000;
  }
  return { ms: wall - offsetMs, subMsNanos: Number(fraction.slice(3)), timezone: formatOffset(offsetMs) };
}
