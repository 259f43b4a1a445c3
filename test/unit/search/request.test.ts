import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasErrorCode } from '../../../core/errors.ts';
import { buildQuery, indexPattern, parseDuration, parseInstant, repositoryFilter, timeRange } from '../../../admin/search/request.ts';
import { conditionsToFilters, conditionsToKql, savedQueries } from '../../../admin/search/queries.ts';
import { advanceFollow } from '../../../admin/search/search.ts';
import { loginsSpec, runsSpec, searchSpec, whoSpec } from '../../../admin/search/commands.ts';

const now = new Date('2026-03-05T12:00:00.000Z');

test('durations: every unit, and a bad one names the option and the value', () => {
  assert.equal(parseDuration('90s', '--since'), 90_000);
  assert.equal(parseDuration('15m', '--since'), 900_000);
  assert.equal(parseDuration('24h', '--since'), 86_400_000);
  assert.equal(parseDuration('1d', '--since'), 86_400_000);
  assert.equal(parseDuration('2w', '--since'), 14 * 86_400_000);
  for (const bad of ['3x', '0h', '', 'h', '-1d', '1.5h']) {
    assert.throws(() => parseDuration(bad, '--since'), (e: unknown) => hasErrorCode(e, 'CIA_ERR_CLI_USAGE') && e.message.includes('--since') && e.message.includes(JSON.stringify(bad)));
  }
});

test('time ranges from --since, --from/--to; contradictions are refused', () => {
  assert.deepEqual(timeRange({ since: '24h' }, now), { gte: '2026-03-04T12:00:00.000Z' });
  assert.deepEqual(timeRange({ from: '2026-03-01', to: '2026-03-02T10:00:00+01:00' }, now), { gte: '2026-03-01T00:00:00.000Z', lte: '2026-03-02T09:00:00.000Z' });
  assert.deepEqual(timeRange({ from: '2h' }, now), { gte: '2026-03-05T10:00:00.000Z' });
  assert.deepEqual(timeRange({}, now), {});
  assert.throws(() => timeRange({ since: '1d', from: '2026-03-01' }, now), /either --since or --from/);
  assert.throws(() => timeRange({ from: '2026-03-03', to: '2026-03-02' }, now), /time range is empty/);
  assert.throws(() => parseInstant('yesterday', '--from', now), (e: unknown) => hasErrorCode(e, 'CIA_ERR_CLI_USAGE') && /--from "yesterday"/.test(e.message));
  assert.throws(() => parseInstant('2026-13-45', '--to', now), /--to/);
});

test('index patterns and names', () => {
  assert.equal(indexPattern(undefined, undefined), 'logs-ci_audit.*-*');
  assert.equal(indexPattern('auth', 'prod'), 'logs-ci_audit.auth-prod');
  assert.throws(() => indexPattern('auth,secret-*', undefined), /--dataset/);
  assert.throws(() => indexPattern(undefined, 'A'), /--namespace/);
});

test('queries: text as query_string on message, conditions and the range as filters', () => {
  const q = buildQuery({ text: 'user.name:alice AND sshd', conditions: [{ field: 'event.outcome', values: ['failure'] }], range: { gte: '2026-03-04T12:00:00.000Z' } });
  assert.deepEqual(q, {
    bool: {
      filter: [{ term: { 'event.outcome': 'failure' } }, { range: { '@timestamp': { gte: '2026-03-04T12:00:00.000Z' } } }],
      must: [{ query_string: { query: 'user.name:alice AND sshd', default_field: 'message', default_operator: 'AND' } }],
    },
  });
  assert.deepEqual(buildQuery({ text: '*', range: {} }), { bool: { filter: [], must: [] } });
});

test('saved queries: filters and KQL come from the same conditions', () => {
  const failed = savedQueries.find((q) => q.id === 'failed-ssh-logins')!;
  assert.deepEqual(conditionsToFilters(failed.conditions), [{ terms: { 'event.action': ['ssh_login', 'ssh_too_many_auth_failures'] } }, { term: { 'event.outcome': 'failure' } }]);
  assert.equal(conditionsToKql(failed.conditions), 'event.action: ("ssh_login" or "ssh_too_many_auth_failures") and event.outcome: "failure"');
  assert.equal(conditionsToKql([{ field: 'ci_audit.verified', values: [false] }]), 'ci_audit.verified: false');
  assert.equal(conditionsToKql([{ field: 'message', values: ['say "hi" \\ bye'] }]), 'message: "say \\"hi\\" \\\\ bye"');
  assert.equal(new Set(savedQueries.map((q) => q.id)).size, savedQueries.length, 'ids are unique');
});

test('shortcuts', () => {
  assert.equal(loginsSpec(true, undefined).saved?.id, 'failed-ssh-logins');
  assert.equal(loginsSpec(false, 'alice').saved?.id, 'successful-logins');
  assert.equal(loginsSpec(false, 'alice').filters?.length, 1);
  assert.deepEqual(runsSpec('org/app', undefined).filters, [{ wildcard: { 'vcs.repository.url.full': { value: '*/org/app', case_insensitive: true } } }]);
  assert.deepEqual(repositoryFilter('https://github.com/org/app.git'), { wildcard: { 'vcs.repository.url.full': { value: '*/org/app', case_insensitive: true } } });
  assert.throws(() => repositoryFilter('org/*'), /--repo/);
  assert.deepEqual(whoSpec('alice').filters, [{ bool: { should: [{ term: { 'user.name': 'alice' } }, { term: { 'user.effective.name': 'alice' } }, { term: { 'related.user': 'alice' } }], minimum_should_match: 1 } }]);
  assert.throws(() => searchSpec(undefined, 'nope'), /--saved "nope" is not a saved query; known: failed-ssh-logins/);
});

test('follow: only documents not seen, across equal timestamps', () => {
  const hit = (id: string, ts: string) => ({ _index: 'i', _id: id, _source: { '@timestamp': ts } });
  const first = advanceFollow({ newest: undefined, idsAtNewest: new Set() }, [hit('a', '2026-01-01T00:00:01Z'), hit('b', '2026-01-01T00:00:02Z')]);
  assert.deepEqual(first.fresh.map((h) => h._id), ['a', 'b']);
  // The next poll starts at the newest instant: b again, c at the same instant, d later.
  const second = advanceFollow(first.state, [hit('b', '2026-01-01T00:00:02Z'), hit('c', '2026-01-01T00:00:02Z'), hit('d', '2026-01-01T00:00:03Z')]);
  assert.deepEqual(second.fresh.map((h) => h._id), ['c', 'd']);
  assert.deepEqual(advanceFollow(second.state, [hit('d', '2026-01-01T00:00:03Z')]).fresh, []);
});
