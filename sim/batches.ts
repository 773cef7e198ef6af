// Record batches as the simulator's clients and checkers read them: every batch decoded
// (CRC checked), each record with its offset and its value as text (values are unique
// strings the workload made).
import { SEGMENT_BYTES_LIMIT } from '../storage/log-config.js';
import { decodeBatch, splitBatches } from '../storage/record-batch.js';

export interface ReadBatch {
  readonly baseOffset: number;
  /** The offset after the batch's last record. */
  readonly nextOffset: number;
  readonly records: ReadonlyArray<{ readonly offset: number; readonly value: string }>;
}

export function readBatches(bytes: Buffer): ReadBatch[] {
  const batches: ReadBatch[] = [];
  let position = 0;
  for (const header of bytes.length === 0 ? [] : splitBatches(bytes, SEGMENT_BYTES_LIMIT)) {
    const decoded = decodeBatch(bytes, position);
    position += header.sizeBytes;
    const baseOffset = decoded.header.baseOffset;
    batches.push({
      baseOffset,
      nextOffset: baseOffset + decoded.header.lastOffsetDelta + 1,
      records: decoded.records.map((record) => ({ offset: baseOffset + record.offsetDelta, value: record.value?.toString('utf8') ?? '' })),
    });
  }
  return batches;
}
