// Validation of a configuration against its schema (valibot, chosen over zod for its footprint:
// docs/architecture.md, decisions), and the issues turned into messages a user can act on: the
// option's path and what it expects, an unknown key with the keys allowed in its place.
import * as v from 'valibot';
import { CiAuditError } from '../core/errors.ts';

/** One problem found in a configuration: where (keys and list indexes) and what is wrong. */
export interface ConfigIssue {
  path: (string | number)[];
  message: string;
}

export type ConfigCheck<T> = { ok: true; value: T } | { ok: false; issues: ConfigIssue[] };

type AnySchema = v.GenericSchema;

/** A configuration schema: checks a value, fills in the defaults and reports every issue found. */
export class ConfigSchema<S extends AnySchema> {
  /** The valibot schema itself, for the code that reads its options (the docs test). */
  readonly schema: S;

  constructor(schema: S) {
    this.schema = schema;
  }

  check(value: unknown): ConfigCheck<v.InferOutput<S>> {
    const result = v.safeParse(this.schema, value);
    if (result.success) return { ok: true, value: result.output };
    return { ok: false, issues: result.issues.map((issue) => this.#describe(issue)) };
  }

  /**
   * The type of value the schema takes at `path` of `root` (`string`, `number`, `boolean`,
   * `picklist`, ...), through optional options, lists, records and, in a list of sources, the
   * option of the source's own `type`; undefined where the schema has no such option.
   */
  scalarTypeAt(path: readonly (string | number)[], root: unknown): string | undefined {
    let node: unknown = this.schema;
    let value = root;
    for (const key of path) {
      node = variantOption(unwrap(node), value);
      if (isType(node, 'array')) node = (node as { item: unknown }).item;
      else if (isType(node, 'strict_object')) node = (node as { entries: Record<string, unknown> }).entries[key as string];
      else if (isType(node, 'record')) node = (node as { value: unknown }).value;
      else return undefined;
      value = typeof value === 'object' && value !== null ? (value as Record<string | number, unknown>)[key] : undefined;
    }
    const type = (unwrap(node) as { type?: unknown } | undefined)?.type;
    return typeof type === 'string' ? type : undefined;
  }

  /** The value with its defaults filled in; a CIA_ERR_CONFIG_INVALID error listing each issue otherwise. */
  parse(value: unknown): v.InferOutput<S> {
    const result = this.check(value);
    if (result.ok) return result.value;
    const messages = result.issues.map((issue) => `${formatPath(issue.path) || '<top level>'}: ${issue.message}`);
    throw new CiAuditError('CIA_ERR_CONFIG_INVALID', `invalid configuration:\n  ${messages.join('\n  ')}`, { details: { issues: messages } });
  }

  #describe(issue: v.BaseIssue<unknown>): ConfigIssue {
    const path = (issue.path ?? []).map((item) => item.key as string | number);
    if (issue.type === 'strict_object' && issue.expected === 'never') {
      return { path, message: `unknown option (allowed here: ${allowedKeys(this.schema, issue.path ?? [])})` };
    }
    if (issue.type === 'strict_object' && issue.input === undefined && issue.expected?.startsWith('"')) {
      return { path, message: 'required option missing' };
    }
    return { path, message: withoutValue(issue) };
  }
}

/**
 * valibot's own messages quote the value they received, and a configuration holds secrets: a
 * token, or a password YAML read as a number (`password: 12345678`). So a message says which type
 * it received, and never repeats a text; a number out of its range is shown (no secret is a number
 * with a range).
 */
function withoutValue(issue: v.BaseIssue<unknown>): string {
  const input = issue.input;
  if (issue.kind === 'schema' && (typeof input === 'string' || typeof input === 'number' || typeof input === 'bigint' || typeof input === 'boolean')) {
    return issue.message.replace(` but received ${issue.received}`, ` but received a ${typeof input}`);
  }
  if (typeof input === 'string') return issue.message.replace(` but received ${issue.received}`, '');
  return issue.message;
}

/** `sources[0].include[2]`, as the documentation names options. */
export function formatPath(where: readonly (string | number)[]): string {
  return where.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/**
 * valibot's strictObject, except that it refuses a list: valibot takes any object, arrays too, so
 * `log: []` would pass as an empty section and get its defaults, where a configuration section must
 * be a mapping.
 */
export function strictObject<const E extends v.ObjectEntries>(entries: E): v.StrictObjectSchema<E, undefined> {
  const schema = v.strictObject(entries);
  const run = schema['~run'];
  // Replaced in place (the property is read-only in the type only), so `~standard` validates the same way.
  (schema as { '~run': typeof run })['~run'] = function (this: typeof schema, dataset, config) {
    if (!Array.isArray(dataset.value)) return run.call(this, dataset, config);
    const issue: v.StrictObjectIssue = {
      kind: 'schema',
      type: 'strict_object',
      input: dataset.value,
      expected: 'Object',
      received: 'Array',
      message: 'Invalid type: Expected Object but received Array',
      lang: config.lang,
      abortEarly: config.abortEarly,
      abortPipeEarly: config.abortPipeEarly,
    };
    return { typed: false, value: dataset.value, issues: [issue] };
  };
  return schema;
}

/**
 * Keys the schema allows where the unknown key `path.at(-1)` was found, for the "unknown option"
 * message. In a list of sources, those of the source's own `type`.
 */
function allowedKeys(schema: AnySchema, path: readonly v.IssuePathItem[]): string {
  let node: unknown = schema;
  for (const [i, item] of path.entries()) {
    // item.input is the object or list that holds item.key: the value `node` describes.
    node = variantOption(unwrap(node), item.input);
    if (i === path.length - 1) break;
    if (isType(node, 'array')) node = (node as { item: unknown }).item;
    else if (isType(node, 'strict_object')) node = (node as { entries: Record<string, unknown> }).entries[item.key as string];
    else if (isType(node, 'record')) node = (node as { value: unknown }).value;
    else return '?';
  }
  if (isType(node, 'strict_object')) return Object.keys((node as { entries: object }).entries).join(', ');
  if (isType(node, 'variant')) {
    const options = (node as { options: { entries: object }[] }).options;
    return [...new Set(options.flatMap((o) => Object.keys(o.entries)))].join(', ');
  }
  return '?';
}

/** The option of a variant that `value`'s discriminator picks; `node` itself if it is no variant or none matches. */
function variantOption(node: unknown, value: unknown): unknown {
  if (!isType(node, 'variant') || typeof value !== 'object' || value === null) return node;
  const { key, options } = node as { key: string; options: { entries: Record<string, { literal?: unknown }> }[] };
  return options.find((o) => o.entries[key]?.literal === (value as Record<string, unknown>)[key]) ?? node;
}

/** Looks through `optional` (with or without default) to the schema that carries the shape. */
export function unwrap(node: unknown): unknown {
  let current = node;
  while (isType(current, 'optional')) current = (current as { wrapped: unknown }).wrapped;
  return current;
}

function isType(node: unknown, type: string): boolean {
  return typeof node === 'object' && node !== null && (node as { type?: unknown }).type === type;
}
