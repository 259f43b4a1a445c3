// Loads a YAML configuration file, substitutes ${VAR} references from the environment and
// validates it once at start-up. Every error names the file, the line and column, the option
// and what to change.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, parseDocument, isMap, isScalar, isSeq, type Document, type Node } from 'yaml';
import { CiAuditError } from '../core/errors.ts';
import { agentConfigSchema, aggregatorConfigSchema, checkHttpUrl, logLevels, type AgentConfig, type AggregatorConfig, type LogLevel } from './schema.ts';
import { formatPath, type ConfigCheck } from './validation.ts';

export interface LoadedConfig<T> {
  config: T;
  /** Absolute path of the file it came from. */
  file: string;
}

export async function loadAgentConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig<AgentConfig>> {
  const loaded = await loadConfig(file, agentConfigSchema, env);
  const base = dirname(loaded.file);
  const config = loaded.config;
  config.log.level ??= logLevelFromEnv(env);
  config.agent.state_dir = resolveFrom(base, config.agent.state_dir);
  if (config.integrity.signing_key !== undefined) config.integrity.signing_key = resolveFrom(base, config.integrity.signing_key);
  for (const source of config.sources) {
    if (source.type === 'file') source.include = source.include.map((p) => resolveFrom(base, p));
    else if (source.directory !== undefined) source.directory = resolveFrom(base, source.directory);
  }
  const hooks = config.job_hooks;
  if (hooks !== undefined) {
    hooks.spool_dir = resolveFrom(base, hooks.spool_dir);
    for (const log of hooks.job_logs) log.path = resolveFrom(base, log.path);
  }
  const tls = config.output.tls;
  if (tls !== undefined) {
    if (tls.ca_file !== undefined) tls.ca_file = resolveFrom(base, tls.ca_file);
    if (tls.cert_file !== undefined) tls.cert_file = resolveFrom(base, tls.cert_file);
    if (tls.key_file !== undefined) tls.key_file = resolveFrom(base, tls.key_file);
  }
  return { config, file: loaded.file };
}

export async function loadAggregatorConfig(
  file: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<LoadedConfig<AggregatorConfig>> {
  // The aggregator runs with defaults alone: pointing ES_URL at a cluster is enough.
  const loaded =
    file === undefined
      ? { config: aggregatorConfigSchema.parse({}), file: '<defaults>' }
      : await loadConfig(file, aggregatorConfigSchema, env);
  const es = loaded.config.elasticsearch;
  if (env.ES_URL !== undefined && env.ES_URL !== '') es.url = esUrlFromEnv(env.ES_URL);
  loaded.config.log.level ??= logLevelFromEnv(env);
  if (env.ES_API_KEY !== undefined && env.ES_API_KEY !== '') es.api_key = env.ES_API_KEY;
  if (file !== undefined) {
    const base = dirname(loaded.file);
    const config = loaded.config;
    config.auth.registry_file = resolveFrom(base, config.auth.registry_file);
    if (config.integrity.anchor_file !== undefined) config.integrity.anchor_file = resolveFrom(base, config.integrity.anchor_file);
    const tls = config.listen.tls;
    if (tls !== undefined) {
      tls.cert_file = resolveFrom(base, tls.cert_file);
      tls.key_file = resolveFrom(base, tls.key_file);
      if (tls.client_ca_file !== undefined) tls.client_ca_file = resolveFrom(base, tls.client_ca_file);
    }
  }
  return loaded;
}

/** ES_URL, held to the rule of elasticsearch.url, which it replaces; the value is not repeated (it may hold a password). */
function esUrlFromEnv(value: string): string {
  const checked = checkHttpUrl(value);
  if (checked.ok) return checked.url;
  throw new CiAuditError('CIA_ERR_CONFIG_INVALID', `environment variable ES_URL: ${checked.expected} (it takes precedence over elasticsearch.url)`, {
    details: { option: 'ES_URL' },
  });
}

/** log.level when the file sets none: LOG_LEVEL from the environment, else `info`. */
function logLevelFromEnv(env: NodeJS.ProcessEnv): LogLevel {
  const value = env.LOG_LEVEL;
  if (value === undefined || value === '') return 'info';
  if ((logLevels as readonly string[]).includes(value)) return value as LogLevel;
  throw new CiAuditError('CIA_ERR_CONFIG_INVALID', `environment variable LOG_LEVEL: one of ${logLevels.join(', ')} (it applies when the configuration sets no log.level)`, {
    details: { option: 'LOG_LEVEL' },
  });
}

export async function loadConfig<T>(
  file: string,
  schema: { check(value: unknown): ConfigCheck<T>; scalarTypeAt?(path: readonly (string | number)[], root: unknown): string | undefined },
  env: NodeJS.ProcessEnv = process.env,
): Promise<LoadedConfig<T>> {
  const path = resolve(file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (cause as Error).message;
    throw new CiAuditError('CIA_ERR_CONFIG_NOT_FOUND', `cannot read configuration file ${path}: ${reason}`, {
      cause,
      details: { file: path },
    });
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const at = first.linePos?.[0];
    const where = at ? `${path}:${at.line}:${at.col}` : path;
    throw new CiAuditError('CIA_ERR_CONFIG_PARSE', `${where}: invalid YAML: ${first.message.split('\n')[0]}`, {
      details: { file: path, line: at?.line, column: at?.col },
    });
  }
  // Every substitution is text first; `port: ${PORT}` (the reference alone, not quoted) becomes a
  // number or boolean afterwards, and only where the schema takes one (see typeReferences).
  const references: (string | number)[][] = [];
  const raw = substituteEnv(doc.toJS() ?? {}, env, [], {
    missing: (where, name) => {
      const pos = positionOf(doc, lineCounter, where);
      throw new CiAuditError(
        'CIA_ERR_CONFIG_INVALID',
        `${path}:${pos}: ${formatPath(where)}: environment variable ${name} is not set (set it, or write \${${name}:-default})`,
        { details: { file: path, option: formatPath(where) } },
      );
    },
    wholeReference: (where) => {
      if (where.length === 0) return;
      const node = doc.getIn(where, true);
      if (isScalar(node) && node.type === 'PLAIN') references.push(where);
    },
  });
  if (schema.scalarTypeAt !== undefined) typeReferences(raw, references, schema.scalarTypeAt.bind(schema));
  const result = schema.check(raw);
  if (!result.ok) {
    const messages = result.issues.map(
      (issue) => `${path}:${positionOf(doc, lineCounter, issue.path)}: ${formatPath(issue.path) || '<top level>'}: ${issue.message}`,
    );
    throw new CiAuditError('CIA_ERR_CONFIG_INVALID', `invalid configuration:\n  ${messages.join('\n  ')}`, {
      details: { file: path, issues: messages },
    });
  }
  return { config: result.value, file: path };
}

/**
 * Replaces `${NAME}` and `${NAME:-default}` in string values, so secrets can stay out of the file.
 * The result is always text; `wholeReference` is told where a value was one reference alone whose
 * text reads as a number or a boolean.
 */
function substituteEnv(
  value: unknown,
  env: NodeJS.ProcessEnv,
  where: (string | number)[],
  on: { missing: (where: (string | number)[], name: string) => never; wholeReference: (where: (string | number)[]) => void },
): unknown {
  if (typeof value === 'string') {
    const substituted = value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string, fallback?: string) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      return on.missing(where, name);
    });
    if (substituted !== value && /^\$\{[^}]+\}$/.test(value) && scalarText.test(substituted)) on.wholeReference(where);
    return substituted;
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, [...where, i], on));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, [...where, k], on)]),
    );
  }
  return value;
}

/** Text that YAML would have read as a number or boolean, had it been written in the file. */
const scalarText = /^(-?\d+(\.\d+)?|true|false)$/;

/**
 * `port: ${PORT}` is a number, as if the value had been written in the file; `password: ${PW}` stays
 * text even when PW is all digits. A reference alone and unquoted becomes a number or boolean only
 * where the schema takes that type; quoted (`"${PORT}"`), or where the schema takes text, it stays text.
 */
function typeReferences(raw: unknown, references: (string | number)[][], scalarTypeAt: (path: readonly (string | number)[], root: unknown) => string | undefined): void {
  for (const where of references) {
    const type = scalarTypeAt(where, raw);
    const parent = where.slice(0, -1).reduce<unknown>((node, key) => (node as Record<string | number, unknown>)[key], raw) as Record<string | number, unknown>;
    const key = where.at(-1)!;
    const text = parent[key] as string;
    if (type === 'number' && text !== 'true' && text !== 'false') parent[key] = Number(text);
    else if (type === 'boolean' && (text === 'true' || text === 'false')) parent[key] = text === 'true';
  }
}

/** `line:column` of the deepest node of `where` present in the document. */
function positionOf(doc: Document, lineCounter: LineCounter, where: (string | number)[]): string {
  for (let depth = where.length; depth >= 0; depth--) {
    const path = where.slice(0, depth);
    const node = (path.length === 0 ? doc.contents : doc.getIn(path, true)) as Node | undefined;
    let offset = node?.range?.[0];
    // For a key (unknown option) point at the key itself, not at its value.
    if (depth > 0 && depth === where.length) {
      const parent = (depth === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true)) as Node | undefined;
      if (isMap(parent)) {
        const pair = parent.items.find((p) => (p.key as { value?: unknown } | null)?.value === path[depth - 1]);
        const keyRange = (pair?.key as Node | undefined)?.range;
        if (keyRange) offset = keyRange[0];
      } else if (isSeq(parent)) {
        offset = (parent.items[path[depth - 1] as number] as Node | undefined)?.range?.[0] ?? offset;
      }
    }
    if (offset !== undefined) {
      const pos = lineCounter.linePos(offset);
      return `${pos.line}:${pos.col}`;
    }
  }
  return '1:1';
}

function resolveFrom(base: string, p: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}
