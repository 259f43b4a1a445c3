// The built-in rules' prefilter: one scan that proves no built-in rule (rules.ts) can match in a
// text, so that the rules need not run on it.
//
// Every alternative starts at a character ordinary log text holds a few times a line at most (an
// anchor: `=` `:` `-` `_` `.` `A` `G` `J` `~` `b` `B`), and looks around it for a literal of the
// rule it stands for. The regular expression engine passes the characters between anchors without
// trying any alternative. The alternation this replaced started at common letters (`a`, `s`, `t`,
// `p`, ...), so it tried alternatives at most characters of a line and cost three times as much.
// (A hand-written scan in JavaScript was measured too: slower than either.)
//   `=` `:`  right after (but for a `\`, a quote and spaces) a word a value is assigned to (`key`,
//            `password`, `token`, ...): aws_secret_access_key, azure_storage_key,
//            azure_sas_signature, npm_auth_token, authorization_header, secret_pair.
//            `://` then an `@` before the next space: url_password; `://hooks.slack.com/`: slack_webhook.
//   `-`      `-----` (private_key), `-u`, `--user`, `--proxy-user` then a name and a colon
//            (cli_user_password), `--password `, `-passin ` and a `-p` after mysql, mariadb or login
//            (cli_password), after `xox?` (slack_token) or `gl` and 2 to 5 letters (gitlab_token).
//   `_`      after `gh[pousr]`, `github` (github_token), `npm` (npm_token), `rk`, `sk` (stripe_key),
//            `secret` (aws_secret_access_key followed by a space).
//   `.`      after `SG` (sendgrid_key), `ya29` (gcp_oauth_token).
//   `A`      AWS key id prefixes `AKIA`... (aws_access_key_id), `AIza` (gcp_api_key).
//   `G`      `GR1348941` (gitlab_token).  `J` after `ey` (jwt).  `~` after a digit and `Q` (azure_client_secret).
//   `b` `B`  `bearer` and a space, in any case (bearer_token).
// The case-sensitive rules have case-sensitive alternatives here; the case-insensitive ones spell
// out both cases (`[Kk][Ee][Yy]`): the `i` flag would make `a` an anchor too.
//
// A test keeps it a superset of every rule on generated texts. Its lookarounds look only at the
// text's own characters and it has no `^`, `$` or `\b`: what it rejects in a text it rejects in every
// part of it, which the redaction processor relies on for the fields the parsers cut from a line.

/** `word` in any case (the rules that name words are case-insensitive). */
const anyCase = (word: string): string => [...word].map((c) => `[${c.toUpperCase()}${c}]`).join('');
/**
 * Words a value is assigned to: each rule that assigns (aws_secret_access_key, azure_storage_key,
 * azure_sas_signature, npm_auth_token, authorization_header, secret_pair) has one of them right
 * before its optional quote, spaces and separator.
 */
const assignedWords = ['key', 'authorization', 'auth', 'sig', 'token', 'password', 'passwd', 'passphrase', 'secret', 'credential', 'credentials'].map(anyCase).join('|');
/**
 * The words whose rules take a bare `:` (aws_secret_access_key, authorization_header, secret_pair's
 * `token:x`); the others want `: `, or a quote before the colon (`"passwd":"x"`): pam's
 * `pam_unix(passwd:chauthtok)` stays clean.
 */
const bareColonWords = ['key', 'authorization', 'token', 'password', 'passphrase', 'secret', 'credential', 'credentials'].map(anyCase).join('|');
/** Looking back from the separator just consumed: one of `words`, an optional `\` and quote, and spaces. */
const assigned = (words: string, separator: string, quote = `["']?`): string => String.raw`(?<=(?:${words})\\?${quote}\s*${separator})`;

const alternatives = [
  `=${assigned(assignedWords, '=')}`,
  // `://` then an `@` before white space or the next `//`: the scan of one URL ends where the next
  // starts, so a run of `a://a://...` is not rescanned from each `://`.
  // The word lookbehinds only after a letter, quote, `\` or space: most colons of a log line follow
  // a digit (the clock) or `]` (the tag), and one character settles them.
  String.raw`:(?:(?<=[A-Za-z"'\\\s]:)(?:${assigned(bareColonWords, ':')}|${assigned(assignedWords, ':', `["']`)}|(?=\s)${assigned(assignedWords, ':')})|\/\/(?:hooks\.slack\.com\/|(?:[^\s/@]|\/(?!\/))*@))`,
  // `-u`, `--user` only after white space (as the rule has it): the user name's scan then ends at
  // the next white space, not at the end of a run of `-u=a-u=a...`. cli_password: `--password `,
  // `-passin `, and `-p` within 200 characters after mysql, mariadb or login.
  String.raw`-(?:----|(?<=\s-)(?:u|-user|-proxy-user)(?:\s+|=)[^\s:]+:|-?pass(?:word|wd|in|out)?\s|p(?<=(?:mysql|mariadb|login)[^|;&\n]{0,200}\s-p)|(?<=xox.-|gl[a-z]{2,5}-))`,
  String.raw`_(?<=gh[pousr]_|github_|npm_|[rs]k_|[Ss][Ee][Cc][Rr][Ee][Tt]_)`,
  String.raw`\.(?<=SG\.|ya29\.)`,
  String.raw`A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA|PKA|Iza)`,
  'GR1348941',
  'J(?<=eyJ)',
  String.raw`~(?<=\dQ~)`,
  String.raw`[Bb][Ee][Aa][Rr][Ee][Rr]\s`,
];

const builtinPrefilter = new RegExp(alternatives.join('|'));

/** False only when no built-in rule can match in `text` (nor in any part of it). */
export function mayHoldBuiltinSecret(text: string): boolean {
  return builtinPrefilter.test(text);
}
