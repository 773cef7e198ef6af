// Shared helpers for partition-log tests: batches made the way a producer makes them, and a
// log on the simulator's disk and clock.
import { SimDisk } from '../../sim/disk.js';
import { VirtualClock } from '../../sim/clock.js';
import type { LogConfig } from '../../storage/log-config.js';
import { PartitionLog } from '../../storage/partition-log.js';
import { buildBatch, decodeBatch, readBatchHeader } from '../../storage/record-batch.js';

/** A producer's batch of `count` records whose values name them: `${tag}-${i}`. */
export function makeBatch(tag: string, count: number, timestampMs = 1_700_000_000_000, valueBytes = 0): Buffer {
  const records = Array.from({ length: count }, (_, i) => ({
    key: Buffer.from(`k${i}`),
    value: Buffer.concat([Buffer.from(`${tag}-${i}`), Buffer.alloc(valueBytes, 0x61)]),
    timestampMs: timestampMs + i,
  }));
  return buildBatch(records);
}

/** Splits stored bytes into their batches. */
export function batchesOf(bytes: Buffer): Buffer[] {
  const batches: Buffer[] = [];
  for (let position = 0; position < bytes.length;) {
    const size = readBatchHeader(bytes, position).sizeBytes;
    batches.push(bytes.subarray(position, position + size));
    position += size;
  }
  return batches;
}

/** The values of every record in the stored bytes, as strings. */
export function valuesOf(bytes: Buffer): string[] {
  return batchesOf(bytes).flatMap((batch) => decodeBatch(batch).records.map((record) => (record.value ?? Buffer.alloc(0)).toString('utf8').replace(/a*$/, '')));
}

/** Reads the whole log from `from` with repeated reads. */
export async function readAll(log: PartitionLog, from = log.logStartOffset, bytesMax = 1 << 20): Promise<Buffer> {
  const parts: Buffer[] = [];
  let offset = from;
  while (offset < log.logEndOffset) {
    const result = await log.read(offset, { bytesMax });
    if (result.bytes.length === 0) throw new Error(`read at ${offset} returned nothing below the log end ${log.logEndOffset}`);
    parts.push(result.bytes);
    offset = result.nextOffset;
  }
  return Buffer.concat(parts);
}

export interface SimLog {
  disk: SimDisk;
  clock: VirtualClock;
  open: (config?: Partial<LogConfig>) => Promise<PartitionLog>;
}

export function simLog(defaults: Partial<LogConfig> = {}): SimLog {
  const disk = new SimDisk();
  const clock = new VirtualClock();
  return {
    disk,
    clock,
    open: (config = {}) => PartitionLog.open({ disk, dir: 'topic-0', clock, config: { ...defaults, ...config } }),
  };
}
