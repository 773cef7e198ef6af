// Per-partition log settings, named after Kafka's topic configs (segment.bytes, segment.ms,
// index.interval.bytes, max.message.bytes, retention.ms, retention.bytes, flush.ms,
// message.timestamp.type) with driftwood's naming: unit last.
import { DriftwoodError } from './errors.js';

export type TimestampType = 'CreateTime' | 'LogAppendTime';

export interface LogConfig {
  /** Roll to a new segment before one would grow past this (segment.bytes). */
  readonly segmentBytesMax: number;
  /** Roll a non-empty segment once it is this old (segment.ms). */
  readonly segmentAgeMsMax: number;
  /** Bytes of batches between two sparse index entries (index.interval.bytes). */
  readonly indexIntervalBytes: number;
  /** Largest batch accepted, header included (max.message.bytes). */
  readonly messageBytesMax: number;
  /** Delete sealed segments whose newest record is older than this; -1 keeps forever (retention.ms). */
  readonly retentionMs: number;
  /** Delete the oldest sealed segments while the log is larger than this; -1 = no limit (retention.bytes). */
  readonly retentionBytes: number;
  /**
   * fsync policy. 0: every append is synced before it resolves (group commit: appends that
   * arrive while a sync runs share the next one). N > 0: appends resolve once written, and
   * the log syncs at most N ms after the first unsynced byte (flush.ms).
   */
  readonly flushIntervalMs: number;
  /** With flushIntervalMs > 0, also sync as soon as this many bytes are unsynced (-1: no limit). */
  readonly flushUnsyncedBytesMax: number;
  /** CreateTime keeps the producer's timestamps; LogAppendTime stamps the broker's clock. */
  readonly timestampType: TimestampType;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const timestampTypes: readonly string[] = ['CreateTime', 'LogAppendTime'];

export const defaultLogConfig: LogConfig = {
  segmentBytesMax: 1024 * 1024 * 1024,
  segmentAgeMsMax: 7 * DAY_MS,
  indexIntervalBytes: 4096,
  messageBytesMax: 1024 * 1024 + 12,
  retentionMs: 7 * DAY_MS,
  retentionBytes: -1,
  flushIntervalMs: 1000,
  flushUnsyncedBytesMax: -1,
  timestampType: 'CreateTime',
};

/** The segment file format stores byte positions as unsigned 32-bit (as Kafka's does). */
export const SEGMENT_BYTES_LIMIT = 2 ** 31 - 1;
const SEGMENT_BYTES_MIN = 1024;

/** Merges `overrides` into the defaults and checks every value; throws INVALID_CONFIG. */
export function makeLogConfig(overrides: Partial<LogConfig> = {}): LogConfig {
  const config: LogConfig = { ...defaultLogConfig, ...overrides };
  checkInteger(config, 'segmentBytesMax', SEGMENT_BYTES_MIN, SEGMENT_BYTES_LIMIT);
  checkInteger(config, 'segmentAgeMsMax', 1, Number.MAX_SAFE_INTEGER);
  checkInteger(config, 'indexIntervalBytes', 0, SEGMENT_BYTES_LIMIT);
  checkInteger(config, 'messageBytesMax', 61, SEGMENT_BYTES_LIMIT);
  checkInteger(config, 'retentionMs', -1, Number.MAX_SAFE_INTEGER);
  checkInteger(config, 'retentionBytes', -1, Number.MAX_SAFE_INTEGER);
  checkInteger(config, 'flushIntervalMs', 0, Number.MAX_SAFE_INTEGER);
  checkInteger(config, 'flushUnsyncedBytesMax', -1, Number.MAX_SAFE_INTEGER);
  // Configs arrive from users and files at run time, whatever the type says.
  if (!timestampTypes.includes(config.timestampType)) {
    throw new DriftwoodError('INVALID_CONFIG', `timestampType must be CreateTime or LogAppendTime, got ${config.timestampType}`);
  }
  return config;
}

function checkInteger(config: LogConfig, name: keyof LogConfig, min: number, max: number): void {
  const value = config[name];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new DriftwoodError('INVALID_CONFIG', `${name} must be an integer from ${min} to ${max}, got ${String(value)}`, { config: name });
  }
}
