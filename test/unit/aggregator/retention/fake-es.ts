// A small fake Elasticsearch for the retention unit tests: a real local HTTP server (port 0, closed
// in t.after) that records every request and answers from a list of routes, like Elasticsearch does
// (JSON bodies, the x-elastic-product header the official client checks).
import { createServer } from 'node:http';
import { Client } from '@elastic/elasticsearch';

export interface SeenRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
}

export interface Route {
  method: string;
  path: RegExp;
  /** Status and JSON body; default status 200. */
  answer: (req: SeenRequest, match: RegExpExecArray) => { status?: number; body: unknown };
}

export async function fakeElasticsearch(t: { after: (fn: () => Promise<void>) => void }, routes: readonly Route[]): Promise<{ client: Client; url: string; seen: SeenRequest[] }> {
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      const url = new URL(req.url ?? '/', 'http://es');
      const request: SeenRequest = { method: req.method ?? '', path: decodeURIComponent(url.pathname), query: url.searchParams, body: text === '' ? undefined : JSON.parse(text) };
      seen.push(request);
      let status = 404;
      let body: unknown = { error: { type: 'resource_not_found_exception', reason: `no route for ${request.method} ${request.path}` }, status: 404 };
      for (const route of routes) {
        const match = route.method === request.method ? route.path.exec(request.path) : null;
        if (match === null) continue;
        const answer = route.answer(request, match);
        status = answer.status ?? 200;
        body = answer.body;
        break;
      }
      res.writeHead(status, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch' });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const client = new Client({ node: url });
  t.after(() => client.close());
  return { client, url, seen };
}
