// Parse + enrich + redact benchmark: time per auth line on one core through the agent's processors
// (parse, user_context, static_labels, redact), measured two ways: on a bare record (the
// processors' own cost) and through the OpenTelemetry LoggerProvider (adds the SDK's LogRecord).
// Usage: node bench/parse.ts [lines] (default 500,000). Target: <= 3 µs per auth line.
import { readFileSync } from 'node:fs';
import type { AnyValue, Attributes, HrTime } from '@opentelemetry/api';
import { LoggerProvider, type LogRecordProcessor, type ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import { buildProcessors } from '../agent/processors/build.ts';

const total = Number(process.argv[2] ?? 500_000);
const lines = ['debian-ubuntu.log', 'rhel-rocky.log', 'alpine-busybox.log'].flatMap((f) =>
  readFileSync(new URL(`../test/fixtures/auth/${f}`, import.meta.url), 'utf8').split('\n').filter((l) => l !== ''),
);
const processors = buildProcessors({
  order: ['parse', 'user_context', 'static_labels', 'redact'],
  timezone: 'Europe/Berlin',
  labels: { team: 'platform' },
  passwd_file: '/etc/passwd',
  redaction: { rules: [] },
});

class BareRecord {
  hrTime: HrTime;
  hrTimeObserved: HrTime;
  attributes: Attributes;
  body: AnyValue;
  constructor(body: string, now: HrTime) {
    this.body = body;
    this.hrTime = now;
    this.hrTimeObserved = now;
    this.attributes = { 'ci_audit.dataset': 'auth', 'log.file.path': '/var/log/auth.log', 'log.offset': 0 };
  }
  setAttribute(key: string, value: AnyValue): this {
    this.attributes[key] = value;
    return this;
  }
  setAttributes(attributes: Attributes): this {
    for (const key in attributes) this.attributes[key] = attributes[key];
    return this;
  }
  setBody(body: AnyValue): this {
    this.body = body;
    return this;
  }
}

/** Wall and CPU nanoseconds per line. On a loaded machine (other processes on the cores) the CPU
 * time is the steadier figure: it counts only the time this process ran. */
interface Cost {
  wallNs: number;
  cpuNs: number;
}

function measure(n: number, run: () => void): Cost {
  const start = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  run();
  const used = process.cpuUsage(cpu);
  return { wallNs: Number(process.hrtime.bigint() - start) / n, cpuNs: ((used.user + used.system) * 1000) / n };
}

function bare(n: number): Cost {
  const now: HrTime = [Math.floor(Date.now() / 1000), 0];
  return measure(n, () => {
    for (let i = 0; i < n; i++) {
      const record = new BareRecord(lines[i % lines.length] ?? '', now) as unknown as ReadWriteLogRecord;
      for (const p of processors) p.onEmit(record);
    }
  });
}

function throughSdk(n: number): Cost {
  const sink: LogRecordProcessor = { onEmit: () => {}, forceFlush: async () => {}, shutdown: async () => {} };
  const logger = new LoggerProvider({ processors: [...processors, sink] }).getLogger('bench');
  return measure(n, () => {
    for (let i = 0; i < n; i++) {
      logger.emit({ body: lines[i % lines.length] ?? '', attributes: { 'ci_audit.dataset': 'auth', 'log.file.path': '/var/log/auth.log', 'log.offset': i } });
    }
  });
}

bare(Math.min(total, 50_000)); // warm-up
const bareCost = bare(total);
throughSdk(Math.min(total, 50_000));
const sdkCost = throughSdk(total);
const us = (ns: number): string => (ns / 1000).toFixed(2);
console.log(`parse: ${lines.length} distinct auth lines (Debian, Rocky, Alpine), ${total} records`);
console.log(`parse: processors only        ${us(bareCost.wallNs)} µs/line wall, ${us(bareCost.cpuNs)} µs/line CPU (target <= 3 µs)`);
console.log(`parse: through LoggerProvider ${us(sdkCost.wallNs)} µs/line wall, ${us(sdkCost.cpuNs)} µs/line CPU (includes the SDK's LogRecord)`);
