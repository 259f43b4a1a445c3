// What `ci-audit verify` reports. A finding is evidence that the stored trail differs from what
// the agents attested (exit 2); a notice is something the verifier could not vouch for, or a loss
// the agent itself declared (docs/integrity.md).

export type FindingKind = 'missing' | 'altered' | 'inserted' | 'reordered' | 'checkpoint_mismatch' | 'signature_invalid' | 'tail_missing';

export interface Finding {
  kind: FindingKind;
  agent: string;
  /** The record's (or checkpoint's) sequence number; the first of a range. */
  seq: number;
  /** Last sequence number of a range (missing, tail_missing). */
  last_seq?: number;
  '@timestamp'?: string;
  _id?: string;
  _index?: string;
  /** For `altered`: the document fields that differ from the attested record. */
  fields?: string[];
  detail: string;
}

export type NoticeKind =
  | 'declared_gap'
  | 'superseded'
  | 'not_signed'
  | 'no_public_key'
  | 'link_unchecked';

export interface Notice {
  kind: NoticeKind;
  agent: string;
  seq?: number;
  last_seq?: number;
  detail: string;
}

/** Where the checker sends what it finds, in the order it finds it. */
export interface VerifySink {
  finding(finding: Finding): void;
  notice(notice: Notice): void;
}
