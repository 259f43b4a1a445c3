// Keeps docs/configuration.md in step with config/schema.ts: every option of both schemas must be
// documented, and every documented option must exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { agentConfigSchema, aggregatorConfigSchema } from '../../../config/schema.ts';
import { unwrap } from '../../../config/validation.ts';

// The parts of valibot's schema objects that give a configuration its shape.
type Shape = { type?: string; entries?: Record<string, unknown>; item?: unknown; options?: unknown[] };

const shape = (node: unknown): Shape => unwrap(node) as Shape;

function optionPaths(schema: unknown, prefix = ''): string[] {
  const s = shape(schema);
  if (s.type === 'strict_object' && s.entries) {
    return Object.entries(s.entries).flatMap(([k, v]) => {
      const path = prefix ? `${prefix}.${k}` : k;
      const inner = shape(v);
      const children = inner.type === 'strict_object' || inner.type === 'array' ? optionPaths(v, path) : [];
      return children.length > 0 ? children : [path];
    });
  }
  if (s.type === 'array') {
    const element = shape(s.item);
    if (element.type === 'variant' && element.options) {
      return [prefix, ...new Set(element.options.flatMap((o) => optionPaths(o, `${prefix}[]`)))];
    }
    return element.type === 'strict_object' ? [prefix, ...optionPaths(s.item, `${prefix}[]`)] : [prefix];
  }
  return [prefix];
}

test('every configuration option is documented in docs/configuration.md', async () => {
  const doc = await readFile(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
  const [agentPart, aggregatorPart] = doc.split('## Aggregator');
  const documented = (part: string | undefined) => new Set([...(part ?? '').matchAll(/^\| `([a-z0-9_.[\]]+)` \|/gm)].map((m) => m[1]));
  const check = (schema: unknown, part: string | undefined, name: string) => {
    const paths = new Set(optionPaths(schema));
    // A walk that found nothing would pass the second check below vacuously.
    assert.ok(paths.size > 20, `${name}: the schema walk found only ${[...paths].join(', ')}`);
    const listed = documented(part);
    for (const p of paths) assert.ok(listed.has(p), `${name} option ${p} is not documented`);
    for (const p of listed) assert.ok(paths.has(p as string), `${name} option ${p} is documented but does not exist`);
  };
  check(agentConfigSchema.schema, agentPart, 'agent');
  check(aggregatorConfigSchema.schema, aggregatorPart?.split('## Environment')[0], 'aggregator');
});
