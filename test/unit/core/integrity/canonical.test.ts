import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { canonicalJson } from '../../../../core/integrity/canonical-json.ts';
import { canonicalRecord, canonicalValue, hrTimeNanos, parseCanonicalRecord, type AttestedRecord } from '../../../../core/integrity/record.ts';
import { chainHash, chainHashOfRecord, genesisHash } from '../../../../core/integrity/chain.ts';
import { keyId, publicKeyPem, signCheckpoint, verifyCheckpoint } from '../../../../core/integrity/checkpoint.ts';

describe('canonical JSON (RFC 8785)', () => {
  it('sorts keys by UTF-16 code units and writes numbers as ECMAScript does (RFC 8785 appendix examples)', () => {
    // RFC 8785 section 3.2.3: sorting by UTF-16 code units.
    const sorted = canonicalJson({ '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew Letter Dalet With Dagesh', '1': 'One', '\ud83d\ude00': 'Emoji: Grinning Face', '\u0080': 'Control', '\u00f6': 'Latin Small Letter O With Diaeresis' });
    assert.deepEqual(
      [...sorted.matchAll(/"((?:[^"\\]|\\.)*)":/g)].map((m) => JSON.parse(`"${m[1]}"`) as string),
      ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33'],
    );
    // RFC 8785 section 3.2.2.3 number examples.
    assert.equal(canonicalJson([Number('333333333.33333329'), 1e30, 4.5, 2e-3, 0.000000000000000000000000001, -0]), '[333333333.3333333,1e+30,4.5,0.002,1e-27,0]');
    assert.equal(canonicalJson({ b: [true, null, 'x\n"'], a: { d: 1, c: 2 } }), '{"a":{"c":2,"d":1},"b":[true,null,"x\\n\\""]}');
  });

  it('refuses a number JSON cannot hold instead of writing null', () => {
    assert.throws(() => canonicalJson({ a: Number.NaN }), { code: 'CIA_ERR_INTEGRITY_CANONICAL' });
  });
});

describe('canonical record and chain', () => {
  const record: AttestedRecord = {
    agent: 'runner-01',
    seq: 1,
    timeUnixNano: 1_764_150_000_123_456_789n,
    observedTimeUnixNano: 1_764_150_000_200_000_000n,
    severityNumber: 0,
    body: 'Accepted publickey for alice',
    attributes: { 'user.name': 'alice', 'log.offset': 10n, 'ci_audit.chain.seq': 1, big: 2n ** 60n, bytes: new Uint8Array([1, 2]), list: ['a', undefined] },
    resource: { 'host.name': 'runner-01' },
  };

  it('writes the same text for SDK values and decoded OTLP values, and leaves the chain attributes out', () => {
    const text = canonicalRecord(record);
    assert.equal(
      text,
      '{"agent":"runner-01","attributes":{"big":"1152921504606846976","bytes":"AQI=","list":["a",null],"log.offset":10,"user.name":"alice"},"body":"Accepted publickey for alice","observed":"1764150000200000000","resource":{"host.name":"runner-01"},"seq":1,"severity":0,"time":"1764150000123456789","v":1}',
    );
    assert.equal(canonicalRecord({ ...record, attributes: { ...record.attributes, 'log.offset': 10 } }), text);
    const parsed = parseCanonicalRecord(text);
    assert.equal(parsed.seq, 1);
    assert.equal(parsed.time, '1764150000123456789');
  });

  it('refuses a stored record that is not canonical', () => {
    assert.throws(() => parseCanonicalRecord('{"v":1, "agent":"a"}'), { code: 'CIA_ERR_INTEGRITY_CANONICAL' });
    const text = canonicalRecord(record);
    assert.throws(() => parseCanonicalRecord(text.replace('"agent":"runner-01",', '') + ' '), { code: 'CIA_ERR_INTEGRITY_CANONICAL' });
  });

  it('chains: each hash depends on the previous one and on every byte of the record', () => {
    const h1 = chainHash(genesisHash, canonicalRecord(record));
    const h2 = chainHash(h1, canonicalRecord({ ...record, seq: 2 }));
    assert.match(h1, /^[0-9a-f]{64}$/);
    assert.notEqual(chainHash(genesisHash, canonicalRecord({ ...record, body: 'Accepted publickey for alicE' })), h1);
    assert.notEqual(chainHash(h2, canonicalRecord({ ...record, seq: 2 })), h2);
  });
});

describe('signed checkpoints', () => {
  it('verifies with the signer\'s key and fails for another key or a changed statement', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const other = generateKeyPairSync('ed25519');
    const pem = publicKeyPem(publicKey);
    const statement = { type: 'checkpoint' as const, agent: 'runner-01', key: keyId(pem), seq: 42, hash: 'ab'.repeat(32), timeUnixNano: 1n };
    const signed = signCheckpoint(statement, privateKey);
    assert.equal(verifyCheckpoint(signed, pem), true);
    assert.equal(verifyCheckpoint(signed, other.publicKey), false);
    assert.equal(verifyCheckpoint({ ...signed, seq: 43 }, pem), false);
    assert.equal(verifyCheckpoint({ ...signed, signature: 'bm90IGEgc2lnbmF0dXJl' }, pem), false);
    assert.match(keyId(pem), /^[0-9a-f]{32}$/);
    assert.throws(() => keyId('not a key'), { code: 'CIA_ERR_INTEGRITY_KEY' });
  });
});

describe('canonical strings', () => {
  it('writes a lone surrogate as U+FFFD, as the exporter\'s UTF-8 encoding does, and leaves a literal backslash-u text alone', () => {
    const base = { agent: 'a', seq: 1, timeUnixNano: 0n, observedTimeUnixNano: 0n, severityNumber: 0, resource: {} };
    assert.equal(canonicalRecord({ ...base, body: 'x\ud800y', attributes: {} }), canonicalRecord({ ...base, body: 'x\ufffdy', attributes: {} }));
    assert.match(canonicalRecord({ ...base, body: 'literal \\ud800', attributes: { k: 'v' } }), /"body":"literal \\\\ud800"/);
  });

  it('orders a key with a lone surrogate where its U+FFFD form sorts, as the aggregator sees it after decoding', () => {
    // U+D800 sorts before U+E000, U+FFFD after it: sorted as written, the agent's order would differ from the aggregator's.
    const sent = canonicalValue({ 'a\ud800': 1, 'a\ue000': 2, b: 3 });
    assert.equal(sent, canonicalValue({ 'a\ufffd': 1, 'a\ue000': 2, b: 3 }));
    assert.equal(sent, '{"a\ue000":2,"a\ufffd":1,"b":3}');
  });
});

describe('canonical bytes', () => {
  // The writer copies plain ASCII itself (short strings a character at a time, long ones encoded
  // natively and checked) and takes anything else from JSON.stringify: both must write the same.
  const pieces = ['plain', 'quote "', 'back\\slash', 'new\nline', 'nul \u0000', 'unit \u001f', 'del \u007f', 'e\u0301 é', '€', '\ud83d\ude00', 'lone \ud800', 'lone \udc00 end', '\u2028'];
  const strings = pieces.flatMap((p) => [p, `${'a'.repeat(30)}${p}`, `${p}${'b'.repeat(30)}`]);

  it('writes every string as JSON.stringify does, a lone surrogate as U+FFFD, short or long', () => {
    for (const s of strings) assert.equal(canonicalValue(s), JSON.stringify(s.toWellFormed()), JSON.stringify(s));
    assert.equal(canonicalValue(['x', 1, -0, 2 ** 53, 0.5, true, null, { b: 'é', a: ['\n'] }]), '["x",1,0,"9007199254740992",0.5,true,null,{"a":["\\n"],"b":"é"}]');
  });

  it('writes an HrTime as the nanoseconds the exporter sends, whatever its parts', () => {
    const base = { agent: 'a', seq: 1, severityNumber: 0, body: 'b', attributes: {}, resource: {} };
    const times: [number, number][] = [[1795688521, 482113789], [1795688521, 0], [1, 5], [0, 5], [0, 0], [-3, 5], [12.7, 999_999_999.9], [5, 1e9], [2 ** 53, 1], [1e21, 7]];
    for (const t of times) {
      const expected = canonicalRecord({ ...base, timeUnixNano: hrTimeNanos(t), observedTimeUnixNano: hrTimeNanos([t[1], t[0]]) });
      assert.equal(canonicalRecord({ ...base, timeUnixNano: t, observedTimeUnixNano: [t[1], t[0]] }), expected, String(t));
    }
    assert.match(canonicalRecord({ ...base, timeUnixNano: [1795688521, 5], observedTimeUnixNano: [0, 0] }), /"observed":"0",.*"time":"1795688521000000005"/);
  });

  it('hashes a record as chainHash does its canonical text, for records far larger than the reused buffer and for any previous hash', () => {
    const base = { agent: 'runner-01', seq: 7, timeUnixNano: '1764150000123456789', observedTimeUnixNano: 0n, severityNumber: 9, resource: { 'host.name': 'runner-01' } };
    const records: AttestedRecord[] = [
      { ...base, body: strings.join(' '), attributes: Object.fromEntries(strings.map((s, i) => [`k${i}`, s])) },
      { ...base, body: 'x'.repeat(200_000), attributes: { long: 'é'.repeat(50_000) } },
      { ...base, body: undefined, attributes: {} },
    ];
    const hashes = [genesisHash, 'ab'.repeat(32), 'not hex', ''];
    for (const record of records) {
      for (const prev of hashes) assert.equal(chainHashOfRecord(prev, record), chainHash(prev, canonicalRecord(record)), `${prev} / ${typeof record.body === 'string' ? record.body.length : 0}`);
      // After a large record the writer is back to its usual buffer and writes the next one right.
      assert.equal(chainHashOfRecord(genesisHash, records[0]!), chainHash(genesisHash, canonicalRecord(records[0]!)));
    }
  });
});
