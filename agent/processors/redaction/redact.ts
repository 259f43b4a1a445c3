// Applies redaction rules to text. Pure: the same text and rules give the same result.
import { mayHoldBuiltinSecret } from './prefilter.ts';
import { builtinRules, type RedactionRule } from './rules.ts';

export interface Redactor {
  /** The text with every secret replaced by `[REDACTED:<rule>]`, and the rules that fired (empty: unchanged). */
  redact(text: string): { text: string; rules: string[] };
  /**
   * True when no rule can match in a suffix of a text (starting after a non-word character) what it
   * did not match in the whole text: no `^`, lookbehind or sticky/multiline rule. The built-in rules are.
   */
  readonly suffixSafe: boolean;
  /**
   * False only when neither `text` nor any part of it can hold a secret (prefilter.ts: what the
   * built-in prefilter rejects in a text it rejects in every part of it). Always true with custom
   * rules (they have no prefilter).
   */
  mayHoldSecret(text: string): boolean;
}

export function marker(ruleName: string): string {
  return `[REDACTED:${ruleName}]`;
}

/** Built-in rules first, then `custom` (from config); custom rules always run (no prefilter). */
export function createRedactor(custom: readonly RedactionRule[] = []): Redactor {
  const apply = (text: string, rules: readonly RedactionRule[], fired: string[]): string => {
    let out = text;
    for (const r of rules) {
      r.pattern.lastIndex = 0;
      if (!r.pattern.test(out)) continue;
      r.pattern.lastIndex = 0;
      const group = r.secretGroup ?? 0;
      out = out.replace(r.pattern, (...args: unknown[]) => {
        const match = args[0] as string;
        if (group === 0) return marker(r.name);
        // Keep the text around the secret group: prefix groups before it, suffix groups after it.
        const groups = args.slice(1, -2).filter((g): g is string | undefined => typeof g === 'string' || g === undefined);
        const secret = groups[group - 1] ?? '';
        if (secret === '' || secret.includes('[REDACTED:')) return match;
        const before = groups.slice(0, group - 1).join('');
        const after = match.slice(before.length + secret.length);
        return `${before}${marker(r.name)}${after}`;
      });
      if (out !== text && !fired.includes(r.name)) fired.push(r.name);
      text = out;
    }
    return out;
  };
  const suffixSafe = custom.every((r) => !/\^|\(\?<[=!]/.test(r.pattern.source) && !r.pattern.multiline && !r.pattern.sticky);
  /** The last text the prefilter rejected. */
  let lastScreened: string | undefined;
  return {
    suffixSafe,
    mayHoldSecret(text) {
      if (custom.length > 0) return true;
      // The processor asks more than once about the same line: the answer is known.
      if (text === lastScreened) return false;
      if (mayHoldBuiltinSecret(text)) return true;
      lastScreened = text;
      return false;
    },
    redact(text) {
      const fired: string[] = [];
      let out = text;
      if (mayHoldBuiltinSecret(text)) out = apply(out, builtinRules, fired);
      else lastScreened = text;
      if (custom.length > 0) out = apply(out, custom, fired);
      return { text: out, rules: fired };
    },
  };
}

/** A rule from config: `pattern` is a JavaScript regular expression source; `group` the secret's capture group. */
export function customRule(name: string, pattern: string, group = 0): RedactionRule {
  return { name, pattern: new RegExp(pattern, 'g'), secretGroup: group };
}
