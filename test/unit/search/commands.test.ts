// Every option of the search commands is checked before anything is sent: a typo fails at once
// with CIA_ERR_CLI_USAGE naming the option, even with no cluster at the configured URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasErrorCode } from '../../../core/errors.ts';
import { runSearchCommand, searchSpec } from '../../../admin/search/commands.ts';

const out = { write: () => assert.fail('nothing is printed'), isTTY: false };

test('bad options are refused before connecting, naming the option', async () => {
  const cases: Array<[Record<string, string | boolean>, RegExp]> = [
    [{ output: 'xml' }, /--output "xml" is not one of table, jsonl, csv/],
    [{ size: '0' }, /--size "0"/],
    [{ pageSize: '20000' }, /--page-size "20000"/],
    [{ since: '5y' }, /--since "5y"/],
    [{ follow: true, to: '2026-03-01' }, /cannot be combined with --to/],
    [{ interval: 'soon', follow: true }, /--interval "soon"/],
    [{ dataset: 'Auth' }, /--dataset "Auth"/],
  ];
  for (const [options, message] of cases) {
    await assert.rejects(runSearchCommand(searchSpec('x', undefined), options, out), (e: unknown) => hasErrorCode(e, 'CIA_ERR_CLI_USAGE') && message.test(e.message), JSON.stringify(options));
  }
});
