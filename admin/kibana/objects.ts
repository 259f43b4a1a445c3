// The Kibana saved objects of ci-audit, built from the saved query table (admin/search/queries.ts):
// a data view per dataset and one for all, a saved search per audit question, and a dashboard of
// runner access and pipeline activity. scripts/kibana-objects.ts writes them to
// deploy/kibana/ci-audit.ndjson; a test keeps the committed file equal to this output.
import { builtInDatasets } from '../../aggregator/index/templates.ts';
import { conditionsToKql, savedQueries, type SavedQuery } from '../search/queries.ts';

export interface SavedObject {
  type: 'index-pattern' | 'search' | 'dashboard';
  id: string;
  attributes: Record<string, unknown>;
  references: Array<{ name: string; type: string; id: string }>;
  /** Kibana migrates objects from this version on import. */
  coreMigrationVersion: string;
  typeMigrationVersion: string;
}

const coreMigrationVersion = '8.8.0';
const searchSourceRef = 'kibanaSavedObjectMeta.searchSourceJSON.index';

export function dataViewId(dataset: string | undefined): string {
  return `ci-audit-${dataset ?? 'all'}`;
}

export function savedSearchId(query: SavedQuery): string {
  return `ci-audit-search-${query.id}`;
}

export const dashboardId = 'ci-audit-dashboard-runner-access';

function dataView(dataset: string | undefined): SavedObject {
  return {
    type: 'index-pattern',
    id: dataViewId(dataset),
    attributes: {
      title: `logs-ci_audit.${dataset ?? '*'}-*`,
      name: `ci-audit: ${dataset ?? 'all datasets'}`,
      timeFieldName: '@timestamp',
    },
    references: [],
    coreMigrationVersion,
    typeMigrationVersion: '8.0.0',
  };
}

function savedSearch(query: SavedQuery): SavedObject {
  return {
    type: 'search',
    id: savedSearchId(query),
    attributes: {
      title: `ci-audit: ${query.title}`,
      description: query.description,
      columns: [...query.columns],
      sort: [['@timestamp', 'desc']],
      kibanaSavedObjectMeta: {
        searchSourceJSON: JSON.stringify({
          query: { query: conditionsToKql(query.conditions), language: 'kuery' },
          filter: [],
          indexRefName: searchSourceRef,
        }),
      },
    },
    references: [{ name: searchSourceRef, type: 'index-pattern', id: dataViewId(query.dataset) }],
    coreMigrationVersion,
    typeMigrationVersion: '8.0.0',
  };
}

/** Saved searches on the dashboard, in a two-column grid. */
export const dashboardPanels = ['failed-ssh-logins', 'successful-logins', 'sudo-commands', 'account-changes', 'pipeline-runs', 'failed-jobs', 'integrity-alerts'] as const;

function dashboard(): SavedObject {
  const panels = dashboardPanels.map((_id, i) => ({
    type: 'search',
    panelIndex: String(i + 1),
    gridData: { x: (i % 2) * 24, y: Math.floor(i / 2) * 15, w: 24, h: 15, i: String(i + 1) },
    embeddableConfig: {},
    panelRefName: `panel_${i + 1}`,
  }));
  return {
    type: 'dashboard',
    id: dashboardId,
    attributes: {
      title: 'ci-audit: runner access and pipeline activity',
      description: 'Logins, sudo, account changes, pipeline runs and failures, integrity events.',
      panelsJSON: JSON.stringify(panels),
      optionsJSON: JSON.stringify({ useMargins: true, syncColors: false, hidePanelTitles: false }),
      timeRestore: true,
      timeFrom: 'now-24h',
      timeTo: 'now',
      kibanaSavedObjectMeta: { searchSourceJSON: JSON.stringify({ query: { query: '', language: 'kuery' }, filter: [] }) },
    },
    references: dashboardPanels.map((id, i) => ({ name: `${i + 1}:panel_${i + 1}`, type: 'search', id: `ci-audit-search-${id}` })),
    coreMigrationVersion,
    typeMigrationVersion: '8.9.0',
  };
}

/** Every saved object, data views first (Kibana resolves references within one import). */
export function buildSavedObjects(): SavedObject[] {
  return [dataView(undefined), ...builtInDatasets.map((d) => dataView(d)), ...savedQueries.map(savedSearch), dashboard()];
}

/** One object per line, as the saved objects import API reads it. */
export function toNdjson(objects: readonly SavedObject[]): string {
  return objects.map((o) => JSON.stringify(o)).join('\n') + '\n';
}
