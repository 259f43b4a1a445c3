import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redactUrl } from '../../../core/secrets.ts';

test('redactUrl removes passwords and keeps the rest', () => {
  assert.equal(redactUrl('http://elastic:hunter2@127.0.0.1:9200/'), 'http://elastic:***@127.0.0.1:9200/');
  assert.equal(redactUrl('https://token@es.example/x'), 'https://***@es.example/x');
  assert.equal(redactUrl('http://127.0.0.1:9200'), 'http://127.0.0.1:9200/');
});

test('redactUrl never echoes a string that is not a URL', () => {
  assert.equal(redactUrl('hunter2'), '<invalid url>');
});
