import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '../../../aggregator/index/client.ts';
import { loadAgentConfig, loadAggregatorConfig } from '../../../config/loader.ts';
import { hasErrorCode } from '../../../core/errors.ts';

async function tempFile(t: { after: (fn: () => Promise<void>) => void }, name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cia-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

const validAgent = `
agent:
  id: runner-01
  state_dir: state
sources:
  - type: file
    id: auth
    include: [logs/auth.log]
    dataset: auth
output:
  url: http://127.0.0.1:4318
`;

test('a valid agent config gets its defaults and paths resolved from its folder', async (t) => {
  const file = await tempFile(t, 'agent.yaml', validAgent);
  const { config } = await loadAgentConfig(file, {});
  const dir = join(file, '..');
  assert.equal(config.agent.state_dir, join(dir, 'state'));
  const source = config.sources[0];
  assert.deepEqual(source?.type === 'file' ? source.include : undefined, [join(dir, 'logs/auth.log')]);
  assert.equal(config.sources[0]?.start_at, 'beginning');
  assert.equal(config.output.batch.max_records, 512);
  assert.equal(config.log.level, 'info');
});

test('a missing file is reported with its path', async () => {
  await assert.rejects(loadAgentConfig('/nonexistent/ci-audit/agent.yaml'), (err: unknown) => {
    assert.ok(hasErrorCode(err, 'CIA_ERR_CONFIG_NOT_FOUND'));
    assert.match(err.message, /\/nonexistent\/ci-audit\/agent\.yaml: no such file/);
    return true;
  });
});

test('invalid YAML names file, line and column', async (t) => {
  const file = await tempFile(t, 'agent.yaml', 'agent:\n  id: [unclosed\n');
  await assert.rejects(loadAgentConfig(file), (err: unknown) => {
    assert.ok(hasErrorCode(err, 'CIA_ERR_CONFIG_PARSE'));
    assert.ok(err.message.startsWith(`${file}:`), err.message);
    assert.match(err.message, /:\d+:\d+: invalid YAML/);
    return true;
  });
});

test('an unknown key is rejected with its line, its path and the allowed keys', async (t) => {
  const file = await tempFile(t, 'agent.yaml', validAgent.replace('    dataset: auth', '    dataset: auth\n    colour: red'));
  await assert.rejects(loadAgentConfig(file), (err: unknown) => {
    assert.ok(hasErrorCode(err, 'CIA_ERR_CONFIG_INVALID'));
    assert.match(err.message, new RegExp(`${file}:10:5: sources\\[0\\]\\.colour: unknown option \\(allowed here: type, id, include`));
    return true;
  });
});

test('a bad value names the option and where it is', async (t) => {
  const file = await tempFile(t, 'agent.yaml', validAgent.replace('dataset: auth', 'dataset: Auth Logs'));
  await assert.rejects(loadAgentConfig(file), (err: unknown) => {
    assert.ok(hasErrorCode(err, 'CIA_ERR_CONFIG_INVALID'));
    assert.match(err.message, /:9:5: sources\[0\]\.dataset: lower-case letters/);
    return true;
  });
});

test('a missing required section is reported', async (t) => {
  const file = await tempFile(t, 'agent.yaml', 'sources: []\n');
  await assert.rejects(loadAgentConfig(file), (err: unknown) => {
    assert.ok(hasErrorCode(err, 'CIA_ERR_CONFIG_INVALID'));
    assert.match(err.message, /sources: a list of at least one entry/);
    assert.match(err.message, /output: required option missing/);
    return true;
  });
});

test('${VAR} references are substituted, with defaults and numbers', async (t) => {
  const file = await tempFile(t, 'aggregator.yaml', 'listen:\n  port: ${CIA_TEST_PORT:-4318}\nelasticsearch:\n  password: ${CIA_TEST_PW}\n');
  const { config } = await loadAggregatorConfig(file, { CIA_TEST_PORT: '9999', CIA_TEST_PW: 's3cret' });
  assert.equal(config.listen.port, 9999);
  assert.equal(config.elasticsearch.password, 's3cret');
  const { config: withDefault } = await loadAggregatorConfig(file, { CIA_TEST_PW: 'x' });
  assert.equal(withDefault.listen.port, 4318);
});

test('an unset ${VAR} without default is an error that names the variable, not its value', async (t) => {
  const file = await tempFile(t, 'aggregator.yaml', 'elasticsearch:\n  password: ${CIA_TEST_UNSET_PW}\n');
  await assert.rejects(loadAggregatorConfig(file, {}), (err: unknown) => {
    assert.ok(hasErrorCode(err, 'CIA_ERR_CONFIG_INVALID'));
    assert.match(err.message, /:2:3: elasticsearch\.password: environment variable CIA_TEST_UNSET_PW is not set/);
    return true;
  });
});

test('ES_URL and ES_API_KEY from the environment take precedence', async () => {
  const { config } = await loadAggregatorConfig(undefined, { ES_URL: 'https://es.example:9200', ES_API_KEY: 'a2V5' });
  assert.equal(config.elasticsearch.url, 'https://es.example:9200');
  assert.equal(config.elasticsearch.api_key, 'a2V5');
  assert.equal(config.listen.host, '127.0.0.1');
});

test('the example configs in deploy/quickstart are valid', async () => {
  const agent = await loadAgentConfig(new URL('../../../deploy/quickstart/agent.yaml', import.meta.url).pathname, {});
  assert.equal(agent.config.sources.length, 3);
  const aggregator = await loadAggregatorConfig(new URL('../../../deploy/quickstart/aggregator.yaml', import.meta.url).pathname, {});
  assert.equal(aggregator.config.listen.port, 4318);
});

test('a section written as a list is refused, not taken for an empty one with its defaults', async (t) => {
  const file = await tempFile(t, 'agent.yaml', `${validAgent}log: []\n`);
  await assert.rejects(loadAgentConfig(file), (err: unknown) => {
    assert.ok(hasErrorCode(err, 'CIA_ERR_CONFIG_INVALID'));
    assert.match(err.message, /:12:1: log: Invalid type: Expected Object but received Array/);
    return true;
  });
});

test('an unknown key lists the keys of its own section: of the source type, of a nested section', async (t) => {
  const journald = validAgent.replace('    include: [logs/auth.log]\n', '').replace('type: file', 'type: journald').replace('    dataset: auth', '    dataset: auth\n    include: [x]');
  const file = await tempFile(t, 'agent.yaml', journald);
  await assert.rejects(loadAgentConfig(file), (err: unknown) => {
    assert.ok(hasErrorCode(err, 'CIA_ERR_CONFIG_INVALID'));
    assert.match(err.message, /sources\[0\]\.include: unknown option \(allowed here: type, id, dataset, start_at, units, identifiers, directory, journalctl_path\)/);
    return true;
  });
  const nested = await tempFile(t, 'agent.yaml', validAgent.replace('    dataset: auth', '    dataset: auth\n    multiline:\n      start_pattern: "^\\\\S"\n      lines: 3'));
  await assert.rejects(loadAgentConfig(nested), (err: unknown) => {
    assert.ok(hasErrorCode(err, 'CIA_ERR_CONFIG_INVALID'));
    assert.match(err.message, /:12:7: sources\[0\]\.multiline\.lines: unknown option \(allowed here: start_pattern, negate, max_lines, max_bytes, timeout_ms\)/);
    return true;
  });
});

test('numbers are held to whole numbers in range, URLs to http(s), and every issue is reported', async (t) => {
  const file = await tempFile(
    t,
    'agent.yaml',
    validAgent.replace('url: http://127.0.0.1:4318', 'url: ftp://127.0.0.1:4318\n  max_in_flight: 65\n  timeout_ms: 1.5'),
  );
  await assert.rejects(loadAgentConfig(file), (err: unknown) => {
    assert.ok(hasErrorCode(err, 'CIA_ERR_CONFIG_INVALID'));
    assert.match(err.message, /:11:3: output\.url: an http:\/\/ or https:\/\/ URL/);
    assert.match(err.message, /:12:3: output\.max_in_flight: Invalid value: Expected <=64 but received 65/);
    assert.match(err.message, /:13:3: output\.timeout_ms: a whole number/);
    return true;
  });
});

test('an invalid value is described, never repeated: a secret YAML read as a number, a text that does not match', async (t) => {
  const agent = await tempFile(
    t,
    'agent.yaml',
    validAgent.replace('id: runner-01', 'id: "runner 01 s3cr3t-id"').replace('url: http://127.0.0.1:4318', 'url: http://127.0.0.1:4318\n  token: 8675309123'),
  );
  await assert.rejects(loadAgentConfig(agent, {}), (err: unknown) => {
    assert.ok(hasErrorCode(err, 'CIA_ERR_CONFIG_INVALID'));
    assert.match(err.message, /output\.token: Invalid type: Expected string but received a number/);
    assert.match(err.message, /agent\.id: Invalid format: Expected \//);
    assert.doesNotMatch(err.message, /8675309123|s3cr3t/);
    return true;
  });
  const aggregator = await tempFile(t, 'aggregator.yaml', 'elasticsearch:\n  password: 24681357\n  api_key: true\n');
  await assert.rejects(loadAggregatorConfig(aggregator, {}), (err: unknown) => {
    assert.ok(hasErrorCode(err, 'CIA_ERR_CONFIG_INVALID'));
    assert.match(err.message, /elasticsearch\.password: Invalid type: Expected string but received a number/);
    assert.match(err.message, /elasticsearch\.api_key: Invalid type: Expected string but received a boolean/);
    assert.doesNotMatch(err.message, /24681357/);
    return true;
  });
});

test('output.compression: gzip at level 1 by default, zstd up to level 19, and a level or codec out of range named at its line', async (t) => {
  const defaults = await loadAgentConfig(await tempFile(t, 'agent.yaml', validAgent));
  assert.equal(defaults.config.output.compression, 'gzip');
  assert.equal(defaults.config.output.compression_level, 1);
  const zstd = await loadAgentConfig(await tempFile(t, 'agent.yaml', validAgent.replace('url: http://127.0.0.1:4318', 'url: http://127.0.0.1:4318\n  compression: zstd\n  compression_level: 19')));
  assert.equal(zstd.config.output.compression, 'zstd');
  assert.equal(zstd.config.output.compression_level, 19);
  const cases: Array<[string, RegExp]> = [
    ['compression: brotli', /:12:3: output\.compression: Invalid type: Expected \("gzip" \| "zstd" \| "none"\)/],
    ['compression: gzip\n  compression_level: 12', /:13:3: output\.compression_level: gzip takes levels 1 to 9 \(zstd 1 to 19\)/],
    ['compression: zstd\n  compression_level: 22', /:13:3: output\.compression_level: Invalid value: Expected <=19 but received 22/],
    ['compression_level: 0', /:12:3: output\.compression_level: Invalid value: Expected >=1 but received 0/],
  ];
  for (const [option, message] of cases) {
    const file = await tempFile(t, 'agent.yaml', validAgent.replace('url: http://127.0.0.1:4318', `url: http://127.0.0.1:4318\n  ${option}`));
    await assert.rejects(loadAgentConfig(file), (err: unknown) => {
      assert.ok(hasErrorCode(err, 'CIA_ERR_CONFIG_INVALID'));
      assert.match(err.message, message);
      return true;
    }, option);
  }
});

test('a ${VAR} keeps the type its option takes: text stays text even when all digits, a number or boolean option gets one unless quoted', async (t) => {
  const env = { CIA_TEST_PW: '12345678', CIA_TEST_PORT: '9999', CIA_TEST_FLAG: 'true', CIA_TEST_BUILD: '42' };
  const aggregator = await tempFile(t, 'aggregator.yaml', 'listen:\n  port: ${CIA_TEST_PORT}\n  allow_insecure: ${CIA_TEST_FLAG}\nelasticsearch:\n  username: elastic\n  password: ${CIA_TEST_PW}\n  api_key: "${CIA_TEST_PW}"\n');
  const { config } = await loadAggregatorConfig(aggregator, env);
  assert.equal(config.elasticsearch.password, '12345678');
  assert.equal(config.elasticsearch.api_key, '12345678');
  assert.equal(config.listen.port, 9999);
  assert.equal(config.listen.allow_insecure, true);
  // In a list of sources (a variant by type) and a record of labels, too.
  const agent = await tempFile(t, 'agent.yaml', validAgent.replace('    dataset: auth', '    dataset: auth\n    max_open_files: ${CIA_TEST_BUILD}').replace('output:', 'processors:\n  labels:\n    build: ${CIA_TEST_BUILD}\noutput:\n  token: ${CIA_TEST_PW}'));
  const loaded = await loadAgentConfig(agent, env);
  assert.equal(loaded.config.output.token, '12345678');
  assert.deepEqual(loaded.config.processors.labels, { build: '42' });
  const source = loaded.config.sources[0];
  assert.equal(source?.type === 'file' ? source.max_open_files : undefined, 42);
  // Quoted, a value is text, as it would be written in the file: a number option refuses it.
  const quoted = await tempFile(t, 'aggregator.yaml', 'listen:\n  port: "${CIA_TEST_PORT}"\n');
  await assert.rejects(loadAggregatorConfig(quoted, env), { code: 'CIA_ERR_CONFIG_INVALID', message: /:2:3: listen\.port: Invalid type: Expected number but received a string/ });
});

test('ES_URL is held to the rule of elasticsearch.url and named, without its value; a URL whose password is not percent-encoded is refused', async (t) => {
  for (const value of ['not a url', 'ftp://es.example:9200', 'http://elastic:50%off@es.example:9200']) {
    await assert.rejects(loadAggregatorConfig(undefined, { ES_URL: value }), (err: unknown) => {
      assert.ok(hasErrorCode(err, 'CIA_ERR_CONFIG_INVALID'), value);
      assert.match(err.message, /^environment variable ES_URL: an? (http:\/\/ or https:\/\/ URL|URL whose user name and password are percent-encoded \(write % as %25\)) \(it takes precedence over elasticsearch\.url\)$/, value);
      assert.ok(!err.message.includes('50%off') && !err.message.includes('es.example'), 'the value is not repeated');
      return true;
    });
  }
  const { config } = await loadAggregatorConfig(undefined, { ES_URL: ' http://elastic:50%25off@es.example:9200 ' });
  assert.equal(config.elasticsearch.url, 'http://elastic:50%25off@es.example:9200');
  const file = await tempFile(t, 'aggregator.yaml', 'elasticsearch:\n  url: http://elastic:50%off@127.0.0.1:9200\n');
  await assert.rejects(loadAggregatorConfig(file, {}), (err: unknown) => {
    assert.ok(hasErrorCode(err, 'CIA_ERR_CONFIG_INVALID'));
    assert.match(err.message, /:2:3: elasticsearch\.url: a URL whose user name and password are percent-encoded \(write % as %25\)/);
    assert.doesNotMatch(err.message, /50%off/);
    return true;
  });
  // A caller that builds the client without the loader gets the same error, not a URIError.
  assert.throws(() => createClient({ url: 'http://elastic:50%off@127.0.0.1:9200', request_timeout_ms: 1000 }), { code: 'CIA_ERR_CONFIG_INVALID', message: /percent-encoded/ });
  assert.throws(() => createClient({ url: 'not a url', request_timeout_ms: 1000 }), { code: 'CIA_ERR_CONFIG_INVALID' });
});

test('LOG_LEVEL sets log.level when the file sets none; the file wins; a bad LOG_LEVEL is a configuration error', async (t) => {
  const agent = await tempFile(t, 'agent.yaml', validAgent);
  assert.equal((await loadAgentConfig(agent, { LOG_LEVEL: 'debug' })).config.log.level, 'debug');
  assert.equal((await loadAgentConfig(agent, {})).config.log.level, 'info');
  const withLevel = await tempFile(t, 'agent.yaml', `${validAgent}log:\n  level: warn\n`);
  assert.equal((await loadAgentConfig(withLevel, { LOG_LEVEL: 'debug' })).config.log.level, 'warn');
  assert.equal((await loadAggregatorConfig(undefined, { LOG_LEVEL: 'silent' })).config.log.level, 'silent');
  const aggregator = await tempFile(t, 'aggregator.yaml', 'log:\n  format: json\n');
  assert.equal((await loadAggregatorConfig(aggregator, { LOG_LEVEL: 'trace' })).config.log.level, 'trace');
  await assert.rejects(loadAgentConfig(agent, { LOG_LEVEL: 'loud' }), { code: 'CIA_ERR_CONFIG_INVALID', message: /^environment variable LOG_LEVEL: one of fatal, error, warn, info, debug, trace, silent/ });
});

test('output.tls with an http:// output.url is refused, not ignored: nothing of it would be checked', async (t) => {
  const file = await tempFile(t, 'agent.yaml', `${validAgent}  tls: { pin: "${'A'.repeat(43)}=" }\n`);
  await assert.rejects(loadAgentConfig(file, {}), (err: unknown) => hasErrorCode(err, 'CIA_ERR_CONFIG_INVALID') && /output\.tls/.test(err.message) && /https:\/\//.test(err.message));
  const https = await tempFile(t, 'agent.yaml', `${validAgent.replace('http://', 'https://')}  tls: { pin: "${'A'.repeat(43)}=" }\n`);
  assert.equal((await loadAgentConfig(https, {})).config.output.tls?.pin, `${'A'.repeat(43)}=`);
});
