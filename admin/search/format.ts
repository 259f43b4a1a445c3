// Output of `ci-audit search`: a table for people, JSON lines and CSV for programs. Each formatter
// turns one page of hits into lines, so results stream while later pages are fetched.

export interface Hit {
  _index: string;
  _id: string;
  _source: Record<string, unknown>;
}

export type OutputFormat = 'table' | 'jsonl' | 'csv';

export const outputFormats: readonly OutputFormat[] = ['table', 'jsonl', 'csv'];

export interface Formatter {
  /** The lines for one page; the first call also yields the header (table, csv). */
  page(hits: readonly Hit[]): string[];
}

/**
 * A field by dotted path. Documents hold objects (`user: { name }`) and, under the attribute
 * objects with `subobjects: false`, dotted keys (`ci_audit.attributes: { "a.b": 1 }`): both are found.
 */
export function fieldValue(source: Record<string, unknown>, path: string): unknown {
  if (path in source) return source[path];
  const parts = path.split('.');
  for (let i = parts.length - 1; i >= 1; i--) {
    const head = parts.slice(0, i).join('.');
    const value = source[head];
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const found = fieldValue(value as Record<string, unknown>, parts.slice(i).join('.'));
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** A value as one line of text: arrays joined by `,`, objects as JSON. */
export function fieldText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) return value.map(fieldText).join(',');
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return value.toString();
  return JSON.stringify(value) ?? '';
}

/**
 * Log lines are written by whoever is on the runner: control characters (terminal escapes, line
 * breaks) are shown as `\xNN` in the table, so a crafted line cannot rewrite the terminal or forge rows.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

const maxColumnWidth = 60;

export function tableFormatter(columns: readonly string[]): Formatter {
  let widths: number[] | undefined;
  const cell = (text: string, width: number, last: boolean): string => {
    const cut = text.length > width ? `${text.slice(0, width - 1)}…` : text;
    return last ? cut : cut.padEnd(width);
  };
  const line = (cells: readonly string[]): string => cells.map((c, i) => cell(c, widths![i]!, i === cells.length - 1)).join('  ').trimEnd();
  return {
    page(hits) {
      const rows = hits.map((h) => columns.map((c) => printable(fieldText(fieldValue(h._source, c)))));
      const out: string[] = [];
      if (widths === undefined) {
        // Widths from the header and the first page, so the header stays aligned with later pages.
        widths = columns.map((c, i) => Math.min(maxColumnWidth, Math.max(c.length, ...rows.map((r) => r[i]!.length))));
        out.push(line(columns));
      }
      for (const r of rows) out.push(line(r));
      return out;
    },
  };
}

/** One JSON object per hit: the document with its `_index` and `_id`. */
export function jsonlFormatter(): Formatter {
  return { page: (hits) => hits.map((h) => JSON.stringify({ _index: h._index, _id: h._id, ...h._source })) };
}

/** RFC 4180: a field with a comma, quote, CR or LF (or edge spaces) is quoted, quotes doubled. */
export function csvField(text: string): string {
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvFormatter(columns: readonly string[]): Formatter {
  let headerDone = false;
  return {
    page(hits) {
      const out: string[] = [];
      if (!headerDone) {
        out.push(columns.map(csvField).join(','));
        headerDone = true;
      }
      for (const h of hits) out.push(columns.map((c) => csvField(fieldText(fieldValue(h._source, c)))).join(','));
      return out;
    },
  };
}

export function createFormatter(format: OutputFormat, columns: readonly string[]): Formatter {
  if (format === 'jsonl') return jsonlFormatter();
  if (format === 'csv') return csvFormatter(columns);
  return tableFormatter(columns);
}
