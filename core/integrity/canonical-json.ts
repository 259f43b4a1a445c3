// RFC 8785 (JSON Canonicalization Scheme) for the values a canonical record holds: strings,
// finite numbers, booleans, null, arrays and objects. Object members are sorted by their keys'
// UTF-16 code units (JavaScript's default string order), numbers are written as ECMAScript writes
// them (which is what RFC 8785 specifies) and strings as JSON.stringify escapes them (RFC 8785
// section 3.2.2.2). Written here rather than taken from a package: it is twenty lines on the
// agent's per-record path, and it refuses (instead of silently writing null for) a value that
// has no canonical form.
import { CiAuditError } from '../errors.ts';

export type CanonicalValue = string | number | boolean | null | CanonicalValue[] | { [key: string]: CanonicalValue };

/** The RFC 8785 text of `value`. Throws CIA_ERR_INTEGRITY_CANONICAL for a non-finite number. */
export function canonicalJson(value: CanonicalValue): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) {
      throw new CiAuditError('CIA_ERR_INTEGRITY_CANONICAL', `a canonical record cannot hold the number ${value}: JSON has no form for it`);
    }
    // -0 is written as 0 (RFC 8785 3.2.2.3); String() already does.
    return String(value);
  }
  if (typeof value === 'boolean' || value === null) return String(value);
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += canonicalJson(value[i] as CanonicalValue);
    }
    return `${out}]`;
  }
  const keys = Object.keys(value).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const member = value[key];
    if (member === undefined) continue;
    if (!first) out += ',';
    first = false;
    out += `${JSON.stringify(key)}:${canonicalJson(member)}`;
  }
  return `${out}}`;
}
