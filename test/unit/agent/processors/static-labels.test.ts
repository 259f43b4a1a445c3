import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { LoggerProvider, type LogRecordProcessor, type ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import { StaticLabelsProcessor } from '../../../../agent/processors/enrich/static-labels-processor.ts';

function emitThrough(labels: Record<string, string>): ReadWriteLogRecord | undefined {
  let seen: ReadWriteLogRecord | undefined;
  const collect: LogRecordProcessor = { onEmit: (r) => void (seen = r), forceFlush: async () => {}, shutdown: async () => {} };
  const logger = new LoggerProvider({ processors: [new StaticLabelsProcessor(labels), collect] }).getLogger('test');
  logger.emit({ body: 'line', attributes: { 'log.file.path': '/var/log/auth.log', 'labels.team': 'from the source' } });
  return seen;
}

test('every configured label lands on the record as labels.<key>, over a value the source set', () => {
  const record = emitThrough({ team: 'platform', env: 'prod', zone_2: '' });
  assert.equal(record?.attributes['labels.team'], 'platform');
  assert.equal(record?.attributes['labels.env'], 'prod');
  assert.equal(record?.attributes['labels.zone_2'], '');
  assert.equal(record?.attributes['log.file.path'], '/var/log/auth.log');
});

test('keys and values are data, never code: quotes, backslashes and line breaks are written as they are', () => {
  const key = 'x"]; globalThis.injected = 1; //\\\n\u2028';
  const value = '"); globalThis.injected = 2; ("';
  const record = emitThrough({ [key]: value });
  assert.equal(record?.attributes[`labels.${key}`], value);
  assert.equal((globalThis as { injected?: number }).injected, undefined);
});

test('with code generation from strings disallowed, the labels are still written', async () => {
  const processor = fileURLToPath(new URL('../../../../agent/processors/enrich/static-labels-processor.ts', import.meta.url));
  const script = `
    const { StaticLabelsProcessor } = await import(${JSON.stringify(processor)});
    const record = { attributes: { 'log.file.path': '/x' } };
    new StaticLabelsProcessor({ team: 'platform', env: 'prod' }).onEmit(record);
    let generated = true;
    try { new Function('return 1'); } catch { generated = false; }
    process.stdout.write(JSON.stringify({ attributes: record.attributes, generated }));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--disallow-code-generation-from-strings', '--input-type=module', '--eval', script]);
  const out = JSON.parse(stdout) as { attributes: Record<string, string>; generated: boolean };
  assert.equal(out.generated, false, 'the flag took effect');
  assert.deepEqual(out.attributes, { 'log.file.path': '/x', 'labels.team': 'platform', 'labels.env': 'prod' });
});
