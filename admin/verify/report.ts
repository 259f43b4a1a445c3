// What `ci-audit verify` prints: findings as they are found (so that a long run shows them early and
// a million of them do not sit in memory), then the notices and a summary. --json writes one JSON
// document {"findings":[...],"notices":[...],"summary":{...}}, streamed in the same way.
import type { Finding, Notice, VerifySink } from './findings.ts';
import type { VerifySummary } from './verify.ts';

export interface Writer {
  write(text: string): void;
}

export interface Report extends VerifySink {
  end(summary: VerifySummary): void;
}

function range(seq: number | undefined, last: number | undefined): string {
  if (seq === undefined) return '';
  return last === undefined ? ` seq=${seq}` : ` seq=${seq}..${last}`;
}

export function textReport(out: Writer): Report {
  const notices: Notice[] = [];
  return {
    finding(f: Finding) {
      const where = [f['@timestamp'] === undefined ? '' : ` @timestamp=${f['@timestamp']}`, f._id === undefined ? '' : ` _id=${f._id}`, f._index === undefined ? '' : ` _index=${f._index}`].join('');
      const fields = f.fields === undefined ? '' : ` fields=${f.fields.join(',')}`;
      out.write(`FINDING ${f.kind} agent=${f.agent}${range(f.seq, f.last_seq)}${where}${fields}: ${f.detail}\n`);
    },
    notice(n: Notice) {
      notices.push(n);
    },
    end(s: VerifySummary) {
      for (const n of notices) out.write(`notice ${n.kind} agent=${n.agent}${range(n.seq, n.last_seq)}: ${n.detail}\n`);
      const verdict = s.findings === 0 ? 'no findings' : `${s.findings} finding${s.findings === 1 ? '' : 's'}`;
      out.write(
        `verified ${s.records} records of ${s.agents} agent${s.agents === 1 ? '' : 's'} and ${s.checkpoints} checkpoint${s.checkpoints === 1 ? '' : 's'} in ${s.seconds.toFixed(1)} s ` +
          `(${s.records_per_second} records/s): ${verdict}, ${s.notices} notice${s.notices === 1 ? '' : 's'}\n`,
      );
    },
  };
}

export function jsonReport(out: Writer): Report {
  const notices: Notice[] = [];
  // Nothing is written before the first finding, so that a run that fails leaves no half document.
  let first = true;
  return {
    finding(f: Finding) {
      out.write(`${first ? '{"findings":[' : ','}\n${JSON.stringify(f)}`);
      first = false;
    },
    notice(n: Notice) {
      notices.push(n);
    },
    end(s: VerifySummary) {
      out.write(`${first ? '{"findings":[' : '\n'}],\n"notices":${JSON.stringify(notices)},\n"summary":${JSON.stringify({ ...s, ok: s.findings === 0 })}}\n`);
    },
  };
}

/** A one-line progress display on stderr: records read of the estimate, rate. */
export function progressLine(err: NodeJS.WriteStream, interactive: boolean): { update(read: number, estimate: number): void; done(): void } {
  const started = Date.now();
  let shown = 0;
  let drawn = false;
  return {
    update(read, estimate) {
      const now = Date.now();
      if (now - shown < (interactive ? 200 : 2000) && read < estimate) return;
      shown = now;
      const rate = Math.round(read / Math.max((now - started) / 1000, 0.001));
      const percent = estimate > 0 ? ` (${Math.min(100, Math.floor((read / estimate) * 100))}%)` : '';
      const line = `verify: ${read.toLocaleString('en')} of ~${estimate.toLocaleString('en')} records${percent}, ${rate.toLocaleString('en')} records/s`;
      if (interactive) err.write(`\r${line}\u001b[K`);
      else err.write(`${line}\n`);
      drawn = true;
    },
    done() {
      if (interactive && drawn) err.write('\n');
    },
  };
}
