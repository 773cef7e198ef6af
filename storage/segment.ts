// One segment of a partition log: `<baseOffset>.log` holding record batches back to back,
// with its sparse offset and time indexes (`.index`, `.timeindex`) in memory. Only the last
// segment of a log (the active one) is appended to; a sealed segment's files are final.
import assert from 'node:assert/strict';
import { BatchCursor } from './batch-cursor.js';
import type { Disk, DiskFile } from './disk.js';
import { joinPath } from './disk.js';
import { readWholeFile, writeFileAtomically } from './files.js';
import { SEGMENT_BYTES_LIMIT } from './log-config.js';
import { lastOffsetOf, validateBatch, type BatchHeader } from './record-batch.js';
import { OffsetIndex, TimeIndex } from './sparse-index.js';

export const LOG_SUFFIX = '.log';
export const OFFSET_INDEX_SUFFIX = '.index';
export const TIME_INDEX_SUFFIX = '.timeindex';
/** Bytes read at a time when scanning a whole segment (recovery, index rebuild). */
const SCAN_CHUNK_BYTES = 4 * 1024 * 1024;
/** Bytes read at a time when looking for one batch near an index entry. */
const LOCATE_CHUNK_BYTES = 64 * 1024;

export function segmentFileName(baseOffset: number, suffix: string): string {
  return `${String(baseOffset).padStart(20, '0')}${suffix}`;
}

/** The base offset named by a segment file name, or null if the name is not a segment's. */
export function parseSegmentFileName(name: string, suffix: string): number | null {
  if (!name.endsWith(suffix)) return null;
  const stem = name.slice(0, -suffix.length);
  if (!/^\d{20}$/.test(stem)) return null;
  const offset = Number(stem);
  return Number.isSafeInteger(offset) ? offset : null;
}

export class Segment {
  /** Bytes written and visible to readers; the file may be longer only while a write runs. */
  sizeBytes = 0;
  /** One past the last offset in this segment. */
  nextOffset: number;
  maxTimestampMs = -1;
  /** Timestamp of the first batch: the segment's age for rolling (Kafka's segment.ms rule). */
  firstBatchTimestampMs = -1;
  /** Bumped whenever bytes are cut from the segment, so a read racing the cut can retry. */
  generation = 0;
  private bytesSinceIndexEntry = 0;
  private offsetOfMaxTimestamp: number;
  private readers = 0;
  private closeWhenIdle = false;

  constructor(
    readonly dir: string,
    readonly baseOffset: number,
    readonly file: DiskFile,
    readonly offsetIndex: OffsetIndex,
    readonly timeIndex: TimeIndex,
  ) {
    this.nextOffset = baseOffset;
    this.offsetOfMaxTimestamp = baseOffset;
  }

  get isEmpty(): boolean {
    return this.sizeBytes === 0;
  }

  path(suffix: string): string {
    return joinPath(this.dir, segmentFileName(this.baseOffset, suffix));
  }

  /** Records a batch the log just wrote at `position` (in order, after the write). */
  onAppended(position: number, header: BatchHeader, indexIntervalBytes: number): void {
    assert.equal(position, this.sizeBytes, 'batches are appended back to back');
    assert.equal(header.baseOffset, this.nextOffset, 'offsets in a segment are dense');
    assert.ok(position + header.sizeBytes <= SEGMENT_BYTES_LIMIT);
    if (this.isEmpty) this.firstBatchTimestampMs = header.maxTimestamp;
    if (header.maxTimestamp > this.maxTimestampMs) {
      this.maxTimestampMs = header.maxTimestamp;
      this.offsetOfMaxTimestamp = header.baseOffset;
    }
    if (this.isEmpty || this.bytesSinceIndexEntry >= indexIntervalBytes) {
      this.offsetIndex.append(header.baseOffset, position);
      this.timeIndex.maybeAppend(this.maxTimestampMs, this.offsetOfMaxTimestamp);
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += header.sizeBytes;
    this.sizeBytes = position + header.sizeBytes;
    this.nextOffset = lastOffsetOf(header) + 1;
  }

  /** A byte position at or below the batch holding `offset`, from the index alone (no I/O; within an index interval). */
  indexedPositionOf(offset: number): number {
    return offset >= this.nextOffset ? this.sizeBytes : this.offsetIndex.lookup(offset).position;
  }

  /**
   * The byte position of the batch holding `offset` (or of the first batch after it), found
   * from the nearest index entry; `sizeBytes` when no batch in the segment is at or past it.
   */
  async positionOf(offset: number): Promise<{ position: number; header: BatchHeader | null }> {
    const start = this.offsetIndex.lookup(offset).position;
    const cursor = new BatchCursor(this.file, start, this.sizeBytes, LOCATE_CHUNK_BYTES);
    for (;;) {
      const step = await cursor.next(false);
      if (step === 'end') return { position: this.sizeBytes, header: null };
      if (step === 'torn') assert.fail(`segment ${this.baseOffset} has a torn batch below its written size`);
      if (lastOffsetOf(step.header) >= offset) return { position: step.position, header: step.header };
    }
  }

  /** Cuts the segment at `position` (a batch boundary), keeping the indexes true. */
  async truncateTo(position: number, nextOffset: number): Promise<void> {
    assert.ok(position >= 0 && position <= this.sizeBytes);
    this.generation += 1;
    await this.file.truncate(position);
    await this.file.sync();
    this.sizeBytes = position;
    this.nextOffset = nextOffset;
    this.offsetIndex.truncateToPosition(position);
    this.timeIndex.truncateToOffset(nextOffset);
    // The time index covers the batches up to the last offset index entry left; the few after
    // it are read (headers only) so the largest timestamp is exact: the producer state's
    // rebuild skips segments by it, and an underestimate would skip live producers.
    this.maxTimestampMs = this.timeIndex.lastTimestampMs() ?? -1;
    this.offsetOfMaxTimestamp = this.baseOffset;
    const cursor = new BatchCursor(this.file, this.offsetIndex.lastPosition(), position, LOCATE_CHUNK_BYTES);
    for (let step = await cursor.next(false); step !== 'end'; step = await cursor.next(false)) {
      assert.ok(step !== 'torn', `segment ${this.baseOffset} has a torn batch below its cut`);
      if (step.header.maxTimestamp <= this.maxTimestampMs) continue;
      this.maxTimestampMs = step.header.maxTimestamp;
      this.offsetOfMaxTimestamp = step.header.baseOffset;
    }
    this.bytesSinceIndexEntry = position - this.offsetIndex.lastPosition();
    if (position === 0) this.firstBatchTimestampMs = -1;
  }

  /** Makes the segment final: data synced, a last time index entry, index files written. */
  async seal(disk: Disk): Promise<void> {
    await this.file.sync();
    if (this.maxTimestampMs >= 0) this.timeIndex.maybeAppend(this.maxTimestampMs, this.offsetOfMaxTimestamp);
    await writeFileAtomically(disk, this.path(OFFSET_INDEX_SUFFIX), this.offsetIndex.serialize());
    await writeFileAtomically(disk, this.path(TIME_INDEX_SUFFIX), this.timeIndex.serialize());
  }

  /** Takes a reference for a read, so that deleting the segment waits to close its file. */
  acquire(): void {
    this.readers += 1;
  }

  async release(): Promise<void> {
    this.readers -= 1;
    assert.ok(this.readers >= 0);
    if (this.readers === 0 && this.closeWhenIdle) await this.file.close();
  }

  /** Closes the file now, or when the last read holding it ends. */
  async closeWhenUnused(): Promise<void> {
    this.closeWhenIdle = true;
    if (this.readers === 0) await this.file.close();
  }

  /**
   * Reads every batch from `position` to the end of the file, checking length, magic, CRC
   * and dense offsets, and records each valid one. Stops at the first batch that fails and
   * returns its position: what follows was never completely written (a torn tail).
   */
  async recover(fileBytes: number, indexIntervalBytes: number): Promise<{ validBytes: number; epochs: Array<{ epoch: number; offset: number }> }> {
    const cursor = new BatchCursor(this.file, this.sizeBytes, fileBytes, SCAN_CHUNK_BYTES);
    const epochs: Array<{ epoch: number; offset: number }> = [];
    for (;;) {
      const step = await cursor.next(true);
      if (step === 'end' || step === 'torn') break;
      if (!isIntact(step.buffer, step.bufferOffset, step.header.sizeBytes) || step.header.baseOffset !== this.nextOffset) break;
      const lastEpoch = epochs.at(-1)?.epoch ?? -1;
      if (step.header.partitionLeaderEpoch > lastEpoch) epochs.push({ epoch: step.header.partitionLeaderEpoch, offset: step.header.baseOffset });
      this.onAppended(step.position, step.header, indexIntervalBytes);
    }
    return { validBytes: this.sizeBytes, epochs };
  }

  /**
   * Loads a sealed segment's indexes and proves its tail: the batches from the last index
   * entry must run exactly to the end of the file and end at `nextOffset`. If the index
   * files are missing or damaged they are rebuilt from the log. A sealed segment was synced
   * before the next one was made, so a failure here is damage to synced data: the file is
   * closed and null returned, and the caller cuts the log at the first bad batch.
   */
  static async openSealed(disk: Disk, dir: string, baseOffset: number, nextOffset: number, indexIntervalBytes: number): Promise<Segment | null> {
    const file = await disk.open(joinPath(dir, segmentFileName(baseOffset, LOG_SUFFIX)), { create: false });
    const fileBytes = file.sizeBytes;
    const loaded = await loadIndexes(disk, dir, baseOffset, fileBytes, nextOffset);
    if (loaded !== null) {
      const segment = new Segment(dir, baseOffset, file, loaded.offsetIndex, loaded.timeIndex);
      if (await segment.adoptTail(fileBytes, nextOffset, loaded.timeIndex.lastTimestampMs() ?? -1)) return segment;
    }
    const segment = new Segment(dir, baseOffset, file, new OffsetIndex(baseOffset), new TimeIndex(baseOffset));
    await segment.recover(fileBytes, indexIntervalBytes);
    if (segment.sizeBytes === fileBytes && segment.nextOffset === nextOffset) return segment;
    await file.close();
    return null;
  }

  /** Walks from the last index entry to the end; true when the tail is whole and ends right. */
  private async adoptTail(fileBytes: number, nextOffset: number, maxTimestampMs: number): Promise<boolean> {
    const cursor = new BatchCursor(this.file, this.offsetIndex.lastPosition(), fileBytes, LOCATE_CHUNK_BYTES);
    let last: BatchHeader | null = null;
    for (;;) {
      const step = await cursor.next(false);
      if (step === 'torn') return false;
      if (step === 'end') break;
      last = step.header;
    }
    const endOffset = last === null ? this.baseOffset : lastOffsetOf(last) + 1;
    if (endOffset !== nextOffset) return false;
    this.sizeBytes = fileBytes;
    this.nextOffset = nextOffset;
    this.maxTimestampMs = maxTimestampMs;
    return true;
  }
}

function isIntact(buffer: Buffer, offset: number, sizeBytes: number): boolean {
  try {
    validateBatch(buffer, offset, sizeBytes, SEGMENT_BYTES_LIMIT);
    return true;
  } catch {
    return false;
  }
}

async function loadIndexes(disk: Disk, dir: string, baseOffset: number, fileBytes: number, nextOffset: number): Promise<{ offsetIndex: OffsetIndex; timeIndex: TimeIndex } | null> {
  const offsetBytes = await readWholeFile(disk, joinPath(dir, segmentFileName(baseOffset, OFFSET_INDEX_SUFFIX)));
  const timeBytes = await readWholeFile(disk, joinPath(dir, segmentFileName(baseOffset, TIME_INDEX_SUFFIX)));
  if (offsetBytes === null || timeBytes === null) return null;
  const offsetIndex = OffsetIndex.parse(offsetBytes, baseOffset, fileBytes);
  const timeIndex = TimeIndex.parse(timeBytes, baseOffset, nextOffset);
  if (offsetIndex === null || timeIndex === null) return null;
  if (fileBytes > 0 && offsetIndex.entryCount === 0) return null;
  return { offsetIndex, timeIndex };
}
