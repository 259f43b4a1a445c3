// The saved objects import against a real local HTTP server that reads the request as Kibana's
// import API does: multipart/form-data with the NDJSON in the part named `file`, `kbn-xsrf`,
// the Authorization header; it answers conflicts for objects it already has unless overwrite=true.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { hasErrorCode } from '../../../core/errors.ts';
import { importSavedObjects, savedObjectsFile } from '../../../admin/kibana/import.ts';

const ndjson = await readFile(savedObjectsFile, 'utf8');
const objectCount = ndjson.split('\n').filter((l) => l !== '').length;
const bin = fileURLToPath(new URL('../../../bin/ci-audit.js', import.meta.url));

interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  parts: Array<{ name: string; filename?: string; contentType?: string; body: string }>;
}

/** The parts of a multipart/form-data body (RFC 7578), read strictly: a malformed body throws. */
function parseMultipart(body: Buffer, contentType: string): Seen['parts'] {
  const m = /^multipart\/form-data;\s*boundary=("?)([^";]+)\1$/i.exec(contentType);
  if (m === null) throw new Error(`not multipart/form-data: ${contentType}`);
  const text = body.toString('utf8');
  const delimiter = `--${m[2]}`;
  assert.ok(text.startsWith(delimiter + '\r\n'), 'the body starts with the boundary');
  assert.ok(text.endsWith(`${delimiter}--\r\n`), 'the body ends with the closing boundary');
  const chunks = text.slice(delimiter.length + 2, text.length - delimiter.length - 4).split(`\r\n${delimiter}\r\n`);
  return chunks.map((chunk) => {
    const split = chunk.indexOf('\r\n\r\n');
    assert.ok(split > 0, 'each part has headers and a body');
    const headers = chunk.slice(0, split).split('\r\n');
    const partBody = chunk.slice(split + 4).replace(/\r\n$/, '');
    const disposition = headers.find((h) => /^content-disposition:/i.test(h)) ?? '';
    const name = /\bname="([^"]*)"/.exec(disposition)?.[1] ?? '';
    const filename = /\bfilename="([^"]*)"/.exec(disposition)?.[1];
    const type = headers.find((h) => /^content-type:/i.test(h))?.replace(/^content-type:\s*/i, '');
    return { name, body: partBody, ...(filename === undefined ? {} : { filename }), ...(type === undefined ? {} : { contentType: type }) };
  });
}

async function fakeKibana(options: { status?: number; answer?: (seen: Seen) => unknown } = {}): Promise<{ server: Server; url: string; requests: Seen[] }> {
  const requests: Seen[] = [];
  const stored = new Set<string>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const seen: Seen = { method: req.method ?? '', path: url.pathname, query: url.searchParams, headers: req.headers, parts: parseMultipart(Buffer.concat(chunks), req.headers['content-type'] ?? '') };
      requests.push(seen);
      res.setHeader('content-type', 'application/json');
      if (options.status !== undefined) {
        res.statusCode = options.status;
        res.end(JSON.stringify(options.answer?.(seen) ?? { statusCode: options.status, message: 'refused' }));
        return;
      }
      // As Kibana: objects it has are conflicts unless overwrite=true.
      const objects = (seen.parts.find((p) => p.name === 'file')?.body ?? '').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { id: string; type: string });
      const overwrite = seen.query.get('overwrite') === 'true';
      const conflicts = objects.filter((o) => stored.has(`${o.type}:${o.id}`) && !overwrite);
      for (const o of objects) stored.add(`${o.type}:${o.id}`);
      res.end(JSON.stringify({ success: conflicts.length === 0, successCount: objects.length - conflicts.length, ...(conflicts.length === 0 ? {} : { errors: conflicts.map((o) => ({ id: o.id, type: o.type, error: { type: 'conflict' } })) }) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

test('the import request is well formed, and importing twice is idempotent', async (t) => {
  const k = await fakeKibana();
  t.after(() => k.server.close());
  const first = await importSavedObjects({ url: `${k.url}/kibana/`, auth: { apiKey: 'a2V5OnNlY3JldA==' }, overwrite: false });
  assert.deepEqual(first, { imported: objectCount, unchanged: 0 });
  const req = k.requests[0]!;
  assert.equal(req.method, 'POST');
  assert.equal(req.path, '/kibana/api/saved_objects/_import', 'a base path of the URL is kept');
  assert.equal(req.query.get('overwrite'), 'false');
  assert.equal(req.headers['kbn-xsrf'], 'ci-audit');
  assert.equal(req.headers.authorization, 'ApiKey a2V5OnNlY3JldA==');
  assert.equal(req.parts.length, 1);
  assert.equal(req.parts[0]!.name, 'file');
  assert.match(req.parts[0]!.filename ?? '', /\.ndjson$/, 'Kibana requires a file name ending in .ndjson');
  assert.equal(req.parts[0]!.body, ndjson, 'the file part is the committed NDJSON, byte for byte');

  const second = await importSavedObjects({ url: k.url, auth: { apiKey: 'a2V5OnNlY3JldA==' }, overwrite: false });
  assert.deepEqual(second, { imported: 0, unchanged: objectCount }, 'existing objects are left alone');
  const third = await importSavedObjects({ url: k.url, auth: { apiKey: 'a2V5OnNlY3JldA==' }, overwrite: true });
  assert.deepEqual(third, { imported: objectCount, unchanged: 0 });
  assert.equal(k.requests[2]!.query.get('overwrite'), 'true');
});

test('basic auth from options or URL user info, spaces, and no credential in any error', async (t) => {
  const k = await fakeKibana({ status: 401 });
  t.after(() => k.server.close());
  const withUrl = k.url.replace('http://', 'http://kadmin:s3cr3t-pw@');
  await assert.rejects(importSavedObjects({ url: withUrl, overwrite: false, space: 'ops' }), (e: unknown) => {
    assert.ok(hasErrorCode(e, 'CIA_ERR_KIBANA_AUTH'));
    assert.ok(!e.message.includes('s3cr3t-pw') && !JSON.stringify(e.details).includes('s3cr3t-pw'));
    assert.ok(!e.message.includes('kadmin'));
    return true;
  });
  assert.equal(k.requests[0]!.headers.authorization, `Basic ${Buffer.from('kadmin:s3cr3t-pw').toString('base64')}`);
  assert.equal(k.requests[0]!.path, '/s/ops/api/saved_objects/_import');
  await assert.rejects(importSavedObjects({ url: k.url, overwrite: false, auth: { username: 'u', password: 'p' } }), /refused the credentials/);
  assert.equal(k.requests[1]!.headers.authorization, `Basic ${Buffer.from('u:p').toString('base64')}`);
  await assert.rejects(importSavedObjects({ url: k.url, overwrite: false, space: '../x' }), (e: unknown) => hasErrorCode(e, 'CIA_ERR_CLI_USAGE'));
});

test('objects Kibana refuses, other statuses and an unreachable Kibana are errors with codes', async (t) => {
  const refused = await fakeKibana({ status: 200, answer: () => ({ success: false, successCount: 0, errors: [{ id: 'ci-audit-search-failed-jobs', type: 'search', error: { type: 'missing_references' } }] }) });
  t.after(() => refused.server.close());
  await assert.rejects(importSavedObjects({ url: refused.url, overwrite: false }), (e: unknown) => hasErrorCode(e, 'CIA_ERR_KIBANA_IMPORT') && /search ci-audit-search-failed-jobs: missing_references/.test(e.message));
  const broken = await fakeKibana({ status: 415 });
  t.after(() => broken.server.close());
  await assert.rejects(importSavedObjects({ url: broken.url, overwrite: false }), (e: unknown) => hasErrorCode(e, 'CIA_ERR_KIBANA_IMPORT') && /HTTP 415/.test(e.message));
  // A port nobody listens on: the closed server's.
  const gone = await fakeKibana();
  await new Promise((r) => gone.server.close(r));
  await assert.rejects(importSavedObjects({ url: gone.url.replace('http://', 'http://u:pw-not-shown@'), overwrite: false }), (e: unknown) => {
    assert.ok(hasErrorCode(e, 'CIA_ERR_KIBANA_UNAVAILABLE'));
    assert.ok(!e.message.includes('pw-not-shown'));
    assert.ok(e.message.includes(gone.url));
    return true;
  });
});

test('`ci-audit setup --kibana <url> --kibana-only` imports as a real command, key from the environment', async (t) => {
  const k = await fakeKibana();
  t.after(() => k.server.close());
  const run = async (): Promise<{ code: number | null; stdout: string; stderr: string }> => {
    const child = spawn(process.execPath, [bin, 'setup', '--kibana', k.url, '--kibana-only'], { env: { ...process.env, KIBANA_API_KEY: 'env-key-value' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    return { code, stdout, stderr };
  };
  const first = await run();
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, new RegExp(`${objectCount} saved object\\(s\\) imported, 0 already present`));
  const again = await run();
  assert.match(again.stdout, new RegExp(`0 saved object\\(s\\) imported, ${objectCount} already present`));
  assert.equal(k.requests[0]!.headers.authorization, 'ApiKey env-key-value');
  assert.ok(!(first.stdout + first.stderr + again.stdout + again.stderr).includes('env-key-value'), 'the key is never printed');
});
