import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineSplitter, type Line } from '../../../../agent/sources/file/line-splitter.ts';

const bytes = (s: string): Buffer => Buffer.from(s, 'utf8');

void test('splits on \\n and reports each line with its offset and end', () => {
  const s = new LineSplitter();
  const lines = s.push(bytes('one\ntwo\n'));
  assert.deepEqual(lines, [
    { text: 'one', offset: 0, end: 4, invalidUtf8: false },
    { text: 'two', offset: 4, end: 8, invalidUtf8: false },
  ]);
  assert.equal(s.nextOffset, 8);
  assert.equal(s.partialLength, 0);
});

void test('\\r\\n endings lose the \\r; a lone \\r inside a line is kept', () => {
  const s = new LineSplitter();
  const lines = s.push(bytes('a\r\nb\rc\r\n\r\n'));
  assert.deepEqual(
    lines.map((l) => [l.text, l.offset, l.end]),
    [
      ['a', 0, 3],
      ['b\rc', 3, 8],
      ['', 8, 10],
    ],
  );
});

void test('a \\r\\n split across two chunks is still one ending', () => {
  const s = new LineSplitter();
  assert.deepEqual(s.push(bytes('abc\r')), []);
  const lines = s.push(bytes('\nx'));
  assert.deepEqual(lines.map((l) => [l.text, l.offset, l.end]), [['abc', 0, 5]]);
  assert.equal(s.partialOffset, 5);
  assert.equal(s.partialLength, 1);
});

void test('a partial line waits for its newline, then comes out whole at its first byte offset', () => {
  const s = new LineSplitter(100);
  assert.deepEqual(s.push(bytes('hel')), []);
  assert.deepEqual(s.push(bytes('lo wo')), []);
  assert.equal(s.partialOffset, 100);
  assert.equal(s.nextOffset, 108);
  const lines = s.push(bytes('rld\nnext'));
  assert.deepEqual(lines, [{ text: 'hello world', offset: 100, end: 112, invalidUtf8: false }]);
  assert.equal(s.partialOffset, 112);
});

void test('multi-byte characters split across chunks decode once the line is complete', () => {
  const s = new LineSplitter();
  const euro = bytes('€\n'); // e2 82 ac 0a
  assert.deepEqual(s.push(euro.subarray(0, 2)), []);
  const lines = s.push(euro.subarray(2));
  assert.equal(lines[0]?.text, '€');
  assert.equal(lines[0]?.invalidUtf8, false);
  assert.equal(lines[0]?.end, 4);
});

void test('invalid UTF-8 is replaced by U+FFFD and flagged, the line is kept', () => {
  const s = new LineSplitter();
  const lines = s.push(Buffer.from([0x6f, 0x6b, 0xff, 0xfe, 0x0a, 0x61, 0x0a]));
  assert.equal(lines.length, 2);
  assert.equal(lines[0]?.text, 'ok\uFFFD\uFFFD');
  assert.equal(lines[0]?.invalidUtf8, true);
  assert.equal(lines[0]?.end, 5);
  assert.equal(lines[1]?.invalidUtf8, false);
});

void test('the splitter does not keep a reference to the caller\'s buffer', () => {
  const s = new LineSplitter();
  const buf = Buffer.from('partial');
  s.push(buf);
  buf.fill(0x41);
  assert.equal(s.push(bytes('\n'))[0]?.text, 'partial');
});

void test('an over-long line is split into flagged fragments whose offsets chain, nothing dropped', () => {
  const s = new LineSplitter(0, { maxLineBytes: 4 });
  const lines = s.push(bytes('abcdefghij\nok\n'));
  assert.deepEqual(
    lines.map((l) => [l.text, l.offset, l.end, l.split === true, l.continued === true]),
    [
      ['abcd', 0, 4, true, false],
      ['efgh', 4, 8, true, true],
      ['ij', 8, 11, false, true],
      ['ok', 11, 14, false, false],
    ],
  );
  // Resuming at a fragment boundary (checkpoint after an ack) gives the same fragments.
  const again = new LineSplitter(4, { maxLineBytes: 4 }).push(bytes('efghij\n'));
  assert.deepEqual(again.map((l) => [l.text, l.offset, l.end]), [['efgh', 4, 8], ['ij', 8, 11]]);
});

void test('truncate keeps the head, skips the rest up to the newline and records the full length', () => {
  const s = new LineSplitter(0, { maxLineBytes: 3, overLong: 'truncate' });
  const lines = [...s.push(bytes('abcdef')), ...s.push(bytes('gh\nxy\n'))];
  assert.deepEqual(lines.map((l) => [l.text, l.offset, l.end, l.truncatedFrom]), [['abc', 0, 9, 8], ['xy', 9, 12, undefined]]);
});

void test('flushPartial emits the pending bytes flagged partial; the rest of the line is a continued record', () => {
  const s = new LineSplitter();
  assert.deepEqual(s.push(bytes('progress 50%')), []);
  const partial = s.flushPartial();
  assert.deepEqual([partial?.text, partial?.offset, partial?.end, partial?.partial], ['progress 50%', 0, 12, true]);
  assert.equal(s.flushPartial(), undefined);
  const [rest] = s.push(bytes(' done\n'));
  assert.deepEqual([rest?.text, rest?.offset, rest?.end, rest?.continued], [' done', 12, 18, true]);
});

void test('NUL bytes are removed from the text and flagged', () => {
  const [line] = new LineSplitter().push(Buffer.from([0x61, 0x00, 0x00, 0x62, 0x0a]));
  assert.deepEqual([line?.text, line?.nulBytes], ['ab', true]);
});

void test('whole chunks (the ASCII fast path) give the same lines as byte-by-byte pushes: CRLF, empty and over-long lines, a partial tail', () => {
  const input = Buffer.from(['alpha', 'beta\r', '', 'x'.repeat(150), 'gamma\r', '\r', 'delta'].join('\n') + '\nepsilon-partial');
  const options = { maxLineBytes: 100 };
  const whole = new LineSplitter(7, options);
  const fromWhole = whole.push(input);
  const bytewise = new LineSplitter(7, options);
  const fromBytes: Line[] = [];
  for (let i = 0; i < input.length; i++) fromBytes.push(...bytewise.push(input.subarray(i, i + 1)));
  assert.deepEqual(fromWhole, fromBytes);
  assert.equal(whole.nextOffset, bytewise.nextOffset);
  assert.equal(whole.partialOffset, bytewise.partialOffset);
  assert.deepEqual(
    fromWhole.map((l) => [l.text.length, l.offset, l.end, l.split === true, l.continued === true]),
    [
      [5, 7, 13, false, false],
      [4, 13, 19, false, false],
      [0, 19, 20, false, false],
      [100, 20, 120, true, false],
      [50, 120, 171, false, true],
      [5, 171, 178, false, false],
      [0, 178, 180, false, false],
      [5, 180, 186, false, false],
    ],
  );
  // After a non-ASCII chunk, the fast path steps aside and the UTF-8 path flags nothing for valid text.
  const mixed = new LineSplitter(0).push(Buffer.from('ascii\nünïcödé\n'));
  assert.deepEqual(mixed.map((l) => [l.text, l.offset, l.end, l.invalidUtf8]), [['ascii', 0, 6, false], ['ünïcödé', 6, 18, false]]);
});

void test('a chunk that starts with the rest of a pending line gives the same lines as one push, wherever the cut falls', () => {
  // Chunks rarely end at a newline: the pending line is finished first and the rest of the chunk
  // takes the fast path, which must not change a line, an offset or a flag.
  const input = Buffer.from(['alpha', 'beta\r', '', 'x'.repeat(150), 'gamma\r', 'ünï', 'a\0b', 'delta'].join('\n') + '\nepsilon-partial');
  for (const overLong of ['split', 'truncate'] as const) {
    const options = { maxLineBytes: 100, overLong };
    const whole = new LineSplitter(3, options);
    const expected = whole.push(input);
    for (let cut = 1; cut < input.length; cut++) {
      const s = new LineSplitter(3, options);
      const lines = [...s.push(input.subarray(0, cut)), ...s.push(input.subarray(cut))];
      assert.deepEqual(lines, expected, `${overLong}, cut at ${cut}`);
      assert.equal(s.nextOffset, whole.nextOffset);
      assert.equal(s.partialOffset, whole.partialOffset);
    }
  }
});

/** The lines of `input` pushed whole, and checked to be the same when pushed in two pieces cut anywhere, and byte by byte. */
function splitEverywhere(input: Buffer, options: { maxLineBytes: number; overLong?: 'split' | 'truncate' }): Line[] {
  const whole = new LineSplitter(0, options).push(input);
  for (let cut = 1; cut < input.length; cut++) {
    const s = new LineSplitter(0, options);
    assert.deepEqual([...s.push(input.subarray(0, cut)), ...s.push(input.subarray(cut))], whole, `cut at ${cut}`);
  }
  const bytewise = new LineSplitter(0, options);
  const lines: Line[] = [];
  for (let i = 0; i < input.length; i++) lines.push(...bytewise.push(input.subarray(i, i + 1)));
  assert.deepEqual(lines, whole, 'byte by byte');
  return whole;
}

void test('an over-long line is cut before a character the limit would cut in two: fragments and truncated heads stay valid UTF-8; invalid bytes are cut at the limit as before', () => {
  for (const char of ['é', '€', '😀']) {
    const size = bytes(char).length;
    // The limit falls after each byte of the character but its last.
    for (let inside = 1; inside < size; inside++) {
      const head = 'x'.repeat(8 - inside);
      const text = `${head}${char}yz`;
      const input = bytes(`${text}\nok\n`);
      const split = splitEverywhere(input, { maxLineBytes: 8 });
      assert.deepEqual(
        split.map((l) => [l.text, l.offset, l.end, l.invalidUtf8, l.split === true, l.continued === true]),
        [
          [head, 0, head.length, false, true, false],
          [`${char}yz`, head.length, input.length - 3, false, false, true],
          ['ok', input.length - 3, input.length, false, false, false],
        ],
        `${char}, ${inside} byte(s) before the limit`,
      );
      const truncated = splitEverywhere(input, { maxLineBytes: 8, overLong: 'truncate' });
      assert.deepEqual(
        truncated.map((l) => [l.text, l.offset, l.end, l.invalidUtf8, l.truncatedFrom]),
        [
          [head, 0, input.length - 3, false, bytes(text).length],
          ['ok', input.length - 3, input.length, false, undefined],
        ],
        `truncate: ${char}, ${inside} byte(s) before the limit`,
      );
    }
  }
  // Not a character cut in two: a stray continuation byte after a whole é, an overlong form
  // (e0 80 80), a surrogate (ed a0 80), continuation bytes without a lead. Cut at the limit, flagged.
  for (const bad of [[0x61, 0xc3, 0xa9, 0x80, 0x62], [0x61, 0x62, 0xe0, 0x80, 0x80], [0x61, 0x62, 0xed, 0xa0, 0x80], [0x61, 0x80, 0x80, 0x80, 0x80]]) {
    const input = Buffer.from([...bad, 0x0a]);
    const split = splitEverywhere(input, { maxLineBytes: 4 });
    assert.deepEqual(split.map((l) => [l.offset, l.end]), [[0, 4], [4, 6]], Buffer.from(bad).toString('hex'));
    assert.ok(split.some((l) => l.invalidUtf8));
    const [truncated] = splitEverywhere(input, { maxLineBytes: 4, overLong: 'truncate' });
    assert.deepEqual([truncated?.text, truncated?.truncatedFrom, truncated?.invalidUtf8], [input.subarray(0, 4).toString('utf8'), 5, true]);
  }
});

void test('the \\r of a \\r\\n ending does not count toward max_line_bytes: a line of exactly the limit is one record, and truncated_from is the content length', () => {
  for (const overLong of ['split', 'truncate'] as const) {
    const options = { maxLineBytes: 4, overLong };
    assert.deepEqual(splitEverywhere(bytes('abcd\r\nef\r\n'), options), [
      { text: 'abcd', offset: 0, end: 6, invalidUtf8: false },
      { text: 'ef', offset: 6, end: 10, invalidUtf8: false },
    ]);
  }
  // A \r followed by more of the line is content: the line is over-long.
  assert.deepEqual(
    splitEverywhere(bytes('abcd\rxy\r\n'), { maxLineBytes: 4 }).map((l) => [l.text, l.offset, l.end, l.split === true, l.continued === true]),
    [
      ['abcd', 0, 4, true, false],
      ['\rxy', 4, 9, false, true],
    ],
  );
  const truncated = splitEverywhere(bytes('abcdef\r\nabcd\rx\r\nabcd\r\r\n'), { maxLineBytes: 4, overLong: 'truncate' });
  assert.deepEqual(
    truncated.map((l) => [l.text, l.offset, l.end, l.truncatedFrom]),
    [
      ['abcd', 0, 8, 6],
      ['abcd', 8, 16, 6],
      ['abcd', 16, 23, 5],
    ],
  );
});
