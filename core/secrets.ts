// The one place that knows how secrets look, so that none reaches a log line or an error message.

/** Removes credentials (user info) from a URL before it is logged or put in a message. */
export function redactUrl(url: string | URL): string {
  let parsed: URL;
  try {
    parsed = new URL(url.toString());
  } catch {
    // Not a URL: do not echo it back, it may be a secret pasted into the wrong option.
    return '<invalid url>';
  }
  if (parsed.username !== '' || parsed.password !== '') {
    parsed.username = parsed.password === '' ? '***' : parsed.username;
    parsed.password = parsed.password === '' ? '' : '***';
  }
  return parsed.toString();
}

/** Key names whose values are secrets wherever they appear in configuration or log objects. */
export const secretKeys = ['password', 'api_key', 'apiKey', 'token', 'authorization', 'enrollment_token', 'secret'] as const;

/** Paths for pino's `redact` option, covering secret keys up to two levels deep. */
export const loggerRedactPaths: string[] = secretKeys.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);
