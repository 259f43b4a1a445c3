// Built-in secret shapes. Each rule names what it finds; the marker `[REDACTED:<name>]` replaces
// the secret (only the secret: the key name of a `password=...` pair stays, so a reader still sees
// that a password was there). Where a rule has a `secretGroup`, only that capture group is replaced.
// A rule needs its anchor in the prefilter (prefilter.ts) too: without one its corpus line in the
// redaction test is not redacted.

export interface RedactionRule {
  name: string;
  pattern: RegExp;
  /** Capture group holding the secret; 0 (default) replaces the whole match. */
  secretGroup?: number;
}

const rule = (name: string, source: string, flags = 'g', secretGroup = 0): RedactionRule => ({
  name,
  pattern: new RegExp(source, flags.includes('g') ? flags : `${flags}g`),
  secretGroup,
});

export const builtinRules: readonly RedactionRule[] = [
  rule('private_key', String.raw`-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)`),
  rule('aws_access_key_id', String.raw`\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b`),
  rule('aws_secret_access_key', String.raw`(aws_?secret_?(?:access_?)?key["']?\s*[:=]\s*["']?)([A-Za-z0-9/+=]{40,})`, 'gi', 2),
  rule('gcp_api_key', String.raw`\bAIza[0-9A-Za-z_-]{35}`),
  rule('gcp_oauth_token', String.raw`\bya29\.[0-9A-Za-z_-]{20,}`),
  rule('azure_storage_key', String.raw`(AccountKey=)([A-Za-z0-9+/]{40,100}={0,2})`, 'gi', 2),
  rule('azure_sas_signature', String.raw`([?&]sig=)([A-Za-z0-9%+/=]{20,})`, 'gi', 2),
  rule('azure_client_secret', String.raw`\b[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}`),
  rule('github_token', String.raw`\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})`),
  rule('gitlab_token', String.raw`\b(?:gl(?:pat|dt|rt|ptt|cbt|ft|imt|soat|agent|oas)-[A-Za-z0-9_-]{20,}|GR1348941[A-Za-z0-9_-]{20,})`),
  rule('npm_token', String.raw`\bnpm_[A-Za-z0-9]{36}\b`),
  rule('npm_auth_token', String.raw`(_auth(?:Token)?\s*=\s*)(\S+)`, 'gi', 2),
  rule('slack_token', String.raw`\bxox[abposre]-[A-Za-z0-9-]{10,}`),
  rule('slack_webhook', String.raw`https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_-]+`),
  rule('stripe_key', String.raw`\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}`),
  rule('sendgrid_key', String.raw`\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}`),
  rule('jwt', String.raw`\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{8,}`),
  rule('url_password', String.raw`(\b[a-z][a-z0-9+.-]*://[^:/\s@[]*:)([^@/\s]+)(@)`, 'gi', 2),
  rule('authorization_header', String.raw`(\b(?:proxy-)?authorization["']?\s*[:=]\s*["']?(?:(?:bearer|basic|token|digest|negotiate|apikey)\s+)?)([^\s"',;]+)`, 'gi', 2),
  // `curl -u user:pass`, `wget --user=user:pass`: the password after the first colon; not ids
  // such as `docker run -u 1000:1000`. A leading space rather than `^` keeps the rule suffix-safe.
  rule('cli_user_password', String.raw`(\s(?:-u|--user|--proxy-user)(?:\s+|=)[^\s:'"]+:)(?!\d+(?:\s|$))([^\s'"]+)`, 'g', 2),
  rule('bearer_token', String.raw`(\bbearer\s+)([A-Za-z0-9._~+/-]{12,}=*)`, 'gi', 2),
  // `password=x`, `token: x`, `"client_secret": "x"`; not `PWD=` (sudo's working directory) nor
  // words merely ending in "key" such as `publickey`.
  rule(
    'secret_pair',
    String.raw`(\b[\w.-]*(?:password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credentials?)["']?\s*(?:=|:\s)\s*)("[^"]*"|'[^']*'|[^\s,;&"']+)`,
    'gi',
    2,
  ),
];
