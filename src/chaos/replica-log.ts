// One replica's partition log as the chaos checks see it: the bytes of its segments back to
// back, cut at the high watermark, and the records in them. Replicas copy the leader's
// batches verbatim (offsets, leader epochs and CRCs included), so below the high watermark
// the bytes of every replica must be the same.
import assert from 'node:assert/strict';
import { CONTROL_FLAG, decodeBatch, lastOffsetOf } from '../../storage/record-batch.js';

export interface LogRecord {
  readonly offset: number;
  readonly value: string;
}

export interface ReplicaPrefix {
  /** The bytes of the whole batches below the high watermark. */
  readonly bytes: Buffer;
  readonly records: LogRecord[];
  /** The offset after the last batch in `bytes` (the high watermark when the replica has it all). */
  readonly endOffset: number;
  /** What is wrong with this replica's log below the high watermark, or null. */
  readonly problem: string | null;
}

/** Records one prefix holds at most (a bound on the checks' memory). */
const RECORDS_MAX = 10_000_000;

/** The part of `log` (segments concatenated in offset order) below `highWatermark`. */
export function prefixBelow(log: Buffer, highWatermark: number): ReplicaPrefix {
  assert.ok(Number.isSafeInteger(highWatermark) && highWatermark >= 0, 'the high watermark is an offset');
  const records: LogRecord[] = [];
  let pos = 0;
  let next = 0;
  while (next < highWatermark && pos < log.length) {
    let batch;
    try {
      batch = decodeBatch(log, pos);
    } catch (error) {
      return { bytes: log.subarray(0, pos), records, endOffset: next, problem: `a bad batch at byte ${pos} (offset ${next}): ${error instanceof Error ? error.message : String(error)}` };
    }
    const { header } = batch;
    if (header.baseOffset !== next) return { bytes: log.subarray(0, pos), records, endOffset: next, problem: `the batch at byte ${pos} starts at offset ${header.baseOffset}, expected ${next}` };
    const last = lastOffsetOf(header);
    if (last >= highWatermark) return { bytes: log.subarray(0, pos), records, endOffset: next, problem: `the batch ${header.baseOffset}..${last} straddles the high watermark ${highWatermark}` };
    if ((header.attributes & CONTROL_FLAG) === 0) {
      for (const record of batch.records) {
        assert.ok(records.length < RECORDS_MAX, 'a replica prefix holds at most RECORDS_MAX records');
        records.push({ offset: header.baseOffset + record.offsetDelta, value: record.value?.toString('utf8') ?? '' });
      }
    }
    pos += header.sizeBytes;
    next = last + 1;
  }
  const problem = next < highWatermark ? `the log ends at offset ${next}, below the high watermark ${highWatermark}` : null;
  return { bytes: log.subarray(0, pos), records, endOffset: next, problem };
}
