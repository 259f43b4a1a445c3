// `ci-audit setup`: installs the component and index templates of templates.ts, idempotently, the
// way `filebeat setup` does. Each template is compared by `_meta.version` and `_meta.digest`:
//   cluster's version newer than ours              -> left alone (a newer ci-audit installed it: never downgrade)
//   same version and digest                        -> unchanged
//   absent                                         -> created (`create: true`: of two aggregators starting together, one creates)
//   older version, or same version, other digest   -> updated (e.g. retention changed in the config)
// Component templates go first: index templates refer to them. A template update applies to
// backing indices created afterwards; `rolloverChanged` rolls the affected data streams over so that
// the new mappings apply at once (safe: rollover only starts a new backing index).
import type { Client } from '@elastic/elasticsearch';
import { toEsError, statusOf } from './es-errors.ts';
import { buildTemplatePlan } from './templates.ts';
import type { TemplateMeta, TemplatePlan } from './templates.ts';

export type EnsureAction = 'created' | 'updated' | 'unchanged';

export interface EnsureResult {
  kind: 'component_template' | 'index_template';
  name: string;
  action: EnsureAction;
  /** `_meta.version` installed in the cluster afterwards (may be newer than ours: then left alone). */
  version: number;
}

/** What to do with one template, given what the cluster holds. A pure function. */
export function decideTemplateAction(installed: Partial<TemplateMeta> | undefined, desired: TemplateMeta): EnsureAction | 'keep_newer' {
  if (installed === undefined) return 'created';
  const version = typeof installed.version === 'number' ? installed.version : 0;
  if (version > desired.version) return 'keep_newer';
  if (version === desired.version && installed.digest === desired.digest) return 'unchanged';
  return 'updated';
}

/**
 * Installs every template of `plan`. Throws CiAuditError CIA_ERR_ES_UNAVAILABLE, CIA_ERR_ES_AUTH or
 * CIA_ERR_ES_SETUP. `url` is only for messages (redacted there).
 */
export interface EnsureOptions {
  /**
   * Leave a template of our version alone even when its content differs. The aggregator starts with
   * this: the difference is retention that `ci-audit setup` / `retention apply` put there from the
   * configuration, which the aggregator must not undo.
   */
  keepSameVersion?: boolean;
}

export async function ensureTemplates(client: Client, url: string, plan: TemplatePlan = buildTemplatePlan(), options: EnsureOptions = {}): Promise<EnsureResult[]> {
  const results: EnsureResult[] = [];
  for (const { name, body } of plan.componentTemplates) {
    results.push(
      await ensureOne(url, 'component_template', name, body._meta, options, {
        get: async () => {
          const r = await client.cluster.getComponentTemplate({ name });
          const found = r.component_templates.find((t) => t.name === name);
          return found === undefined ? undefined : (found.component_template._meta ?? {});
        },
        put: async (create) => {
          await client.cluster.putComponentTemplate({ name, create, ...body });
        },
      }),
    );
  }
  for (const { name, body } of plan.indexTemplates) {
    results.push(
      await ensureOne(url, 'index_template', name, body._meta, options, {
        get: async () => {
          const r = await client.indices.getIndexTemplate({ name });
          const found = r.index_templates.find((t) => t.name === name);
          return found === undefined ? undefined : (found.index_template._meta ?? {});
        },
        put: async (create) => {
          await client.indices.putIndexTemplate({ name, create, ...body });
        },
      }),
    );
  }
  return results;
}

interface TemplateApi {
  /** The installed template's `_meta` (`{}` for a template without one, made by hand), undefined when absent. */
  get(): Promise<Partial<TemplateMeta> | undefined>;
  put(create: boolean): Promise<void>;
}

async function ensureOne(url: string, kind: EnsureResult['kind'], name: string, desired: TemplateMeta, options: EnsureOptions, api: TemplateApi): Promise<EnsureResult> {
  const what = `${kind.replace('_', ' ')} ${name}`;
  for (let attempt = 0; ; attempt++) {
    let installed: Partial<TemplateMeta> | undefined;
    try {
      installed = await api.get();
    } catch (err) {
      if (statusOf(err) !== 404) throw toEsError(err, `reading ${what}`, url, 'CIA_ERR_ES_SETUP');
    }
    // A template without _meta (made by hand) counts as version 0: ours replaces it.
    let action = decideTemplateAction(installed, desired);
    if (action === 'updated' && options.keepSameVersion === true && installed?.version === desired.version) action = 'unchanged';
    if (action === 'keep_newer') return { kind, name, action: 'unchanged', version: installed?.version ?? 0 };
    if (action === 'unchanged') return { kind, name, action, version: desired.version };
    try {
      await api.put(action === 'created');
      return { kind, name, action, version: desired.version };
    } catch (err) {
      // Lost the race to another aggregator: read again and compare versions.
      if (action === 'created' && statusOf(err) === 400 && attempt === 0 && /already exists/.test(String((err as Error).message))) continue;
      throw toEsError(err, `installing ${what}`, url, 'CIA_ERR_ES_SETUP');
    }
  }
}
