// How the agent compresses its request bodies (`output.compression`, `output.compression_level`):
// the codecs, the levels each takes and the default. The configuration schema and the exporter both
// read them here; nothing else is imported, so the schema loads no agent code with it.

/** `output.compression`: gzip (the one the OTLP specification names), zstd, or none. */
export const compressionCodecs = ['gzip', 'zstd', 'none'] as const;
export type CompressionCodec = (typeof compressionCodecs)[number];

export const defaultCompressionCodec: CompressionCodec = 'gzip';

/**
 * `output.compression_level` when unset, for gzip and zstd alike. gzip at 1 costs the agent about 3
 * µs of CPU per auth line against 7 to 8 µs at zlib's default 6, for about 7% more bytes: on a
 * build runner the CPU is the scarcer of the two. zstd at 1 is both cheaper and smaller than at its
 * own default 3 on the agent's bodies (auth lines, 512 a request: 9,900 instructions a record
 * against 14,800, 67 bytes a record against 73; gzip at 1: 25,300 and 92).
 */
export const defaultCompressionLevel = 1;

/**
 * Highest level of each codec. zstd stops at 19: levels 20 to 22 use windows beyond the 8 MiB that
 * receivers of the HTTP `zstd` content coding need to accept (RFC 9659), and the aggregator
 * refuses larger ones.
 */
export const maxCompressionLevel: Record<Exclude<CompressionCodec, 'none'>, number> = { gzip: 9, zstd: 19 };
