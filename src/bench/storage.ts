// `driftwood bench storage`: how close the partition log comes to the disk it writes on.
// It appends 100-byte records in 16 KiB batches for ~1 GiB through the real log (NodeDisk,
// flush every second) with several appends in flight, as a broker sees from concurrent
// producers; appends the same again one at a time (a lone producer); and writes the same bytes
// with plain sequential fs writes of the same size (fsync every second). The three take turns.
// Then it reads the log back after reopening it with the page cache dropped where the kernel
// allows it. The ratio append/raw is the figure of merit.
import { mkdir, open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { NodeDisk } from '../../storage/node-disk.js';
import { nodeClock } from '../../storage/node-clock.js';
import { PartitionLog } from '../../storage/partition-log.js';
import { buildBatch } from '../../storage/record-batch.js';

export interface StorageBenchOptions {
  readonly dir: string;
  readonly totalBytes: number;
  readonly batchBytes: number;
  readonly recordBytes: number;
  readonly flushIntervalMs: number;
  /** Appends kept in flight at once (concurrent producers); 1 = each awaited in turn. */
  readonly appendsInFlight: number;
  readonly progress: (line: string) => void;
}

export interface StorageBenchResult {
  machine: string;
  totalBytes: number;
  batchBytes: number;
  recordBytes: number;
  records: number;
  batches: number;
  appendsInFlight: number;
  fsyncPolicy: string;
  appendMBps: number;
  rawMBps: number;
  ratio: number;
  recordsPerSec: number;
  /** The same appends one at a time, each awaited before the next (a lone producer). */
  singleAppender: { appendMBps: number; ratio: number };
  recoveryOpenMs: number;
  pageCacheDropped: boolean;
  readMBps: number;
}

const MB = 1e6;
const PROGRESS_INTERVAL_MS = 2000;
/** Distinct batches cycled through, so the bench does not write one buffer over and over. */
const BATCH_POOL_SIZE = 64;
/** Turns raw writes and log appends take; more rounds, finer interleaving. */
const INTERLEAVE_ROUNDS = 8;

export async function benchStorage(options: StorageBenchOptions): Promise<StorageBenchResult> {
  const pool = makeBatchPool(options);
  const batchCount = Math.max(1, Math.round(options.totalBytes / (pool[0]?.length ?? 1)));
  const recordsPerBatch = recordsPerBatchFor(options);
  await rm(options.dir, { recursive: true, force: true });
  await mkdir(options.dir, { recursive: true });
  try {
    const { raw, append, single } = await timeInterleaved(options, pool, batchCount);
    const bytes = append.bytes;
    const read = await timeRead(options, bytes);
    const appendMBps = bytes / MB / append.seconds;
    const rawMBps = raw.bytes / MB / raw.seconds;
    return {
      machine: machineNote(),
      totalBytes: bytes,
      batchBytes: pool[0]?.length ?? 0,
      recordBytes: options.recordBytes,
      records: batchCount * recordsPerBatch,
      batches: batchCount,
      appendsInFlight: options.appendsInFlight,
      fsyncPolicy: options.flushIntervalMs === 0 ? 'every append (group commit)' : `every ${options.flushIntervalMs} ms`,
      appendMBps: round(appendMBps),
      rawMBps: round(rawMBps),
      ratio: round(appendMBps / rawMBps, 3),
      recordsPerSec: Math.round((batchCount * recordsPerBatch) / append.seconds),
      singleAppender: { appendMBps: round(single.mbps()), ratio: round(single.mbps() / rawMBps, 3) },
      recoveryOpenMs: round(read.openMs),
      pageCacheDropped: read.pageCacheDropped,
      readMBps: round(read.bytes / MB / read.seconds),
    };
  } finally {
    await rm(options.dir, { recursive: true, force: true });
  }
}

/** Records that fit a batch: the 61-byte header, then ~recordBytes + 10 bytes of record framing each. */
function recordsPerBatchFor(options: StorageBenchOptions): number {
  return Math.max(1, Math.floor((options.batchBytes - 61) / (options.recordBytes + 10)));
}

function makeBatchPool(options: StorageBenchOptions): Buffer[] {
  const recordsPerBatch = recordsPerBatchFor(options);
  const pool: Buffer[] = [];
  for (let b = 0; b < BATCH_POOL_SIZE; b += 1) {
    const records = Array.from({ length: recordsPerBatch }, (_, i) => ({
      key: null,
      value: Buffer.alloc(options.recordBytes, (b * 31 + i) % 251),
      timestampMs: Date.now(),
    }));
    pool.push(buildBatch(records));
  }
  return pool;
}

/**
 * Raw writes, concurrent log appends and single log appends take turns in rounds, the order
 * rotated and reversed each round, so the machine's drift (page-cache writeback, a noisy
 * neighbour) falls on all alike. Each turn ends with its own sync, inside its time: no side
 * leaves dirty pages for another to pay for.
 */
async function timeInterleaved(options: StorageBenchOptions, pool: Buffer[], batchCount: number): Promise<{ raw: Phase; append: Phase; single: Phase }> {
  const raw = await RawWriter.open(join(options.dir, 'raw.bin'), options.flushIntervalMs);
  const append = await LogAppender.open(options, 'bench-0', options.appendsInFlight);
  const single = await LogAppender.open(options, 'bench-1', 1);
  const progress = progressPrinter(options.progress);
  const rounds = Math.min(INTERLEAVE_ROUNDS, batchCount);
  const sides = [raw, append, single];
  for (let round = 0; round < rounds; round += 1) {
    const from = Math.floor((batchCount * round) / rounds);
    const to = Math.floor((batchCount * (round + 1)) / rounds);
    const rotated = [...sides.slice(round % 3), ...sides.slice(0, round % 3)];
    for (const side of round % 2 === 0 ? rotated : rotated.reverse()) await side.write(pool, from, to);
    progress(`round ${round + 1}/${rounds}: raw ${raw.phase.mbps().toFixed(1)} MB/s, log ${append.phase.mbps().toFixed(1)} MB/s, single appender ${single.phase.mbps().toFixed(1)} MB/s`);
  }
  await raw.close();
  await append.close();
  await single.close();
  await rm(join(options.dir, 'raw.bin'));
  await rm(join(options.dir, 'bench-1'), { recursive: true });
  return { raw: raw.phase, append: append.phase, single: single.phase };
}

/** Bytes written and seconds spent on one side of the comparison. */
class Phase {
  bytes = 0;
  seconds = 0;

  async time(task: () => Promise<number>): Promise<void> {
    const start = performance.now();
    this.bytes += await task();
    this.seconds += (performance.now() - start) / 1000;
  }

  mbps(): number {
    return this.seconds === 0 ? 0 : this.bytes / MB / this.seconds;
  }
}

/** Plain sequential writes of the same bytes, one write per batch, fsync once per flush interval. */
class RawWriter {
  readonly phase = new Phase();
  private position = 0;
  private lastSyncMs = performance.now();

  private constructor(private readonly file: FileHandle, private readonly flushIntervalMs: number) {}

  static async open(path: string, flushIntervalMs: number): Promise<RawWriter> {
    return new RawWriter(await open(path, 'w'), flushIntervalMs);
  }

  async write(pool: Buffer[], from: number, to: number): Promise<void> {
    await this.phase.time(async () => {
      let bytes = 0;
      for (let i = from; i < to; i += 1) {
        const batch = pool[i % pool.length] ?? Buffer.alloc(0);
        await this.file.write(batch, 0, batch.length, this.position);
        this.position += batch.length;
        bytes += batch.length;
        if (this.flushIntervalMs === 0 || performance.now() - this.lastSyncMs >= this.flushIntervalMs) {
          await this.file.datasync();
          this.lastSyncMs = performance.now();
        }
      }
      await this.file.datasync();
      this.lastSyncMs = performance.now();
      return bytes;
    });
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}

/** The same batches through the partition log, `appendsInFlight` at a time. */
class LogAppender {
  readonly phase = new Phase();
  // The log stamps offsets into the bytes it is given, so each in-flight append owns a copy.
  private readonly buffers: Buffer[];

  private constructor(private readonly log: PartitionLog, appendsInFlight: number, batchBytes: number) {
    this.buffers = Array.from({ length: appendsInFlight }, () => Buffer.alloc(batchBytes));
  }

  static async open(options: StorageBenchOptions, dir: string, appendsInFlight: number): Promise<LogAppender> {
    const log = await openBenchLog(options, dir);
    return new LogAppender(log, appendsInFlight, makeBatchPool(options)[0]?.length ?? 0);
  }

  async write(pool: Buffer[], from: number, to: number): Promise<void> {
    await this.phase.time(async () => {
      let next = from;
      let bytes = 0;
      const worker = async (buffer: Buffer): Promise<void> => {
        for (let i = next++; i < to; i = next++) {
          const batch = pool[i % pool.length] ?? Buffer.alloc(0);
          batch.copy(buffer);
          await this.log.append(buffer.subarray(0, batch.length), { leaderEpoch: 0 });
          bytes += batch.length;
        }
      };
      await Promise.all(this.buffers.map(worker));
      await this.log.flush();
      return bytes;
    });
  }

  async close(): Promise<void> {
    await this.log.close();
  }
}

function openBenchLog(options: StorageBenchOptions, dir: string): Promise<PartitionLog> {
  return PartitionLog.open({ disk: new NodeDisk(options.dir), dir, clock: nodeClock, config: { flushIntervalMs: options.flushIntervalMs } });
}

/** Reopens the log (recovery scans the active segment) and reads it all back, 1 MiB at a time. */
async function timeRead(options: StorageBenchOptions, expectedBytes: number): Promise<{ bytes: number; seconds: number; openMs: number; pageCacheDropped: boolean }> {
  const progress = progressPrinter(options.progress);
  // Cold open: recovery scans the active segment from disk. Then cold again for the reads,
  // or they would find the pages the recovery scan just brought in.
  let pageCacheDropped = await dropPageCache();
  const openStart = performance.now();
  const log = await openBenchLog(options, 'bench-0');
  const openMs = performance.now() - openStart;
  pageCacheDropped = (await dropPageCache()) && pageCacheDropped;
  const start = performance.now();
  let offset = log.logStartOffset;
  let bytes = 0;
  while (offset < log.logEndOffset) {
    const result = await log.read(offset, { bytesMax: 1024 * 1024 });
    bytes += result.bytes.length;
    offset = result.nextOffset;
    progress(`read back ${(bytes / MB).toFixed(0)} MB, ${(bytes / MB / ((performance.now() - start) / 1000)).toFixed(1)} MB/s`);
  }
  const seconds = (performance.now() - start) / 1000;
  await log.close();
  if (bytes !== expectedBytes) throw new Error(`read back ${bytes} bytes of ${expectedBytes}`);
  return { bytes, seconds, openMs, pageCacheDropped };
}

/** Asks the kernel to drop clean page-cache pages (root only); false where it may not. */
async function dropPageCache(): Promise<boolean> {
  try {
    await writeFile('/proc/sys/vm/drop_caches', '1\n');
    return true;
  } catch {
    return false;
  }
}

/** Prints at most one line per PROGRESS_INTERVAL_MS. */
function progressPrinter(print: (line: string) => void): (line: string) => void {
  let lastMs = performance.now();
  return (line) => {
    const now = performance.now();
    if (now - lastMs < PROGRESS_INTERVAL_MS) return;
    lastMs = now;
    print(line);
  };
}

function machineNote(): string {
  const cpus = os.cpus();
  return `${cpus.length} x ${cpus[0]?.model ?? 'unknown cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${process.platform} ${process.arch}, node ${process.version}`;
}

function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
