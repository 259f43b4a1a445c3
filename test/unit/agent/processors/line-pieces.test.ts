import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { LoggerProvider, type LogRecordProcessor, type ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import { StaticLabelsProcessor } from '../../../../agent/processors/enrich/static-labels-processor.ts';
import { LinePieces, linePieceKeys } from '../../../../agent/processors/line-pieces.ts';
import { ParseProcessor } from '../../../../agent/processors/parse-processor.ts';
import { createRedactor, customRule } from '../../../../agent/processors/redaction/redact.ts';
import { RedactionProcessor } from '../../../../agent/processors/redaction-processor.ts';
import { timeZoneResolver } from '../../../../agent/processors/syslog/time.ts';

const authLines = ['debian-ubuntu.log', 'rhel-rocky.log', 'alpine-busybox.log'].flatMap((f) =>
  readFileSync(new URL(`../../../fixtures/auth/${f}`, import.meta.url), 'utf8').split('\n').filter((l) => l !== ''),
);
const ciLines = ['github-runner-diag.log', 'gitlab-runner.log', 'jenkins-build.log', 'buildkite-agent.log'].flatMap((f) =>
  readFileSync(new URL(`../../../fixtures/ci/${f}`, import.meta.url), 'utf8').split('\n').filter((l) => l !== ''),
);

/** Runs `bodies` through `processors` and a collector; returns what leaves the chain. */
function emit(processors: LogRecordProcessor[], bodies: readonly string[]): ReadWriteLogRecord[] {
  const seen: ReadWriteLogRecord[] = [];
  const collect: LogRecordProcessor = { onEmit: (r) => void seen.push(r), forceFlush: async () => {}, shutdown: async () => {} };
  const logger = new LoggerProvider({ processors: [...processors, collect] }).getLogger('test');
  for (const body of bodies) logger.emit({ body, attributes: { 'ci_audit.dataset': 'auth', 'log.file.path': '/var/log/auth.log' } });
  return seen;
}

/** parse -> `between` -> redact, the two sharing `pieces` when it is given. */
function chain(pieces: LinePieces | undefined, between: LogRecordProcessor[] = [], custom = createRedactor()): LogRecordProcessor[] {
  return [new ParseProcessor({ zone: timeZoneResolver('UTC'), ...(pieces === undefined ? {} : { pieces }) }), ...between, new RedactionProcessor(custom, pieces)];
}

test('every field recorded as a piece of an auth line is in the record under its key, and in the line', () => {
  const pieces = new LinePieces();
  const seen = new Set<string>();
  // Besides the fixtures: a source that is a host name, not an IP (source.address).
  const lines = [...authLines, 'Mar  4 09:15:02 ci-runner-07 sshd[40211]: Failed password for root from gw.example.net port 50122 ssh2'];
  const inspect: LogRecordProcessor = {
    onEmit: (record) => {
      if (pieces.attributes !== record.attributes) return;
      const body = record.body as string;
      assert.equal(pieces.body, body);
      pieces.values.forEach((piece, i) => {
        if (piece === undefined) return;
        const key = linePieceKeys[i] ?? '';
        const value = record.attributes[key];
        assert.ok(value === piece || (Array.isArray(value) && value.length === 1 && value[0] === piece), `${key}: ${String(value)} is not ${piece}`);
        assert.ok(body.includes(piece), `${key}: ${piece} is not in ${body}`);
        seen.add(key);
      });
    },
    forceFlush: async () => {},
    shutdown: async () => {},
  };
  const records = emit([...chain(pieces), inspect].filter((p) => !(p instanceof RedactionProcessor)), lines);
  assert.equal(records.length, lines.length);
  // Each key of the table comes up at least once, so each index is exercised.
  assert.deepEqual(linePieceKeys.filter((k) => !seen.has(k)), []);
});

test('records come out the same with and without the pieces: fixtures, secrets placed in them, mutations', () => {
  const secrets = ['ghp_R4nd0mT0k3nV4lu3F0rT3st1ng0000000001', 'password=hunter2', 'AKIAZ7QW3RT5YU8IOP2L', 'Bearer abc.def.ghi', 'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx', '-----BEGIN RSA PRIVATE KEY-----'];
  const bodies: string[] = [...authLines, ...ciLines];
  let seed = 7;
  const random = (): number => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  for (const line of authLines) {
    for (const secret of secrets) {
      // In a word of the message (a user name, a command, a path) and at the line's end.
      const words = line.split(' ');
      const at = 5 + Math.floor(random() * Math.max(1, words.length - 5));
      bodies.push([...words.slice(0, at), secret, ...words.slice(at + 1)].join(' '), `${line} ${secret}`);
    }
  }
  bodies.push('-----END RSA PRIVATE KEY-----', ...authLines.slice(0, 5));
  // Not the time: a line without a stamp takes the time it was read.
  const strip = (r: ReadWriteLogRecord) => ({ body: r.body, attributes: r.attributes });
  const labels = () => [new StaticLabelsProcessor({ team: 'platform' })];
  const without = emit(chain(undefined, labels()), bodies).map(strip);
  const withPieces = emit(chain(new LinePieces(), labels()), bodies).map(strip);
  assert.equal(withPieces.length, bodies.length);
  for (let i = 0; i < bodies.length; i++) assert.deepEqual(withPieces[i], without[i], bodies[i]);
  // The secrets a rule redacts whole were redacted from every field.
  const whole = secrets.filter((s) => !createRedactor().redact(s).text.includes(s));
  assert.ok(whole.length >= 4);
  for (const r of withPieces) for (const s of whole) assert.ok(!JSON.stringify(r).includes(s), JSON.stringify(r));
});

test('a field a processor replaced after parsing is checked on its own, strings and arrays changed in place', () => {
  const secret = 'ghp_R4nd0mT0k3nV4lu3F0rT3st1ng0000000001';
  const replace: LogRecordProcessor = {
    onEmit: (record) => {
      record.attributes['user.name'] = 'password=hunter2';
      (record.attributes['related.hosts'] as string[])[0] = secret;
    },
    forceFlush: async () => {},
    shutdown: async () => {},
  };
  const line = authLines.find((l) => l.includes('Accepted publickey')) ?? '';
  const [record] = emit(chain(new LinePieces(), [replace]), [line]);
  assert.equal(record?.body, line);
  assert.equal(record?.attributes['user.name'], 'password=[REDACTED:secret_pair]');
  assert.deepEqual(record?.attributes['related.hosts'], ['[REDACTED:github_token]']);
  assert.deepEqual(record?.attributes['ci_audit.redacted.rules'], ['secret_pair', 'github_token']);
});

test('custom rules see every field: the pieces are skipped only under the built-in rules', () => {
  const line = authLines.find((l) => l.includes('Accepted publickey')) ?? '';
  const user = /for (\S+) from/.exec(line)?.[1] ?? '';
  assert.notEqual(user, '');
  const redactor = createRedactor([customRule('user_names', user)]);
  const [record] = emit(chain(new LinePieces(), [], redactor), [line]);
  assert.equal(record?.attributes['user.name'], '[REDACTED:user_names]');
  assert.deepEqual(record?.attributes['related.user'], ['[REDACTED:user_names]']);
  assert.ok(!String(record?.body).includes(user));
});
