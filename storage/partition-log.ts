// The partition log: an append-only sequence of record batches split into segments, the
// storage engine every other part of driftwood writes through (DESIGN.md, Partition log).
//
// Concurrency: appends are queued and written by one "write round" at a time; a round takes
// every append queued so far, assigns their offsets, writes them with one writev, and (when
// the flush policy says so) syncs once for all of them. That is group commit: appends that
// arrive while a round runs share the next round's write and fsync. Truncation, rolling,
// retention and close run under the same lock, so they never interleave with a round.
// Reads take no lock: they see only bytes whose write completed (a segment's sizeBytes moves
// after the write), and retry if a truncation cut the segment under them.
//
// Crash safety (what recovery relies on):
// - Only the last segment is ever written. Before the next segment is made, the old one is
//   synced and its indexes written, so sealed segments are whole; recovery scans only the
//   last one, batch by batch, and cuts the torn tail.
// - The leader-epoch checkpoint is persisted before a batch of a new epoch is written, so it
//   can only be ahead of the log, and recovery trims it to the log end.
// - Segment files are created and removed one at a time, each followed by a sync of the
//   directory, so after a crash the segments on disk are always one contiguous run.
// - Damage found at open (a batch that fails its checks, in any segment the open scans) cuts
//   the log at the first bad batch: the segments after the damaged one are deleted last
//   first, then the damaged one is recovered as the active segment and cut there. A crash
//   midway leaves a shorter contiguous run that the next open cuts the same way. The
//   replica then fetches what it lost from the leader (recovery reports what was cut).
import assert from 'node:assert/strict';
import type { Clock, TimerHandle } from './clock.js';
import type { Disk } from './disk.js';
import { joinPath } from './disk.js';
import { DriftwoodError } from './errors.js';
import { LeaderEpochCache, type EpochEntry } from './leader-epoch-cache.js';
import { makeLogConfig, type LogConfig } from './log-config.js';
import { Mutex } from './mutex.js';
import {
  BATCH_HEADER_BYTES,
  decodeBatch,
  lastOffsetOf,
  readBatchHeader,
  setBaseOffset,
  setLogAppendTime,
  setPartitionLeaderEpoch,
  splitBatches,
  type BatchHeader,
} from './record-batch.js';
import { LOG_SUFFIX, OFFSET_INDEX_SUFFIX, parseSegmentFileName, Segment, segmentFileName, TIME_INDEX_SUFFIX } from './segment.js';
import { OffsetIndex, TimeIndex } from './sparse-index.js';
import { BatchCursor } from './batch-cursor.js';
import { ignoredDurations, type DurationSink } from './observe.js';

export interface PartitionLogOptions {
  readonly disk: Disk;
  /** The partition's directory on the disk, e.g. 'orders-3'. */
  readonly dir: string;
  readonly clock: Clock;
  readonly config?: Partial<LogConfig>;
  /** The first offset of a new, empty log. */
  readonly initialOffset?: number;
  /** Where each fsync of the active segment reports its duration (fsync latency metric). */
  readonly fsyncDurations?: DurationSink;
  /**
   * Told once, synchronously, when an I/O error takes the log offline (every later call is
   * refused until the log is opened again). It must not wait on the log.
   */
  readonly onFailure?: (failure: DriftwoodError) => void;
}

export interface AppendResult {
  readonly baseOffset: number;
  readonly lastOffset: number;
  readonly recordCount: number;
  /** The broker's timestamp when the topic uses LogAppendTime, else -1. */
  readonly logAppendTimeMs: number;
}

export interface ReadOptions {
  /** Soft limit: whole batches up to this many bytes, but always the first batch whole. */
  readonly bytesMax: number;
  /** Exclusive upper bound on offsets returned (the high watermark for consumers). */
  readonly offsetEnd?: number;
}

export interface ReadResult {
  /** Whole record batches, back to back, as stored. */
  readonly bytes: Buffer;
  /** The offset after the last batch returned; the requested offset when none was. */
  readonly nextOffset: number;
  readonly logStartOffset: number;
  readonly logEndOffset: number;
}

export interface SegmentInfo {
  readonly baseOffset: number;
  readonly nextOffset: number;
  readonly sizeBytes: number;
  readonly maxTimestampMs: number;
}

export interface RecoveryReport {
  /** Bytes removed at open: the bad tail of the damaged segment and every segment after it. */
  readonly truncatedBytes: number;
  readonly segmentCount: number;
  /** The log end offset after recovery. */
  readonly endOffset: number;
  /** What the open found broken, or null when every batch it checked was whole. */
  readonly damage: RecoveryDamage | null;
}

export interface RecoveryDamage {
  /**
   * 'active-tail': bytes at the end of the last segment, which was still being written: a
   * torn write after a crash is normal there. 'sealed-segment': a segment that was synced
   * before the next one was made: data this replica had acknowledged is gone from it.
   */
  readonly kind: 'active-tail' | 'sealed-segment';
  /** The damaged segment's log file name. */
  readonly file: string;
  /** The offset the first bad batch would have had; the log now ends here. */
  readonly offset: number;
  /** The byte position of the first bad batch in the file; the file now ends here. */
  readonly position: number;
  /** Segments after the damaged one, deleted whole. */
  readonly segmentsRemoved: number;
}

/** Bytes a single read may return at most, whatever bytesMax asks (a limit on everything). */
export const READ_BYTES_LIMIT = 64 * 1024 * 1024;
/** Bytes one write round takes from the queue at most, so one round's writev stays bounded. */
const ROUND_BYTES_MAX = 16 * 1024 * 1024;
/** Bytes a header scan reads at a time: many small batches per read, a bounded waste per large one. */
const SCAN_HEADER_CHUNK_BYTES = 64 * 1024;
/** Times a read retries when a truncation cut its segment while it read. */
const READ_ATTEMPTS_MAX = 3;

interface PendingAppend {
  readonly bytes: Buffer;
  readonly headers: BatchHeader[];
  /** The epoch to stamp (leader append), or null to keep the batches' own (follower append). */
  readonly leaderEpoch: number | null;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
}

/** What a round has decided to write to the active segment but not yet written. */
interface Planned {
  segment: Segment;
  chunks: Buffer[];
  batches: BatchHeader[];
}

export class PartitionLog {
  readonly config: LogConfig;
  private readonly mutex = new Mutex();
  private pending: PendingAppend[] = [];
  private writing = false;
  private flushTimer: TimerHandle | null = null;
  private unsyncedBytes = 0;
  private failure: DriftwoodError | null = null;
  private closed = false;
  private flushed: number;
  /** Set after construction by open(): both open paths build through the one constructor. */
  private fsyncDurations: DurationSink = ignoredDurations;
  private onFailure: (failure: DriftwoodError) => void = () => undefined;

  private constructor(
    private readonly disk: Disk,
    readonly dir: string,
    private readonly clock: Clock,
    config: LogConfig,
    private segments: Segment[],
    private readonly epochs: LeaderEpochCache,
    readonly recovery: RecoveryReport,
  ) {
    this.config = config;
    this.flushed = this.logEndOffset;
    this.checkInvariants();
  }

  /** Opens the log in `dir`, creating it if empty, and recovers from a crash if there was one. */
  static async open(options: PartitionLogOptions): Promise<PartitionLog> {
    const log = await PartitionLog.openOrCreate(options);
    if (options.fsyncDurations !== undefined) log.fsyncDurations = options.fsyncDurations;
    if (options.onFailure !== undefined) log.onFailure = options.onFailure;
    return log;
  }

  private static async openOrCreate(options: PartitionLogOptions): Promise<PartitionLog> {
    const config = makeLogConfig(options.config);
    const { disk, dir } = options;
    await disk.mkdir(dir);
    const names = await disk.list(dir);
    await removeLeftovers(disk, dir, names);
    const bases = names.map((name) => parseSegmentFileName(name, LOG_SUFFIX)).filter((base) => base !== null).sort((a, b) => a - b);
    if (bases.length === 0) return PartitionLog.create(options, config);
    const segments: Segment[] = [];
    try {
      let activeIndex = bases.length - 1;
      for (let i = 0; i < activeIndex; i += 1) {
        const sealed = await Segment.openSealed(disk, dir, bases[i] ?? 0, bases[i + 1] ?? 0, config.indexIntervalBytes);
        if (sealed === null) activeIndex = i;
        else segments.push(sealed);
      }
      const damagedSealed = activeIndex < bases.length - 1;
      const removedBytes = damagedSealed ? await cutAfterDamagedSegment(disk, dir, bases.slice(activeIndex)) : 0;
      const activeBase = bases[activeIndex] ?? 0;
      const { segment: active, truncatedBytes, epochsSeen } = await recoverActive(disk, dir, activeBase, config);
      segments.push(active);
      const epochs = await recoverEpochs(disk, dir, segments, epochsSeen);
      const damage: RecoveryDamage | null = damagedSealed || truncatedBytes > 0
        ? { kind: damagedSealed ? 'sealed-segment' : 'active-tail', file: segmentFileName(activeBase, LOG_SUFFIX), offset: active.nextOffset, position: active.sizeBytes, segmentsRemoved: bases.length - 1 - activeIndex }
        : null;
      const recovery = { truncatedBytes: truncatedBytes + removedBytes, segmentCount: segments.length, endOffset: active.nextOffset, damage };
      return new PartitionLog(disk, dir, options.clock, config, segments, epochs, recovery);
    } catch (error) {
      await Promise.all(segments.map((segment) => segment.file.close()));
      throw error;
    }
  }

  private static async create(options: PartitionLogOptions, config: LogConfig): Promise<PartitionLog> {
    const initialOffset = options.initialOffset ?? 0;
    if (!Number.isSafeInteger(initialOffset) || initialOffset < 0) {
      throw new DriftwoodError('INVALID_REQUEST', `initialOffset must be a non-negative integer, got ${initialOffset}`);
    }
    const segment = await createSegment(options.disk, options.dir, initialOffset);
    const epochs = LeaderEpochCache.empty(options.disk, options.dir);
    await epochs.persist();
    return new PartitionLog(options.disk, options.dir, options.clock, config, [segment], epochs, { truncatedBytes: 0, segmentCount: 1, endOffset: initialOffset, damage: null });
  }

  get logStartOffset(): number {
    return this.first().baseOffset;
  }

  /** One past the last offset written (the next offset an append gets). */
  get logEndOffset(): number {
    return this.active().nextOffset;
  }

  /** Everything below this offset has been synced to disk. */
  get flushedOffset(): number {
    return this.flushed;
  }

  /** Whether every append is synced before it resolves (flush.ms 0). */
  get syncsEveryAppend(): boolean {
    return this.config.flushIntervalMs === 0;
  }

  get sizeBytes(): number {
    return this.segments.reduce((sum, segment) => sum + segment.sizeBytes, 0);
  }

  get latestEpoch(): number {
    return this.epochs.latestEpoch();
  }

  get epochEntries(): readonly EpochEntry[] {
    return this.epochs.all;
  }

  /**
   * Bytes of the log from its start to `offset`, found from the indexes alone: exact at a
   * segment boundary and the log end, else low by less than one index interval
   * (`indexIntervalBytes`). For progress reports, where reading the log would cost more.
   */
  bytesBelow(offset: number): number {
    let bytes = 0;
    for (const segment of this.segments) {
      if (segment.nextOffset <= offset) bytes += segment.sizeBytes;
      else if (segment.baseOffset < offset) bytes += segment.indexedPositionOf(offset);
    }
    return bytes;
  }

  segmentInfos(): SegmentInfo[] {
    return this.segments.map((s) => ({ baseOffset: s.baseOffset, nextOffset: s.nextOffset, sizeBytes: s.sizeBytes, maxTimestampMs: s.maxTimestampMs }));
  }

  /** The largest epoch <= `epoch` and the offset where it ended (KIP-101 OffsetsForLeaderEpoch). */
  endOffsetForEpoch(epoch: number): { epoch: number; endOffset: number } {
    const answer = this.epochs.endOffsetFor(epoch, this.logEndOffset);
    return { epoch: answer.epoch, endOffset: answer.startOffset };
  }

  /**
   * Appends the batches in `bytes` as the partition leader: validates them (refusing bad
   * input before touching the log), assigns offsets and `leaderEpoch`. The batch bytes are
   * taken over and stamped in place. Resolves once written, and synced if the flush policy
   * syncs every append.
   */
  async append(bytes: Buffer, options: { leaderEpoch: number; headers?: readonly BatchHeader[] }): Promise<AppendResult> {
    this.checkWritable();
    assert.ok(Number.isSafeInteger(options.leaderEpoch) && options.leaderEpoch >= 0, 'leader epoch must be >= 0');
    // A caller that had to look at the batches first (the idempotence check) split them
    // already; the CRC pass is not made twice.
    const headers = options.headers === undefined ? splitBatches(bytes, this.config.messageBytesMax) : [...options.headers];
    assert.equal(headers.reduce((sum, header) => sum + header.sizeBytes, 0), bytes.length, 'the headers given are those of the bytes');
    return this.enqueue(bytes, headers, options.leaderEpoch);
  }

  /**
   * Calls `visit` with the header of every batch from the one holding `offset` to the log end
   * as it is now, reading headers only (in chunks, not per batch). For rebuilding state kept
   * from the batch headers (the producer state); appends made meanwhile are not visited.
   */
  async scanBatchHeaders(offset: number, visit: (header: BatchHeader) => void): Promise<void> {
    this.checkOpen();
    const end = this.logEndOffset;
    if (offset >= end) return;
    if (!Number.isSafeInteger(offset) || offset < this.logStartOffset) {
      throw new DriftwoodError('OFFSET_OUT_OF_RANGE', `cannot scan from ${offset}: the log starts at ${this.logStartOffset}`, { logStartOffset: this.logStartOffset });
    }
    const segments = this.segments.filter((segment) => segment.nextOffset > offset && segment.baseOffset < end);
    for (const segment of segments) {
      segment.acquire();
      try {
        const start = segment.baseOffset >= offset ? 0 : (await segment.positionOf(offset)).position;
        const cursor = new BatchCursor(segment.file, start, segment.sizeBytes, SCAN_HEADER_CHUNK_BYTES);
        for (let step = await cursor.next(false); step !== 'end'; step = await cursor.next(false)) {
          assert.ok(step !== 'torn', `segment ${segment.baseOffset} has a torn batch below its written size`);
          if (step.header.baseOffset >= end) break;
          visit(step.header);
        }
      } finally {
        await segment.release();
      }
    }
  }

  /**
   * Records that leader epoch `epoch` starts at the log end, before any batch of it exists
   * (Kafka does this on becoming leader). A follower holding batches of an epoch this log
   * never had then learns where to cut: the end of the epoch before it. No-op for an epoch
   * the log already has.
   */
  async beginLeaderEpoch(epoch: number): Promise<void> {
    this.checkWritable();
    assert.ok(Number.isSafeInteger(epoch) && epoch >= 0, 'leader epoch must be >= 0');
    await this.exclusive(async () => {
      if (epoch <= this.epochs.latestEpoch()) return;
      this.epochs.assign(epoch, this.logEndOffset);
      await this.epochs.persist();
    });
  }

  /**
   * Appends batches copied from the leader, keeping their offsets and epochs: the first must
   * start at the log end and they must be dense (a follower's fetch result).
   */
  async appendAsFollower(bytes: Buffer): Promise<AppendResult> {
    this.checkWritable();
    const headers = splitBatches(bytes, this.config.messageBytesMax);
    checkFollowerBatches(headers);
    return this.enqueue(bytes, headers, null);
  }

  private enqueue(bytes: Buffer, headers: BatchHeader[], leaderEpoch: number | null): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      this.pending.push({ bytes, headers, leaderEpoch, resolve, reject });
      this.startRound();
    });
  }

  private startRound(): void {
    if (this.writing || this.pending.length === 0) return;
    this.writing = true;
    void this.mutex.run(() => this.writeRound()).finally(() => {
      this.writing = false;
      this.startRound();
    });
  }

  /** One group-commit round: plan, write, sync as the policy says, then answer everyone. */
  private async writeRound(): Promise<void> {
    const items = this.takeRound();
    const accepted: Array<{ item: PendingAppend; result: AppendResult }> = [];
    if (this.closed || this.failure !== null) {
      const refusal = this.failure ?? new DriftwoodError('LOG_CLOSED', this.dir);
      for (const item of items) item.reject(refusal);
      return;
    }
    try {
      let planned = this.emptyPlan();
      for (const item of items) {
        const outcome = await this.planItem(item, planned);
        planned = outcome.planned;
        if (outcome.result !== null) accepted.push({ item, result: outcome.result });
      }
      await this.writePlanned(planned);
      await this.syncIfDue();
    } catch (error) {
      const failure = this.fail(error);
      for (const item of items) item.reject(isAssertion(error) ? error : failure);
      return;
    }
    for (const { item, result } of accepted) item.resolve(result);
  }

  /** The queued appends for one round: all of them, or as many as fit ROUND_BYTES_MAX (at least one). */
  private takeRound(): PendingAppend[] {
    let bytes = 0;
    let count = 0;
    for (const item of this.pending) {
      if (count > 0 && bytes + item.bytes.length > ROUND_BYTES_MAX) break;
      bytes += item.bytes.length;
      count += 1;
    }
    return this.pending.splice(0, count);
  }

  private emptyPlan(): Planned {
    return { segment: this.active(), chunks: [], batches: [] };
  }

  /**
   * Stamps the item's batches and adds them to the plan, rolling first where a batch would
   * overflow the segment or the segment is old. Refuses the item (rejecting only it) when its
   * offsets or epoch do not follow the log.
   */
  private async planItem(item: PendingAppend, plannedIn: Planned): Promise<{ planned: Planned; result: AppendResult | null }> {
    let planned = plannedIn;
    const refusal = this.refusalFor(item, planned);
    if (refusal !== null) {
      item.reject(refusal);
      return { planned, result: null };
    }
    const appendTimeMs = this.config.timestampType === 'LogAppendTime' ? this.clock.nowMs() : -1;
    let position = 0;
    let first = -1;
    let last = -1;
    let recordCount = 0;
    for (const original of item.headers) {
      const batch = item.bytes.subarray(position, position + original.sizeBytes);
      position += original.sizeBytes;
      if (this.shouldRoll(planned, original)) planned = await this.rollPlanned(planned);
      const header = stamp(batch, item.leaderEpoch, plannedEnd(planned), appendTimeMs);
      // A new epoch is on disk before any batch of it: the checkpoint may run ahead of the
      // log after a crash (recovery trims it), never behind.
      if (header.partitionLeaderEpoch >= 0 && this.epochs.assign(header.partitionLeaderEpoch, header.baseOffset)) await this.epochs.persist();
      planned.chunks.push(batch);
      planned.batches.push(header);
      if (first < 0) first = header.baseOffset;
      last = lastOffsetOf(header);
      recordCount += header.recordCount;
    }
    return { planned, result: { baseOffset: first, lastOffset: last, recordCount, logAppendTimeMs: appendTimeMs } };
  }

  private refusalFor(item: PendingAppend, planned: Planned): DriftwoodError | null {
    const latest = this.epochs.latestEpoch();
    const firstHeader = item.headers[0];
    assert.ok(firstHeader !== undefined);
    if (item.leaderEpoch !== null) {
      if (item.leaderEpoch < latest) return new DriftwoodError('FENCED_LEADER_EPOCH', `append with epoch ${item.leaderEpoch}, log is at epoch ${latest}`, { latestEpoch: latest });
      return null;
    }
    const expected = plannedEnd(planned);
    if (firstHeader.baseOffset !== expected) {
      return new DriftwoodError('OFFSET_OUT_OF_RANGE', `follower batches start at ${firstHeader.baseOffset}, the log ends at ${expected}`, { logEndOffset: expected });
    }
    if (firstHeader.partitionLeaderEpoch < latest) {
      return new DriftwoodError('FENCED_LEADER_EPOCH', `follower batch has epoch ${firstHeader.partitionLeaderEpoch}, log is at epoch ${latest}`, { latestEpoch: latest });
    }
    return null;
  }

  private shouldRoll(planned: Planned, next: BatchHeader): boolean {
    const segment = planned.segment;
    const size = plannedSize(planned);
    if (size === 0) return false;
    if (size + next.sizeBytes > this.config.segmentBytesMax) return true;
    const first = segment.isEmpty ? planned.batches[0]?.maxTimestamp ?? -1 : segment.firstBatchTimestampMs;
    return first >= 0 && next.maxTimestamp - first >= this.config.segmentAgeMsMax;
  }

  private async rollPlanned(planned: Planned): Promise<Planned> {
    await this.writePlanned(planned);
    await this.rollActive();
    return this.emptyPlan();
  }

  /** Writes the planned batches with one writev, then makes them visible. */
  private async writePlanned(planned: Planned): Promise<void> {
    if (planned.chunks.length === 0) return;
    const segment = planned.segment;
    assert.equal(segment, this.active(), 'only the active segment is written');
    const start = segment.sizeBytes;
    await segment.file.write(start, planned.chunks);
    let position = start;
    for (const header of planned.batches) {
      segment.onAppended(position, header, this.config.indexIntervalBytes);
      position += header.sizeBytes;
      this.unsyncedBytes += header.sizeBytes;
    }
    this.checkInvariants();
  }

  /** Syncs now if the policy syncs every append or the unsynced bytes passed their limit; else arms the flush timer. */
  private async syncIfDue(): Promise<void> {
    if (this.unsyncedBytes === 0) return;
    const limit = this.config.flushUnsyncedBytesMax;
    if (this.config.flushIntervalMs === 0 || (limit >= 0 && this.unsyncedBytes >= limit)) {
      await this.syncActive();
      return;
    }
    if (this.flushTimer === null) {
      this.flushTimer = this.clock.setTimer(this.config.flushIntervalMs, () => {
        this.flushTimer = null;
        this.flush().catch(() => undefined);
      });
    }
  }

  private async syncActive(): Promise<void> {
    const end = this.logEndOffset;
    const startMs = this.clock.monotonicMs();
    await this.active().file.sync();
    this.fsyncDurations.observeMs(this.clock.monotonicMs() - startMs);
    this.unsyncedBytes = 0;
    this.flushed = end;
  }

  /** Syncs everything written so far; concurrent calls share one fsync. Returns the flushed offset. */
  async flush(): Promise<number> {
    this.checkWritable();
    return this.mutex.run(async () => {
      this.checkWritable();
      if (this.flushed < this.logEndOffset) {
        try {
          await this.syncActive();
        } catch (error) {
          throw this.fail(error);
        }
      }
      return this.flushed;
    });
  }

  /** Seals the active segment and starts a new one at the log end (admin and tests; appends roll by themselves). */
  async roll(): Promise<void> {
    this.checkWritable();
    await this.exclusive(async () => {
      if (!this.active().isEmpty) await this.rollActive();
    });
  }

  private async rollActive(): Promise<void> {
    const old = this.active();
    await old.seal(this.disk);
    this.flushed = this.logEndOffset;
    this.unsyncedBytes = 0;
    this.segments.push(await createSegment(this.disk, this.dir, old.nextOffset));
    this.checkInvariants();
  }

  /**
   * Reads whole batches starting with the one that holds `offset`, up to `bytesMax` (but at
   * least that first batch) and below `offsetEnd`, from one segment.
   */
  async read(offset: number, options: ReadOptions): Promise<ReadResult> {
    this.checkOpen();
    checkReadArguments(offset, options);
    const logEnd = this.logEndOffset;
    if (offset < this.logStartOffset || offset > logEnd) {
      throw new DriftwoodError('OFFSET_OUT_OF_RANGE', `offset ${offset} is outside [${this.logStartOffset}, ${logEnd}]`, { logStartOffset: this.logStartOffset, logEndOffset: logEnd });
    }
    const end = Math.min(options.offsetEnd ?? logEnd, logEnd);
    const bytesMax = Math.min(options.bytesMax, READ_BYTES_LIMIT);
    if (offset >= end) return this.readResult({ bytes: Buffer.alloc(0), nextOffset: offset });
    const segment = this.segmentFor(offset);
    segment.acquire();
    try {
      return this.readResult(await readRetryingCuts(segment, offset, end, bytesMax));
    } finally {
      await segment.release();
    }
  }

  private readResult(found: { bytes: Buffer; nextOffset: number }): ReadResult {
    return { ...found, logStartOffset: this.logStartOffset, logEndOffset: this.logEndOffset };
  }

  /**
   * The first offset whose record has a timestamp >= `timestampMs` (Kafka's ListOffsets by
   * time), or null when every record is older.
   */
  async offsetForTimestamp(timestampMs: number): Promise<{ offset: number; timestampMs: number } | null> {
    this.checkOpen();
    if (!Number.isSafeInteger(timestampMs)) throw new DriftwoodError('INVALID_REQUEST', `timestamp must be an integer, got ${timestampMs}`);
    const segment = this.segments.find((s) => s.maxTimestampMs >= timestampMs);
    if (segment === undefined) return null;
    segment.acquire();
    try {
      const from = Math.max(segment.timeIndex.lookup(timestampMs), segment.baseOffset);
      const { position } = await segment.positionOf(from);
      const cursor = new BatchCursor(segment.file, position, segment.sizeBytes, 64 * 1024);
      for (let step = await cursor.next(true); step !== 'end' && step !== 'torn'; step = await cursor.next(true)) {
        if (step.header.maxTimestamp < timestampMs) continue;
        return firstRecordAtOrAfter(step.buffer.subarray(step.bufferOffset, step.bufferOffset + step.header.sizeBytes), timestampMs);
      }
      return null;
    } finally {
      await segment.release();
    }
  }

  /**
   * Cuts the log so it ends before `offset`: every batch that holds `offset` or a later one
   * is removed (a batch is never split), and epochs starting at or after the new end with it. Returns the new log
   * end, which is the start of the batch that held `offset`. Durable when it resolves.
   */
  async truncateTo(offset: number): Promise<number> {
    this.checkWritable();
    if (!Number.isSafeInteger(offset) || offset < this.logStartOffset) {
      throw new DriftwoodError('OFFSET_OUT_OF_RANGE', `cannot truncate to ${offset}: the log starts at ${this.logStartOffset}`, { logStartOffset: this.logStartOffset });
    }
    return this.exclusive(async () => {
      if (offset >= this.logEndOffset) {
        // Nothing to cut, but an epoch that starts at the end holds no batch: it goes too, or a
        // follower that led that epoch without writing would keep naming it and diverge forever.
        if (offset === this.logEndOffset && this.epochs.truncateFromEnd(offset)) await this.epochs.persist();
        return this.logEndOffset;
      }
      const target = this.segmentFor(offset);
      while (this.active() !== target) await this.removeSegment(this.segments.pop());
      const { position, header } = await target.positionOf(offset);
      const end = header === null ? target.nextOffset : header.baseOffset;
      await target.truncateTo(position, end);
      await this.disk.remove(target.path(OFFSET_INDEX_SUFFIX));
      await this.disk.remove(target.path(TIME_INDEX_SUFFIX));
      if (this.epochs.truncateFromEnd(end)) await this.epochs.persist();
      this.flushed = end; // the cut was synced, and with it everything before it
      this.unsyncedBytes = 0;
      this.checkInvariants();
      return end;
    });
  }

  /** Empties the log and restarts it at `offset` (a follower far behind the leader's log start). */
  async truncateFullyAndStartAt(offset: number): Promise<void> {
    this.checkWritable();
    if (!Number.isSafeInteger(offset) || offset < 0) throw new DriftwoodError('INVALID_REQUEST', `offset must be a non-negative integer, got ${offset}`);
    await this.exclusive(async () => {
      while (this.segments.length > 0) await this.removeSegment(this.segments.pop());
      this.segments.push(await createSegment(this.disk, this.dir, offset));
      this.epochs.clear();
      await this.epochs.persist();
      this.flushed = offset;
      this.unsyncedBytes = 0;
      this.checkInvariants();
    });
  }

  /**
   * Deletes the oldest sealed segments that retention allows (by time: the newest record is
   * older than retentionMs; by bytes: the log stays at or above retentionBytes without it),
   * oldest first, never the active segment. Returns how many were deleted.
   */
  async applyRetention(): Promise<number> {
    this.checkWritable();
    return this.exclusive(async () => {
      const nowMs = this.clock.nowMs();
      let totalBytes = this.sizeBytes;
      let deleted = 0;
      while (this.segments.length > 1) {
        const oldest = this.first();
        if (!this.retentionAllows(oldest, nowMs, totalBytes)) break;
        totalBytes -= oldest.sizeBytes;
        await this.removeSegment(this.segments.shift());
        deleted += 1;
      }
      if (deleted > 0 && this.epochs.clampTo(this.logStartOffset, this.logEndOffset)) await this.epochs.persist();
      this.checkInvariants();
      return deleted;
    });
  }

  private retentionAllows(segment: Segment, nowMs: number, totalBytes: number): boolean {
    const { retentionMs, retentionBytes } = this.config;
    const expired = retentionMs >= 0 && segment.maxTimestampMs >= 0 && nowMs - segment.maxTimestampMs > retentionMs;
    const oversize = retentionBytes >= 0 && totalBytes - segment.sizeBytes >= retentionBytes;
    return expired || oversize;
  }

  private async removeSegment(segment: Segment | undefined): Promise<void> {
    assert.ok(segment !== undefined);
    await this.disk.remove(segment.path(OFFSET_INDEX_SUFFIX));
    await this.disk.remove(segment.path(TIME_INDEX_SUFFIX));
    await this.disk.remove(segment.path(LOG_SUFFIX));
    await this.disk.syncDir(this.dir);
    await segment.closeWhenUnused();
  }

  /** Syncs and closes. Appends still queued are refused with LOG_CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flushTimer?.cancel();
    this.flushTimer = null;
    await this.mutex.run(async () => {
      const refusal = new DriftwoodError('LOG_CLOSED', this.dir);
      for (const item of this.pending.splice(0)) item.reject(refusal);
      if (this.failure === null) await this.active().file.sync();
      await Promise.all(this.segments.map((segment) => segment.closeWhenUnused()));
    });
  }

  /** Runs a mutation under the lock; an I/O failure takes the log offline. */
  private async exclusive<T>(task: () => Promise<T>): Promise<T> {
    return this.mutex.run(async () => {
      this.checkWritable();
      try {
        return await task();
      } catch (error) {
        if (error instanceof DriftwoodError && error.code !== 'KAFKA_STORAGE_ERROR') throw error;
        const failure = this.fail(error);
        throw isAssertion(error) ? error : failure;
      }
    });
  }

  /** After an I/O error the in-memory state may disagree with the files: refuse everything until reopened. */
  private fail(error: unknown): DriftwoodError {
    if (this.failure === null) {
      const detail = error instanceof Error ? error.message : String(error);
      this.failure = new DriftwoodError('KAFKA_STORAGE_ERROR', `${this.dir}: ${detail}`);
      this.failure.cause = error;
      this.flushTimer?.cancel();
      this.flushTimer = null;
      for (const item of this.pending.splice(0)) item.reject(this.failure);
      this.onFailure(this.failure);
    }
    return this.failure;
  }

  private checkOpen(): void {
    if (this.closed) throw new DriftwoodError('LOG_CLOSED', this.dir);
  }

  private checkWritable(): void {
    this.checkOpen();
    if (this.failure !== null) throw this.failure;
  }

  private first(): Segment {
    const segment = this.segments[0];
    assert.ok(segment !== undefined, 'a log always has a segment');
    return segment;
  }

  private active(): Segment {
    const segment = this.segments.at(-1);
    assert.ok(segment !== undefined, 'a log always has a segment');
    return segment;
  }

  /** The segment holding `offset`: the last one whose base offset is <= it. */
  private segmentFor(offset: number): Segment {
    let low = 0;
    let high = this.segments.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >>> 1;
      if ((this.segments[middle]?.baseOffset ?? Infinity) <= offset) low = middle;
      else high = middle - 1;
    }
    const segment = this.segments[low];
    assert.ok(segment !== undefined && segment.baseOffset <= offset);
    return segment;
  }

  private checkInvariants(): void {
    assert.ok(this.segments.length > 0, 'a log always has a segment');
    for (let i = 1; i < this.segments.length; i += 1) {
      assert.equal(this.segments[i]?.baseOffset, this.segments[i - 1]?.nextOffset, 'segments are contiguous');
    }
    assert.ok(this.flushed <= this.logEndOffset, 'flushed offset is within the log');
  }
}

/** Sets offset, epoch and append time in a leader's batch (in place); a follower's batch keeps its own. */
function stamp(batch: Buffer, leaderEpoch: number | null, offset: number, appendTimeMs: number): BatchHeader {
  if (leaderEpoch !== null) {
    setBaseOffset(batch, 0, offset);
    setPartitionLeaderEpoch(batch, 0, leaderEpoch);
    if (appendTimeMs >= 0) setLogAppendTime(batch, 0, appendTimeMs);
  }
  const header = readBatchHeader(batch, 0);
  assert.equal(header.baseOffset, offset);
  return header;
}

function plannedSize(planned: Planned): number {
  return planned.segment.sizeBytes + planned.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
}

function plannedEnd(planned: Planned): number {
  const last = planned.batches.at(-1);
  return last === undefined ? planned.segment.nextOffset : lastOffsetOf(last) + 1;
}

function checkFollowerBatches(headers: BatchHeader[]): void {
  for (let i = 1; i < headers.length; i += 1) {
    const previous = headers[i - 1];
    const current = headers[i];
    assert.ok(previous !== undefined && current !== undefined);
    if (current.baseOffset !== lastOffsetOf(previous) + 1) {
      throw new DriftwoodError('CORRUPT_MESSAGE', `follower batches are not dense: ${current.baseOffset} after ${lastOffsetOf(previous)}`);
    }
    if (current.partitionLeaderEpoch < previous.partitionLeaderEpoch) {
      throw new DriftwoodError('CORRUPT_MESSAGE', `follower batch epochs go back: ${current.partitionLeaderEpoch} after ${previous.partitionLeaderEpoch}`);
    }
  }
}

function checkReadArguments(offset: number, options: ReadOptions): void {
  if (!Number.isSafeInteger(offset)) throw new DriftwoodError('INVALID_REQUEST', `offset must be an integer, got ${offset}`);
  if (!Number.isSafeInteger(options.bytesMax) || options.bytesMax < 1) {
    throw new DriftwoodError('INVALID_REQUEST', `bytesMax must be a positive integer, got ${options.bytesMax}`);
  }
  if (options.offsetEnd !== undefined && !Number.isSafeInteger(options.offsetEnd)) {
    throw new DriftwoodError('INVALID_REQUEST', `offsetEnd must be an integer, got ${options.offsetEnd}`);
  }
}

/** readFromSegment, again if a truncation cut the segment while it read (its generation moved). */
async function readRetryingCuts(segment: Segment, offset: number, end: number, bytesMax: number): Promise<{ bytes: Buffer; nextOffset: number }> {
  for (let attempt = 1; ; attempt += 1) {
    const generation = segment.generation;
    try {
      const found = await readFromSegment(segment, offset, end, bytesMax);
      if (segment.generation === generation) return found;
    } catch (error) {
      if (segment.generation === generation) throw error;
    }
    assert.ok(attempt < READ_ATTEMPTS_MAX, `segment ${segment.baseOffset} kept changing under a read`);
  }
}

/** Whole batches from the one holding `offset`, below `end`, up to `bytesMax` (at least one). */
async function readFromSegment(segment: Segment, offset: number, end: number, bytesMax: number): Promise<{ bytes: Buffer; nextOffset: number }> {
  const sizeBytes = segment.sizeBytes;
  const { position, header } = await segment.positionOf(offset);
  if (header === null || lastOffsetOf(header) >= end) return { bytes: Buffer.alloc(0), nextOffset: offset };
  const length = Math.min(Math.max(bytesMax, header.sizeBytes), sizeBytes - position);
  const bytes = await segment.file.read(position, length);
  let taken = 0;
  let nextOffset = offset;
  while (taken + BATCH_HEADER_BYTES <= bytes.length) {
    const next = readBatchHeader(bytes, taken);
    if (taken + next.sizeBytes > bytes.length || lastOffsetOf(next) >= end) break;
    if (taken > 0 && taken + next.sizeBytes > bytesMax) break;
    taken += next.sizeBytes;
    nextOffset = lastOffsetOf(next) + 1;
  }
  return { bytes: bytes.subarray(0, taken), nextOffset };
}

function isAssertion(error: unknown): boolean {
  return error instanceof assert.AssertionError;
}

function firstRecordAtOrAfter(batch: Buffer, timestampMs: number): { offset: number; timestampMs: number } {
  const { header, records } = decodeBatch(batch);
  const logAppendTime = (header.attributes & 0x08) !== 0;
  for (const record of records) {
    const recordTimestamp = logAppendTime ? header.maxTimestamp : header.baseTimestamp + record.timestampDelta;
    if (recordTimestamp >= timestampMs) return { offset: header.baseOffset + record.offsetDelta, timestampMs: recordTimestamp };
  }
  // maxTimestamp >= timestampMs promised a record; a batch that breaks it still answers with its end.
  return { offset: lastOffsetOf(header), timestampMs: header.maxTimestamp };
}

async function createSegment(disk: Disk, dir: string, baseOffset: number): Promise<Segment> {
  const file = await disk.open(joinPath(dir, segmentFileName(baseOffset, LOG_SUFFIX)), { create: true });
  await file.truncate(0);
  await file.sync();
  await disk.syncDir(dir);
  return new Segment(dir, baseOffset, file, new OffsetIndex(baseOffset), new TimeIndex(baseOffset));
}

/** Removes what an interrupted atomic write or an older layout left behind. */
async function removeLeftovers(disk: Disk, dir: string, names: string[]): Promise<void> {
  const bases = new Set(names.map((name) => parseSegmentFileName(name, LOG_SUFFIX)).filter((base) => base !== null));
  for (const name of names) {
    const indexBase = parseSegmentFileName(name, OFFSET_INDEX_SUFFIX) ?? parseSegmentFileName(name, TIME_INDEX_SUFFIX);
    const orphanIndex = indexBase !== null && !bases.has(indexBase);
    if (name.endsWith('.tmp') || orphanIndex) await disk.remove(joinPath(dir, name));
  }
}

/**
 * Makes the damaged segment (the first of `bases`) the last one: deletes every later segment,
 * last first with a sync of the directory after each (removeSegment's order), so a crash
 * midway still leaves one contiguous run; then its index files, which recovery of an active
 * segment does not read and which would be stale after its cut. Returns the bytes deleted.
 */
async function cutAfterDamagedSegment(disk: Disk, dir: string, bases: readonly number[]): Promise<number> {
  const damaged = bases[0];
  assert.ok(damaged !== undefined && bases.length >= 2, 'a damaged sealed segment has a segment after it');
  let removedBytes = 0;
  for (const base of [...bases.slice(1)].reverse()) {
    const path = joinPath(dir, segmentFileName(base, LOG_SUFFIX));
    const file = await disk.open(path, { create: false });
    removedBytes += file.sizeBytes;
    await file.close();
    await disk.remove(joinPath(dir, segmentFileName(base, OFFSET_INDEX_SUFFIX)));
    await disk.remove(joinPath(dir, segmentFileName(base, TIME_INDEX_SUFFIX)));
    await disk.remove(path);
    await disk.syncDir(dir);
  }
  await disk.remove(joinPath(dir, segmentFileName(damaged, OFFSET_INDEX_SUFFIX)));
  await disk.remove(joinPath(dir, segmentFileName(damaged, TIME_INDEX_SUFFIX)));
  await disk.syncDir(dir);
  return removedBytes;
}

/** Opens the last segment and scans it whole, cutting the torn tail and syncing the cut. */
async function recoverActive(disk: Disk, dir: string, baseOffset: number, config: LogConfig): Promise<{ segment: Segment; truncatedBytes: number; epochsSeen: Array<{ epoch: number; offset: number }> }> {
  const file = await disk.open(joinPath(dir, segmentFileName(baseOffset, LOG_SUFFIX)), { create: false });
  const segment = new Segment(dir, baseOffset, file, new OffsetIndex(baseOffset), new TimeIndex(baseOffset));
  const fileBytes = file.sizeBytes;
  try {
    const { validBytes, epochs } = await segment.recover(fileBytes, config.indexIntervalBytes);
    if (validBytes < fileBytes) await file.truncate(validBytes);
    await file.sync();
    return { segment, truncatedBytes: fileBytes - validBytes, epochsSeen: epochs };
  } catch (error) {
    await file.close();
    throw error;
  }
}

/**
 * Loads the epoch checkpoint and makes it agree with the recovered log: drops epochs past
 * the log end or before its start, adds any epoch the recovery scan saw that it lacks, and
 * rebuilds it from the batches when it is missing or damaged.
 */
async function recoverEpochs(disk: Disk, dir: string, segments: Segment[], epochsSeen: Array<{ epoch: number; offset: number }>): Promise<LeaderEpochCache> {
  const first = segments[0];
  const active = segments.at(-1);
  assert.ok(first !== undefined && active !== undefined);
  let cache = await LeaderEpochCache.load(disk, dir);
  let changed = cache === null;
  if (cache === null) {
    cache = LeaderEpochCache.empty(disk, dir);
    for (const segment of segments.slice(0, -1)) {
      for (const seen of await epochStarts(segment)) cache.assign(seen.epoch, seen.offset);
    }
  }
  changed = cache.truncateFromEnd(active.nextOffset) || changed;
  for (const seen of epochsSeen) {
    if (seen.epoch > cache.latestEpoch() && seen.epoch >= 0) changed = cache.assign(seen.epoch, seen.offset) || changed;
  }
  changed = cache.clampTo(first.baseOffset, active.nextOffset) || changed;
  if (changed) await cache.persist();
  return cache;
}

/** The offsets where each new epoch starts in a segment (reads every batch header). */
async function epochStarts(segment: Segment): Promise<Array<{ epoch: number; offset: number }>> {
  const cursor = new BatchCursor(segment.file, 0, segment.sizeBytes, 4 * 1024 * 1024);
  const starts: Array<{ epoch: number; offset: number }> = [];
  for (let step = await cursor.next(false); step !== 'end' && step !== 'torn'; step = await cursor.next(false)) {
    const epoch = step.header.partitionLeaderEpoch;
    if (epoch >= 0 && epoch > (starts.at(-1)?.epoch ?? -1)) starts.push({ epoch, offset: step.header.baseOffset });
  }
  return starts;
}
