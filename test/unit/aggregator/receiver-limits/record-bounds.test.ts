import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DecodedLogRecord } from '../../../../aggregator/log-record.ts';
import { checkRecordBounds } from '../../../../aggregator/limits/record-bounds.ts';
import { decodeProtobufLogs } from '../../../../aggregator/receiver/otlp-decode.ts';
import { emitRecords, protobufBody } from '../otlp-fixtures.ts';

const bounds = { maxAttributes: 50, maxValueBytes: 1024 };

async function decoded(options: Parameters<typeof emitRecords>[0]): Promise<DecodedLogRecord[]> {
  return decodeProtobufLogs(protobufBody(await emitRecords(options)));
}

void test('ordinary records are within bounds', async () => {
  const records = await decoded({ resource: { 'host.name': 'h' }, records: [{ body: 'line', attributes: { 'log.file.path': '/x', n: 1 } }] });
  assert.equal(checkRecordBounds(records, bounds), undefined);
});

void test('too many attributes (resource, scope and record counted together) name the record and the option', async () => {
  const attributes: Record<string, string> = {};
  for (let i = 0; i < 40; i++) attributes[`a${i}`] = 'v';
  const resource: Record<string, string> = {};
  for (let i = 0; i < 20; i++) resource[`r${i}`] = 'v';
  const records = await decoded({ resource, records: [{ body: 'ok' }, { body: 'x', attributes }] });
  assert.match(checkRecordBounds(records, bounds) ?? '', /^record 1: 6\d attributes .* exceed limits\.max_attributes_per_record \(50\)$/);
});

void test('a value larger than max_attribute_value_bytes is named, in attributes, nested lists and the body', async () => {
  const big = 'é'.repeat(600); // 1200 bytes in UTF-8, 600 characters
  const inAttr = await decoded({ resource: {}, records: [{ body: 'x', attributes: { huge: big } }] });
  assert.match(checkRecordBounds(inAttr, bounds) ?? '', /^record 0: record attribute "huge" is a string of 1200 bytes, beyond limits\.max_attribute_value_bytes \(1024\)$/);
  const inList = await decoded({ resource: {}, records: [{ body: 'x', attributes: { list: ['a', big] } }] });
  assert.match(checkRecordBounds(inList, bounds) ?? '', /"list" \(array element\) is a string of 1200 bytes/);
  const inBody = await decoded({ resource: {}, records: [{ body: big }] });
  assert.match(checkRecordBounds(inBody, bounds) ?? '', /^record 0: body is a string of 1200 bytes/);
});
