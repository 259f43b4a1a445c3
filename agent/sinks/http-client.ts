// The agent's HTTP client: undici's connection pool (`Agent`) and its `request` API, loaded on
// their own. undici's entry point loads every dispatcher, fetch, WebSocket, EventSource, the mock
// agents and the caches as well: 12 to 13 MB of the agent's resident memory (half of it V8 heap and
// compiled code) for modules it never calls, against a target of 100 MB for the whole agent.
// These two files are the same objects the entry point exports (it re-exports `Agent` and wraps
// `request` to pick a dispatcher and split the URL, which `request` below does). undici has no
// `exports` map, so the paths are part of its published package; the exporter's and enrollment's
// tests send real requests through them, and test/unit/agent/http-client.test.ts fails if undici
// moves them or its entry point comes back into `agent run`.
import { createRequire } from 'node:module';
import type { Agent as UndiciAgent, Dispatcher } from 'undici';

const require = createRequire(import.meta.url);

export const Agent = require('undici/lib/dispatcher/agent.js') as typeof UndiciAgent;
export type Agent = UndiciAgent;

/** undici's request API: a method of whatever dispatcher it is called on. */
const dispatchRequest = require('undici/lib/api/api-request.js') as (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;

export type RequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & { method: Dispatcher.HttpMethod };

/** `options.method` on `url` through `dispatcher`, as undici's `request(url, { dispatcher, ... })` sends it. */
export function request(dispatcher: Dispatcher, url: URL, options: RequestOptions): Promise<Dispatcher.ResponseData> {
  return dispatchRequest.call(dispatcher, { ...options, origin: url.origin, path: `${url.pathname}${url.search}` });
}
