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

/**
 * Key names that hold a secret end in one of these. Of the names ending in `key`, only those with
 * a secret qualifier: `public_key`, `sort_key`, `primary_key`, `ssh_host_key`, `publickey` are
 * not secrets.
 */
const secretWords = String.raw`password|passphrase|secret|token|(?:api|access|private|secret|signing|encryption|master)[_-]?key|apikey|credentials?`;
/** A value: `"..."` (with escapes), `'...'` (an unclosed quote runs to the end), bare characters, or several joined. */
// A `\` at the very end escapes nothing and is taken as it is: were the quoted part to fail there,
// every `token=\"` of a line would scan to its end again (quadratic).
const quotedValue = String.raw`(?:"(?:[^"\\]|\\(?:[\s\S]|$))*(?:"|$)|'[^']*(?:'|$)|[^\s,;&"'])+`;

const rule = (name: string, source: string, flags = 'g', secretGroup = 0): RedactionRule => ({
  name,
  pattern: new RegExp(source, flags.includes('g') ? flags : `${flags}g`),
  secretGroup,
});

export const builtinRules: readonly RedactionRule[] = [
  rule('private_key', String.raw`-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)`),
  rule('aws_access_key_id', String.raw`\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b`),
  // `aws_secret_access_key = x`, `"aws_secret_key": "x"`, and `aws configure set aws_secret_access_key x`
  // (a space alone separates it only when spelt with underscores: the prefilter's `secret_`).
  rule('aws_secret_access_key', String.raw`((?:aws_?secret_?(?:access_?)?key["']?\s*[:=]|aws_secret_(?:access_)?key\s)\s*["']?)([A-Za-z0-9/+=]{40,})`, 'gi', 2),
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
  // The header stops at the next `eyJ`: a run of `eyJab-eyJab-...` is scanned once, not once per
  // `eyJ` (quadratic). A header holding `eyJ` itself is then matched from that `eyJ` on: the
  // payload and signature are still redacted.
  rule('jwt', String.raw`eyJ(?:(?!eyJ)[A-Za-z0-9_-]){5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{8,}`),
  // `scheme://user:password@host`, read as a URL is: the user info ends at the LAST `@` before the
  // first `/`, `?` or `#`, so the password may hold `@` and `:` (`p@ss:w0rd`) and the user name an
  // `@` (`bob@example.com:pw@host`), while an `@` in the path or query (`?email=bob@example.com`)
  // leaves the host alone. A password with an unencoded `/` (`app:pa/ss@db`, no URL, but written)
  // is taken to the first `@` within 256 characters, when the part before the `/` is no port.
  // Not `host:8080/path@x` (a port, then a path: registry references with a digest). Only the last
  // scheme character is matched: a scheme run (`a.a.a.a...`) is not rescanned at every position.
  rule('url_password', String.raw`([a-z0-9+.-]://[^:/\s[?#]*:)(?!\d{1,5}(?:[/?#]|$))((?=[^\s/?#]*@)[^\s/?#]*|(?![^\s/?#]*@)[^\s@]{1,256}?)(@)`, 'gi', 2),
  rule('authorization_header', String.raw`(\b(?:proxy-)?authorization["']?\s*[:=]\s*["']?(?:(?:bearer|basic|token|digest|negotiate|apikey)\s+)?)([^\s"',;]+)`, 'gi', 2),
  // `curl -u user:pass`, `wget --user=user:pass`: the password after the first colon; not ids
  // such as `docker run -u 1000:1000`. A leading space rather than `^` keeps the rule suffix-safe.
  rule('cli_user_password', String.raw`(\s(?:-u|--user|--proxy-user)(?:\s+|=)[^\s:'"]+:)(?!\d+(?:\s|$))([^\s'"]+)`, 'g', 2),
  rule('bearer_token', String.raw`(\bbearer\s+)([A-Za-z0-9._~+/-]{12,}=*)`, 'gi', 2),
  // `password=x`, `token: x`, `token:x`, `"client_secret":"x"`, `SECRET_KEY=x`: a key name that ends
  // in a secret word (see secretWords), any separator `=` or `:`; not `PWD=` (sudo's working
  // directory) nor words merely ending in "key" such as `publickey`, `public_key`, `sort_key`.
  // `passwd` takes a `:` only after a quote (`"passwd":"x"`): not pam's `pam_unix(passwd:chauthtok)`
  // nor nsswitch.conf's `passwd:  files systemd`. Ruby's `:password => 'x'` too.
  // The value: quoted segments (with `\"` escapes) and unquoted characters, joined as a shell joins
  // them (`'abc'def`); an unclosed quote runs to the end of the text. The match starts at the
  // secret word, not at the start of the key name: `[\w.-]*` there was quadratic on `a.a.a...`.
  rule('secret_pair', String.raw`((?:(?:${secretWords})\\?["']?\s*(?:=>?|:)|passwd(?:\\?["']?\s*=>?|\\?["']\s*:))\s*)(${quotedValue})`, 'gi', 2),
  // `mysql -pS3cret`, `mysql --password S3cret`, `docker login -u ci -p S3cret`, `openssl -passin pass:x`.
  // `-p` takes a password only after the mysql client's commands (glued to it; not a port mapping
  // such as docker's `-p3306:3306`) and after the `login` of a registry client (docker, podman,
  // buildah, skopeo, nerdctl, helm, oc, cf): elsewhere it is `mkdir -p`, `ssh -p 22`, `git log -p`.
  // The command must be at most 200 characters before `-p` in the same command (no `|`, `;`, `&`):
  // the scan is bounded.
  rule(
    'cli_password',
    String.raw`((?:\s--?pass(?:word|wd|in|out)?\s+|(?:^|[\s/])(?:mysql|mariadb|mysqldump|mysqladmin)\s[^|;&\n]{0,200}?\s-p(?!\d+:\d)|\b(?:docker|podman|buildah|skopeo|nerdctl|helm(?:\s+registry)?|oc|cf)\s+login\s[^|;&\n]{0,200}?-p(?:\s+|=)?)(?!-))(${quotedValue})`,
    'g',
    2,
  ),
];
