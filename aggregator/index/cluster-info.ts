// Which Elasticsearch a client talks to. `GET /` lives in the rest-root module, which minimal
// distributions (the integ-test-zip used in our tests) lack, so fall back to the nodes info API,
// which is part of the server.
import type { Client } from '@elastic/elasticsearch';

export interface ClusterInfo {
  /** Version of the node that answered, e.g. `9.5.4`. */
  version: string;
  clusterName: string;
}

export async function clusterInfo(client: Client): Promise<ClusterInfo> {
  const nodes = await client.nodes.info({ node_id: '_local', metric: '_none', filter_path: ['cluster_name', 'nodes.*.version'] });
  const node = Object.values(nodes.nodes ?? {})[0];
  return { version: node?.version ?? 'unknown', clusterName: nodes.cluster_name ?? 'unknown' };
}
