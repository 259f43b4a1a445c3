import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { CiAuditError, errorCodes, hasErrorCode } from '../../../core/errors.ts';

test('every error code is documented in docs/errors.md, and nothing stale is listed', async () => {
  const doc = await readFile(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const documented = new Set([...doc.matchAll(/^\| `(CIA_ERR_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]));
  const defined = new Set(Object.keys(errorCodes));
  for (const code of defined) assert.ok(documented.has(code), `${code} is missing from docs/errors.md`);
  for (const code of documented) assert.ok(defined.has(code as string), `${code} is in docs/errors.md but not in core/errors.ts`);
});

test('codes are grouped by area with the CIA_ERR_ prefix', () => {
  for (const code of Object.keys(errorCodes)) assert.match(code, /^CIA_ERR_[A-Z]+_[A-Z0-9_]+$/);
});

test('hasErrorCode tells ci-audit errors by code, without instanceof', () => {
  const err = new CiAuditError('CIA_ERR_CONFIG_INVALID', 'bad', { details: { file: 'x' } });
  assert.ok(hasErrorCode(err));
  assert.ok(hasErrorCode(err, 'CIA_ERR_CONFIG_INVALID'));
  assert.ok(!hasErrorCode(err, 'CIA_ERR_CONFIG_PARSE'));
  // A plain object with a known code (e.g. from another copy of the package) counts too.
  assert.ok(hasErrorCode({ code: 'CIA_ERR_ES_AUTH', message: 'x' }, 'CIA_ERR_ES_AUTH'));
  assert.ok(!hasErrorCode(Object.assign(new Error('x'), { code: 'ENOENT' })));
  assert.ok(!hasErrorCode(null));
});
