import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { LoggerProvider, type LogRecordProcessor, type ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import { createRedactor, customRule } from '../../../../agent/processors/redaction/redact.ts';
import { RedactionProcessor } from '../../../../agent/processors/redaction-processor.ts';
import { mayHoldBuiltinSecret } from '../../../../agent/processors/redaction/prefilter.ts';
import { builtinRules } from '../../../../agent/processors/redaction/rules.ts';
import { ParseProcessor } from '../../../../agent/processors/parse-processor.ts';
import { LinePieces } from '../../../../agent/processors/line-pieces.ts';
import { timeZoneResolver } from '../../../../agent/processors/syslog/time.ts';

// Secret shapes written for this test (none is a live credential). `secret` must vanish; `rule` must fire.
const a40 = 'Qm9vZ2x5V29vZ2x5MTIzNDU2Nzg5MGFiY2RlZmdo';
const corpus: { line: string; secret: string; rule: string }[] = [
  { line: 'using key AKIAZ7QW3RT5YU8IOP2L for upload', secret: 'AKIAZ7QW3RT5YU8IOP2L', rule: 'aws_access_key_id' },
  { line: 'session ASIAQWERTYUIOPASDFGH expires', secret: 'ASIAQWERTYUIOPASDFGH', rule: 'aws_access_key_id' },
  { line: `aws_secret_access_key = ${a40}`, secret: a40, rule: 'aws_secret_access_key' },
  { line: `AWS_SECRET_ACCESS_KEY="${a40}"`, secret: a40, rule: 'aws_secret_access_key' },
  { line: '{"aws_secret_key": "zXcVbNmAsDfGhJkLqWeRtYuIoP1234567890+/ab"}', secret: 'zXcVbNmAsDfGhJkLqWeRtYuIoP1234567890+/ab', rule: 'aws_secret_access_key' },
  { line: 'maps key=AIzaSyD4kLm9Qp2Rx7Tw1Vb8Nc3Hj6Gf5Ds0Ae9', secret: 'AIzaSyD4kLm9Qp2Rx7Tw1Vb8Nc3Hj6Gf5Ds0Ae9', rule: 'gcp_api_key' },
  { line: 'Authorization header had ya29.a0AfB_byC1d2E3f4G5h6I7j8K9l0M', secret: 'ya29.a0AfB_byC1d2E3f4G5h6I7j8K9l0M', rule: 'gcp_oauth_token' },
  { line: '"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----\\n"', secret: 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC', rule: 'private_key' },
  { line: 'DefaultEndpointsProtocol=https;AccountName=ciaudit;AccountKey=k3J9sL2mN8pQ4rT6vX1zB5cD7fG0hJ3kL9mN2pQ4rT6vX1zB5cD7fG0hJ3kL9mN2pQ4rT6vX1zB5cD7fG0hJ3==;EndpointSuffix=core.windows.net', secret: 'k3J9sL2mN8pQ4rT6vX1zB5cD7fG0hJ3kL9mN2pQ4', rule: 'azure_storage_key' },
  { line: 'GET https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sp=r&sig=Zx9%2BYw8Vu7Ts6Rq5Po4Nm3Lk2Ji1%3D', secret: 'Zx9%2BYw8Vu7Ts6Rq5Po4Nm3Lk2Ji1%3D', rule: 'azure_sas_signature' },
  { line: 'client secret is Ab18Q~xYz0123456789abcdefghijKLMNOPqrs', secret: 'Ab18Q~xYz0123456789abcdefghijKLMNOPqrs', rule: 'azure_client_secret' },
  { line: 'git push https://ghp_R4nd0mT0k3nV4lu3F0rT3st1ng0000000001@github.com/o/r', secret: 'ghp_R4nd0mT0k3nV4lu3F0rT3st1ng0000000001', rule: 'github_token' },
  { line: 'GITHUB_TOKEN ghs_S3rv3rT0k3nF0rT3st1ngPurp0s3s00000002 used', secret: 'ghs_S3rv3rT0k3nF0rT3st1ngPurp0s3s00000002', rule: 'github_token' },
  { line: 'oauth gho_0Auth0T0k3nF0rT3st1ngPurp0s3s0000000003', secret: 'gho_0Auth0T0k3nF0rT3st1ngPurp0s3s0000000003', rule: 'github_token' },
  { line: 'fine-grained github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX', secret: 'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX', rule: 'github_token' },
  { line: 'export CI_TOKEN glpat-Xy12Zw34Ab56Cd78Ef90', secret: 'glpat-Xy12Zw34Ab56Cd78Ef90', rule: 'gitlab_token' },
  { line: 'runner token glrt-t1_AbCdEfGhIjKlMnOpQrStUv', secret: 'glrt-t1_AbCdEfGhIjKlMnOpQrStUv', rule: 'gitlab_token' },
  { line: 'registration GR1348941aBcDeFgHiJkLmNoPqRsTu', secret: 'GR1348941aBcDeFgHiJkLmNoPqRsTu', rule: 'gitlab_token' },
  { line: 'deploy token gldt-QwErTyUiOpAsDfGhJkLz', secret: 'gldt-QwErTyUiOpAsDfGhJkLz', rule: 'gitlab_token' },
  { line: 'NPM npm_aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5 set', secret: 'npm_aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5', rule: 'npm_token' },
  { line: '//registry.npmjs.org/:_authToken=00000000-aaaa-bbbb-cccc-111111111111', secret: '00000000-aaaa-bbbb-cccc-111111111111', rule: 'npm_auth_token' },
  { line: 'slack xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx', secret: 'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx', rule: 'slack_token' },
  { line: 'user token xoxp-1111-2222-3333-abcdefabcdef', secret: 'xoxp-1111-2222-3333-abcdefabcdef', rule: 'slack_token' },
  { line: 'POST https://hooks.slack.com/services/T0ABCDEF1/B0GHIJKL2/XyZ123abc456DEF789ghi012', secret: 'XyZ123abc456DEF789ghi012', rule: 'slack_webhook' },
  { line: 'id_token=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjaS1hdWRpdCJ9.c2lnbmF0dXJlLXBhcnQtaGVyZQ', secret: 'eyJzdWIiOiJjaS1hdWRpdCJ9', rule: 'jwt' },
  { line: 'ACTIONS_ID_TOKEN eyJ0eXAiOiJKV1QifQ.eyJpc3MiOiJnaXRodWIifQ.AbCdEfGhIjKlMnOp', secret: 'eyJpc3MiOiJnaXRodWIifQ', rule: 'jwt' },
  { line: '-----BEGIN RSA PRIVATE KEY----- MIIEowIBAAKCAQEAx1y2z3 -----END RSA PRIVATE KEY-----', secret: 'MIIEowIBAAKCAQEAx1y2z3', rule: 'private_key' },
  { line: '-----BEGIN OPENSSH PRIVATE KEY-----b3BlbnNzaC1rZXktdjEAAAA', secret: 'b3BlbnNzaC1rZXktdjEAAAA', rule: 'private_key' },
  { line: '-----BEGIN PGP PRIVATE KEY BLOCK----- lQOYBF0Fake -----END PGP PRIVATE KEY BLOCK-----', secret: 'lQOYBF0Fake', rule: 'private_key' },
  { line: 'connecting to postgres://app:S3cr3tPa55@db.internal:5432/app', secret: 'S3cr3tPa55', rule: 'url_password' },
  { line: 'cloning https://x-access-token:tok_abc123XYZ@git.example.com/o/r.git', secret: 'tok_abc123XYZ', rule: 'url_password' },
  { line: 'amqp://guest:hunter2hunter2@mq:5672', secret: 'hunter2hunter2', rule: 'url_password' },
  { line: 'curl -H "Authorization: Bearer mF_9.B5f-4.1JqM" https://api', secret: 'mF_9.B5f-4.1JqM', rule: 'authorization_header' },
  { line: 'Authorization: Basic Y2k6YXVkaXQtcGFzc3dvcmQ=', secret: 'Y2k6YXVkaXQtcGFzc3dvcmQ=', rule: 'authorization_header' },
  { line: 'proxy-authorization: token 9f8e7d6c5b4a', secret: '9f8e7d6c5b4a', rule: 'authorization_header' },
  { line: 'curl -fsS -u deploy:Wh1te-R4bbit https://artifacts.example.com/upload', secret: 'Wh1te-R4bbit', rule: 'cli_user_password' },
  { line: 'wget --user=ci:Gr33n-Eggs-and --quiet https://mirror.example.com/pkg', secret: 'Gr33n-Eggs-and', rule: 'cli_user_password' },
  { line: 'sent bearer Zm9vYmFyYmF6cXV4MTIz to the API', secret: 'Zm9vYmFyYmF6cXV4MTIz', rule: 'bearer_token' },
  { line: 'mysql --user=ci --password=Pl41nT3xt!', secret: 'Pl41nT3xt!', rule: 'secret_pair' },
  { line: 'DB_PASSWORD=correct-horse-battery', secret: 'correct-horse-battery', rule: 'secret_pair' },
  { line: '{"client_secret": "s3cr3t-v4lue-xyz"}', secret: 's3cr3t-v4lue-xyz', rule: 'secret_pair' },
  { line: 'api_key: 5f4dcc3b5aa765d61d8327deb882cf99', secret: '5f4dcc3b5aa765d61d8327deb882cf99', rule: 'secret_pair' },
  { line: 'login token=abc.def.ghi&next=/home', secret: 'abc.def.ghi', rule: 'secret_pair' },
  { line: "secret='single quoted value'", secret: 'single quoted value', rule: 'secret_pair' },
  { line: 'passphrase: my long passphrase', secret: 'my', rule: 'secret_pair' },
  { line: 'STRIPE sk_live_4eC39HqLyjWDarjtT1zdp7dc used', secret: 'sk_live_4eC39HqLyjWDarjtT1zdp7dc', rule: 'stripe_key' },
  { line: 'SENDGRID 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', secret: 'TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc-1s5cr', rule: 'sendgrid_key' },
  // Compact JSON and `key:value`, key names ending in a secret word, quotes and escapes.
  { line: '{"password":"hunter2-Secret"}', secret: 'hunter2-Secret', rule: 'secret_pair' },
  { line: '{"user":"ci","client_secret":"s3cr3t-v4lue"}', secret: 's3cr3t-v4lue', rule: 'secret_pair' },
  { line: 'token:ab12cd34ef56', secret: 'ab12cd34ef56', rule: 'secret_pair' },
  { line: 'SECRET_KEY=django-insecure-9x8y7z', secret: 'django-insecure-9x8y7z', rule: 'secret_pair' },
  { line: '{"password": "ab\\"cd efgh"}', secret: 'efgh', rule: 'secret_pair' },
  { line: "export PASSWORD='abc'def123", secret: 'def123', rule: 'secret_pair' },
  { line: 'log {\\"api_key\\":\\"k3y-v4lue-01\\"}', secret: 'k3y-v4lue-01', rule: 'secret_pair' },
  { line: 'DB_PASSWORD="unterminated-s3cret', secret: 'unterminated-s3cret', rule: 'secret_pair' },
  { line: 'aws configure set aws_secret_access_key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', secret: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', rule: 'aws_secret_access_key' },
  // Passwords on command lines.
  { line: 'mysql -u root -pS3cretPw db', secret: 'S3cretPw', rule: 'cli_password' },
  { line: 'mysqldump -h db -u root -p\'S3cret Pw\' app', secret: 'S3cret Pw', rule: 'cli_password' },
  { line: 'mysql -u root --password S3cretPw db', secret: 'S3cretPw', rule: 'cli_password' },
  { line: 'docker login -u ci -p S3cretPw registry.example.com', secret: 'S3cretPw', rule: 'cli_password' },
  { line: 'openssl enc -aes-256-cbc -pass pass:Op3nSsl-pw -in x', secret: 'Op3nSsl-pw', rule: 'cli_password' },
  // URL passwords holding `@`, `:` and `/`: up to the last `@` before the host.
  { line: 'postgres://app:p@ss:w0rd@db.internal/app', secret: 'w0rd', rule: 'url_password' },
  { line: 'connect postgres://app:pa/ss9word@db.internal/app now', secret: 'ss9word', rule: 'url_password' },
  { line: 'https://bob@example.com:hunter2@host/x', secret: 'hunter2', rule: 'url_password' },
  { line: ":password => 'hunter2'", secret: 'hunter2', rule: 'secret_pair' },
];

test(`a corpus of ${corpus.length} secret shapes: zero leaks, each marker names its rule`, () => {
  assert.ok(corpus.length >= 40);
  for (const r of builtinRules) assert.ok(corpus.some((c) => c.rule === r.name), `no corpus line for ${r.name}`);
  const redactor = createRedactor();
  for (const { line, secret, rule } of corpus) {
    const { text, rules } = redactor.redact(line);
    assert.ok(!text.includes(secret), `leak of ${rule}: ${text}`);
    assert.ok(text.includes(`[REDACTED:${rule}]`), `marker of ${rule} in: ${text}`);
    assert.ok(rules.includes(rule), `rules fired for ${rule}: ${rules.join(',')}`);
  }
});

test('ordinary auth and CI lines come through unchanged', () => {
  const redactor = createRedactor();
  const files = ['auth/debian-ubuntu.log', 'auth/rhel-rocky.log', 'auth/alpine-busybox.log', 'ci/github-runner-diag.log', 'ci/gitlab-runner.log', 'ci/jenkins-build.log', 'ci/buildkite-agent.log'];
  const lines = files.flatMap((f) => readFileSync(new URL(`../../../fixtures/${f}`, import.meta.url), 'utf8').split('\n').filter((l) => l !== ''));
  lines.push('npm install --no-audit', 'Running tests: 412 passed, 0 failed', 'Keyboard-interactive authentication enabled', 'token bucket refilled', 'the password policy requires 12 characters');
  for (const line of lines) {
    assert.deepEqual(redactor.redact(line), { text: line, rules: [] }, line);
    // The prefilter alone settles them: no rule runs on an ordinary line.
    assert.equal(mayHoldBuiltinSecret(line), false, line);
  }
});

test('a URL password is cut at the user info: an @ in the path or query leaves the host alone', () => {
  const redactor = createRedactor();
  assert.equal(redactor.redact('https://alice:pw@git.example.com/profile?email=bob@example.com').text, 'https://alice:[REDACTED:url_password]@git.example.com/profile?email=bob@example.com');
  assert.equal(redactor.redact('https://user:pw@host/a/b@c').text, 'https://user:[REDACTED:url_password]@host/a/b@c');
});

test('look-alikes of the secret formats come through unchanged', () => {
  const redactor = createRedactor();
  for (const line of [
    'pam_unix(passwd:chauthtok): password changed for svc_deploy',
    'mkdir -p /srv/build && ssh -p 2222 deploy@host',
    'patch -p1 < fix.diff; gcc -pthread -pedantic -o x x.c',
    'find . -path ./node_modules -prune -o -print0',
    'mysql -u root -p appdb',
    'docker login --password-stdin -u ci registry.example.com',
    'skopeo copy docker://registry.example.com:5000/app@sha256:0123abcd docker://mirror/app',
    'public_key=AAAAC3NzaC1lZDI1NTE5 sort_key=created_at primary_key: id',
    'passwd:         files systemd',
    'login to bastion then ssh -p 2222 deploy@bastion',
    'login-api: git log -p HEAD~1',
    'tests/login_test.go: go test -p 4 ./...',
    'Building login-service: mkdir -p /srv/login-service/logs',
    'docker run --name mysql -p3306:3306 -d mysql:8',
    'useradd -m -s /usr/sbin/nologin -p x svc',
  ]) {
    assert.deepEqual(redactor.redact(line), { text: line, rules: [] }, line);
  }
});

test('custom rules from config run after the built-in ones and name themselves', () => {
  const redactor = createRedactor([customRule('employee_id', String.raw`(emp-id:)(\d{6})`, 2)]);
  assert.deepEqual(redactor.redact('badge emp-id:123456 scanned'), { text: 'badge emp-id:[REDACTED:employee_id] scanned', rules: ['employee_id'] });
});

function emitThrough(bodies: { body: string; attributes?: Record<string, unknown> }[]) {
  // Collects what leaves the processor chain, as the batch processor would see it.
  const seen: ReadWriteLogRecord[] = [];
  const collect: LogRecordProcessor = { onEmit: (r) => void seen.push(r), forceFlush: async () => {}, shutdown: async () => {} };
  const provider = new LoggerProvider({ processors: [new RedactionProcessor(createRedactor()), collect] });
  const logger = provider.getLogger('test');
  for (const b of bodies) logger.emit({ body: b.body, attributes: { 'log.file.path': '/var/log/x.log', ...(b.attributes as object) } });
  return seen;
}

test('the processor redacts the body, every string attribute (arrays too) and records the rules', () => {
  const [record] = emitThrough([{ body: 'push with ghp_R4nd0mT0k3nV4lu3F0rT3st1ng0000000001', attributes: { message: 'push with ghp_R4nd0mT0k3nV4lu3F0rT3st1ng0000000001', 'process.command_line': ['git', 'password=abc123'], 'process.pid': 7 } }]);
  assert.equal(record?.body, 'push with [REDACTED:github_token]');
  assert.equal(record?.attributes.message, 'push with [REDACTED:github_token]');
  assert.deepEqual(record?.attributes['process.command_line'], ['git', 'password=[REDACTED:secret_pair]']);
  assert.equal(record?.attributes['process.pid'], 7);
  assert.deepEqual(record?.attributes['ci_audit.redacted.rules'], ['github_token', 'secret_pair']);
});

test('what the processor remembers as clean per key lets through only that value, alone or in an array', () => {
  const records = emitThrough([
    { body: 'login of alice', attributes: { 'related.user': ['alice'], 'user.name': 'alice' } },
    { body: 'login of alice', attributes: { 'related.user': ['alice'], 'user.name': 'alice' } },
    { body: 'x', attributes: { 'related.user': ['token=abc123'], 'user.name': 'password=abc123' } },
    { body: 'x', attributes: { 'related.user': ['alice', 'secret=abc123'] } },
  ]);
  assert.deepEqual(records[1]?.attributes['related.user'], ['alice']);
  assert.deepEqual(records[2]?.attributes['related.user'], ['token=[REDACTED:secret_pair]']);
  assert.equal(records[2]?.attributes['user.name'], 'password=[REDACTED:secret_pair]');
  assert.deepEqual(records[3]?.attributes['related.user'], ['alice', 'secret=[REDACTED:secret_pair]']);
});

test('attribute keys that name Object.prototype members are redacted like any other', () => {
  const records = emitThrough([{ body: 'x', attributes: { constructor: 'password=abc123', toString: 'clean' } }]);
  assert.equal(records[0]?.attributes.constructor, 'password=[REDACTED:secret_pair]');
  assert.equal(Object.getOwnPropertyDescriptor(records[0]?.attributes ?? {}, 'toString')?.value, 'clean');
  // The SDK's setAttributes cannot hold an own `__proto__`; a record built by hand can.
  const attributes = JSON.parse('{"__proto__": "token=abc123", "user.name": "alice"}') as Record<string, unknown>;
  const record = { body: 'y', attributes, setAttribute: (key: string, value: unknown) => Object.defineProperty(attributes, key, { value, enumerable: true }) };
  new RedactionProcessor(createRedactor()).onEmit(record as unknown as ReadWriteLogRecord);
  assert.equal(Object.getOwnPropertyDescriptor(attributes, '__proto__')?.value, 'token=[REDACTED:secret_pair]');
  assert.equal(attributes['user.name'], 'alice');
});

test('a private key written line by line is redacted from BEGIN to END, then lines pass again', () => {
  const records = emitThrough([
    { body: '-----BEGIN OPENSSH PRIVATE KEY-----' },
    { body: 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW' },
    { body: 'QyNTUxOQAAACBkZXBsb3kta2V5LWZvci10ZXN0aW5nLW9ubHktMDAwMDAwAAAAoA', attributes: { message: 'QyNTUxOQAAACBkZXBsb3kta2V5LWZvci10ZXN0aW5nLW9ubHktMDAwMDAwAAAAoA' } },
    { body: '-----END OPENSSH PRIVATE KEY-----' },
    { body: 'Finished: SUCCESS' },
  ]);
  const bodies = records.map((r) => r.body);
  assert.equal(bodies[0], '[REDACTED:private_key]');
  assert.equal(bodies[1], '[REDACTED:private_key]');
  assert.equal(bodies[2], '[REDACTED:private_key]');
  assert.equal(records[2]?.attributes.message, '[REDACTED:private_key]');
  assert.equal(bodies[3], '[REDACTED:private_key]');
  assert.equal(bodies[4], 'Finished: SUCCESS');
});

test('a private key written line by line behind a syslog header or a runner prefix: no attribute keeps key text', () => {
  const keyLines = ['MIIEowIBAAKCAQEAx1y2z3AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefgh', 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2', 'AAAB=='];
  for (const prefix of ['Jan  5 10:00:00 host deploy[12]: ', '[2024-05-01 12:34:57Z INFO Terminal] WRITE LINE: ']) {
    const seen: ReadWriteLogRecord[] = [];
    const collect: LogRecordProcessor = { onEmit: (r) => void seen.push(r), forceFlush: async () => {}, shutdown: async () => {} };
    const pieces = new LinePieces();
    const processors = [new ParseProcessor({ zone: timeZoneResolver('UTC'), pieces }), new RedactionProcessor(createRedactor(), pieces), collect];
    const logger = new LoggerProvider({ processors }).getLogger('test');
    const bodies = [`${prefix}-----BEGIN RSA PRIVATE KEY-----`, ...keyLines.map((k) => prefix + k), `${prefix}-----END RSA PRIVATE KEY-----`, `${prefix}done`];
    for (const body of bodies) logger.emit({ body, attributes: { 'log.file.path': '/var/log/app.log', team: 'platform', 'cicd.pipeline.run.id': '4242' } });
    for (const [i, record] of seen.slice(1, -1).entries()) {
      assert.equal(record.body, '[REDACTED:private_key]', prefix);
      const all = JSON.stringify(record.attributes);
      for (const k of keyLines) for (let at = 0; at + 4 <= k.length; at += 4) assert.ok(!all.includes(k.slice(at, at + 8)), `${prefix}line ${i + 1}: ${all}`);
      assert.equal(record.attributes.message, '[REDACTED:private_key]', prefix);
      // What does not come from the key text stays: labels, job context.
      assert.equal(record.attributes.team, 'platform');
      assert.equal(record.attributes['cicd.pipeline.run.id'], '4242');
      if (prefix.startsWith('Jan')) assert.deepEqual([record.attributes['host.hostname'], record.attributes['process.name']], ['host', 'deploy']);
    }
    assert.ok(String(seen.at(-1)?.body).endsWith('done'), 'after END lines pass again');
  }
});

test('every built-in rule, the prefilter and the redactor stay linear on 100 KB hostile lines', () => {
  // No time-free measure of a regular expression's work exists in JavaScript, so this is a
  // deadline: each rule runs on all inputs inside vm with a 5 s timeout, which interrupts the
  // regular expression itself (a quadratic rule fails in 5 s instead of hanging for minutes).
  // Linear rules take a few milliseconds per input; the quadratic ones took 5 to 40 s.
  const units = [
    'a.', 'a-', 'a:', 'a=', 'a ', 'a', '-', ' ', ':', '=', '@', '/', '"', "'", '\\"', '\\', ' ; ', '\t',
    'a://', '://a', 'a://a:', 'x://u:p', 'x://u:p/', ':/', '//@', 'x://u:8080/', 'a:b@',
    'eyJab-', 'eyJa.', 'eyJab.eyJab-', 'SG.a-', 'SG.aaaaaaaaaaaaaaaa.',
    ' -u ', '-u=a', ' -u=a', ' --user=a', ' -u a:', ' --password ', ' -pass ',
    'password ', 'password=', 'password:', 'token"', '"password":"', '"password": "a\\"', "password='a'", 'passwd:', 'secret_', 'SECRET_KEY',
    'aws_secret_key ', 'aws_secret_access_key=', 'mysql ', 'mysql -p ', ' -p', 'login ', 'login -p ', 'mysql login -p',
    '-----BEGIN ', '-----BEGIN A', 'PRIVATE ', '-----BEGIN PRIVATE KEY-----',
    'AKIA', 'AIza', 'ya29.', 'AccountKey=', '&sig=', '1Q~', 'aaa1Q~', 'ghp_', 'github_pat_', 'glpat-', 'GR1348941', 'xoxb-', 'npm_', 'sk_live_', '_auth=',
    'authorization: ', 'authorization ', 'bearer ', 'Bearer\t', 'https://hooks.slack.com/services/',
  ];
  const size = 100_000;
  const inputs = units.map((u) => u.repeat(Math.ceil(size / u.length)).slice(0, size));
  // A quoted value that a lone `\` at the very end leaves unclosed: each `token=\"` scanned to the
  // end. Four times the size: quadratic, it took 1.5 s at 64 KB (and 6 at 128).
  inputs.push(`${'token=\\"'.repeat(size / 2)}\\`);
  const redactor = createRedactor();
  const context = vm.createContext({ inputs, rules: builtinRules, mayHoldBuiltinSecret, redactor });
  const run = (what: string, code: string) => {
    try {
      vm.runInContext(code, context, { timeout: 5_000 });
    } catch (error) {
      assert.fail(`${what}: ${(error as Error).message}`);
    }
  };
  for (const [i, r] of builtinRules.entries()) {
    run(r.name, `for (const text of inputs) { const p = rules[${i}].pattern; p.lastIndex = 0; text.replace(p, ''); }`);
  }
  run('prefilter', 'for (const text of inputs) mayHoldBuiltinSecret(text);');
  run('redactor', 'for (const text of inputs) redactor.redact(text);');
});

test('the prefilter lets through every text a built-in rule matches, and every part of one', () => {
  // The redactor skips the rules on a text the prefilter rejects, and the processor skips the
  // attributes cut out of such a line: both are only sound if the prefilter is a superset.
  const pieces = [
    ...corpus.map((c) => c.line), 'password', 'passwd', 'Passphrase', 'secret', 'TOKEN', 'api-key', 'apikey', 'access_key', 'private-key', 'credentials',
    'authorization', 'Proxy-Authorization', '_authToken', 'AccountKey', 'aws_secret_key', 'Bearer', 'bearer', '=', ': ', ':', ' = ', '"', "'", ' ', '\t',
    ' -u ', ' --user=', ' --proxy-user ', 'ci:', '1000:1000', 'https://', 'x://', '@', 'a:b@', 'AKIA', 'ASIA', 'AIza', 'ya29.', 'sig=', '&sig=', '1Q~', 'ghp_',
    'github_pat_', 'glpat-', 'glagent-', 'GR1348941', 'npm_', 'xoxb-', 'hooks.slack.com/services/', 'sk_live_', 'rk_test_', 'SG.', 'eyJ', '-----BEGIN RSA PRIVATE KEY-----',
    'publickey', 'pam_unix(passwd:chauthtok)', 'Failed password for', 'QWERTYUIOPASDFGHJKLZ', 'abcdefghijklmnopqrstuvwxyz0123456789ABCD', '0123456789', '.', '-', '_', '/',
    // Pieces of the anchors the prefilter stops at, split where it looks before or after them.
    'ACCA', 'APKA', 'gh', 'gho_', 'github', 'gl', 'glsoat-', 'xox', 'xoxe-', 'ey', 'J', 'Q~', '?sig=', '-u=', '--user ', '://', 'hooks.slack.com/workflows/', 'BEARER ',
    'credential', '_auth', '-----BEGIN PRIVATE KEY-----', '\u00a0', '\u2028', '%2B', '+', '~', 'é',
    // cli_password, bare colons, escaped quotes, URL passwords with `@` and `/`.
    'mysql', 'mariadb', 'login', ' -p', '-pS3cret', ' -p ', ' --password ', '-passin ', 'pass:', 'passwd:', '"passwd":', 'token:', 'secret_key', 'SECRET_', '\\"', '\\', 'p@ss', 'a/b@', 'x:5000/',
  ];
  let s = 7;
  const random = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  let matched = 0;
  for (let i = 0; i < 30_000; i++) {
    const n = 1 + Math.floor(random() * 5);
    let text = '';
    for (let j = 0; j < n; j++) text += pick(pieces).slice(random() < 0.3 ? Math.floor(random() * 6) : 0);
    const fold = random();
    if (fold < 0.4) text = text.toLowerCase();
    else if (fold < 0.55) text = text.toUpperCase();
    const start = Math.floor(random() * text.length);
    const parts = [text.slice(start), text.slice(0, start + 1 + Math.floor(random() * 40)), text.slice(start, start + 1 + Math.floor(random() * 20))];
    // What it rejects in a text it rejects in every part (the processor skips the fields cut out of such a line).
    if (!mayHoldBuiltinSecret(text)) for (const part of parts) assert.equal(mayHoldBuiltinSecret(part), false, `${JSON.stringify(part)} of ${JSON.stringify(text)}`);
    for (const t of [text, ...parts]) {
      const rule = builtinRules.find((r) => {
        r.pattern.lastIndex = 0;
        return r.pattern.test(t);
      });
      if (rule === undefined) continue;
      matched++;
      assert.ok(mayHoldBuiltinSecret(t), `${rule.name} matches what the prefilter rejects: ${JSON.stringify(t)}`);
    }
  }
  assert.ok(matched > 10_000, `only ${matched} texts matched a rule`);
});
