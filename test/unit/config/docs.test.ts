// Keeps docs/configuration.md in step with config/schema.ts: every option of both schemas must be
// documented, and every documented option must exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { agentConfigSchema, aggregatorConfigSchema } from '../../../config/schema.ts';

type Def = { type?: string; innerType?: unknown; in?: unknown; shape?: Record<string, unknown>; element?: unknown; options?: unknown[] };

function def(node: unknown): Def {
  let d = (node as { def: Def }).def;
  // Look through wrappers (defaults, optionals) to the type that carries the shape.
  while (['default', 'prefault', 'optional', 'nullable', 'pipe'].includes(d.type ?? '')) {
    d = ((d.innerType ?? d.in) as { def: Def }).def;
  }
  return d;
}

function optionPaths(schema: z.ZodType, prefix = ''): string[] {
  const d = def(schema);
  if (d.type === 'object' && d.shape) {
    return Object.entries(d.shape).flatMap(([k, v]) => {
      const path = prefix ? `${prefix}.${k}` : k;
      const inner = def(v);
      const children = inner.type === 'object' || inner.type === 'array' ? optionPaths(v as z.ZodType, path) : [];
      return children.length > 0 ? children : [path];
    });
  }
  if (d.type === 'array') {
    const element = def(d.element);
    if (element.type === 'union' && element.options) {
      return [prefix, ...new Set(element.options.flatMap((o) => optionPaths(o as z.ZodType, `${prefix}[]`)))];
    }
    return element.type === 'object' ? [prefix, ...optionPaths(d.element as z.ZodType, `${prefix}[]`)] : [prefix];
  }
  return [prefix];
}

test('every configuration option is documented in docs/configuration.md', async () => {
  const doc = await readFile(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
  const [agentPart, aggregatorPart] = doc.split('## Aggregator');
  const documented = (part: string | undefined) => new Set([...(part ?? '').matchAll(/^\| `([a-z0-9_.[\]]+)` \|/gm)].map((m) => m[1]));
  const check = (schema: z.ZodType, part: string | undefined, name: string) => {
    const paths = new Set(optionPaths(schema));
    const listed = documented(part);
    for (const p of paths) assert.ok(listed.has(p), `${name} option ${p} is not documented`);
    for (const p of listed) assert.ok(paths.has(p as string), `${name} option ${p} is documented but does not exist`);
  };
  check(agentConfigSchema, agentPart, 'agent');
  check(aggregatorConfigSchema, aggregatorPart?.split('## Environment')[0], 'aggregator');
});
