// The attributes the agent gives a parsed sshd "Accepted publickey" line, built by the agent's own
// parser: the file source's four, then what the sshd parser adds and the parse status (26 in all;
// the chain adds its three after hashing). Shared by the rounds scripts that count the canonical
// writer's and the OTLP encoder's instructions, so that both measure the same records.
import type { Attributes } from '@opentelemetry/api';
import { parseRecordInto } from '../../agent/processors/parse-record.ts';
import { timeZoneResolver } from '../../agent/processors/syslog/time.ts';
import { agentAttributes } from '../../test/unit/aggregator/otlp-fixtures.ts';

const utc = timeZoneResolver('UTC');

/** The attributes the agent hashes for line `id`: the file source's, then the parse processor's. */
export function parsedSshdAttributes(id: number): Attributes {
  const line = `Nov 27 07:49:15 runner-01 sshd[2811]: Accepted publickey for deploy from 203.0.113.17 port ${50000 + (id % 10000)} ssh2: ED25519 SHA256:Xk3b${id}Q9mZx8w1p0Lr2vYt7uHc6sNa5eFd4gJk3iOl`;
  const attributes: Attributes = agentAttributes('auth', `f0c1a2b3:${120 * id}`, '/var/log/auth.log', 120 * id);
  const outcome = parseRecordInto(line, attributes, 1795688521000, utc, attributes);
  attributes['ci_audit.parse.status'] = outcome.status;
  if (outcome.parser !== undefined) attributes['ci_audit.parser'] = outcome.parser;
  return attributes;
}
