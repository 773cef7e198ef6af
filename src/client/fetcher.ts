// The consumer's fetching: one long poll per assigned partition at its leader (a bounded number
// at once), answers decoded into records and buffered until poll() takes them, within a
// bound on buffered bytes. Positions are the next offset poll() returns for each partition;
// a partition without one gets it from its committed offset or the reset policy first.
import assert from 'node:assert/strict';
import { DriftwoodError, isDriftwoodError } from '../../storage/errors.js';
import { CONTROL_FLAG, decodeBatch, TIMESTAMP_TYPE_LOG_APPEND_TIME_FLAG, type Header } from '../../storage/record-batch.js';
import { numberHeader, type Connections, type HttpAnswer, errorFromAnswer } from './connections.js';
import type { Metadata } from './metadata.js';
import type { ResolvedClientOptions } from './options.js';
import { asDriftwoodError, backoffMs, isRetriable, monotonicMs, needsMetadataRefresh, Wakeup, type Timers } from './retry.js';

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

export interface ConsumerRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: readonly Header[];
  readonly timestampMs: number;
}

export type OffsetReset = 'earliest' | 'latest' | 'none';

export interface FetcherConfig {
  readonly autoOffsetReset: OffsetReset;
  readonly fetchMaxWaitMs: number;
  readonly fetchMinBytes: number;
  readonly partitionFetchBytesMax: number;
  readonly fetchBytesMax: number;
  readonly fetchesInFlightMax: number;
}

/** Where a partition without a position starts: its committed offset (null when none). */
export type CommittedLookup = (topic: string, partitions: readonly number[]) => Promise<Map<number, number>>;

export class PartitionState {
  /** The next offset poll() returns; null until known. */
  position: number | null = null;
  paused = false;
  /** Bumped by every seek, so that an answer to a fetch from before it is dropped. */
  generation = 0;
  /** Bumped by every seek the application asks for: the latest one wins. */
  seekSerial = 0;
  /** Application seeks waiting for their offset (seekToEnd, ...): no fetch or lookup meanwhile. */
  seeksPending = 0;
  records: ConsumerRecord[] = [];
  /** Records of `records` already taken. */
  taken = 0;
  bufferedBytes = 0;
  fetching = false;
  resolving = false;
  retryAtMs = 0;
  failures = 0;
  /** When its last fetch started (monotonic), to take turns under fetchesInFlightMax. */
  lastFetchMs = -Infinity;
  highWatermark: number | null = null;
  /** The leader epoch seen last (metadata or answers), sent so that a stale leader is noticed (KIP-320). */
  leaderEpoch: number | null = null;
  /** An error poll() must raise for this partition (OFFSET_OUT_OF_RANGE with reset "none", ...). */
  error: DriftwoodError | null = null;
  /** The position as last committed by this consumer, to skip commits that change nothing. */
  committedPosition: number | null = null;
  /** The position went out of range: the reset policy decides it, not the committed offset. */
  resetByPolicy = false;

  constructor(readonly topic: string, readonly partition: number) {}

  get key(): string {
    return partitionKey(this.topic, this.partition);
  }

  get hasRecords(): boolean {
    return this.taken < this.records.length;
  }

  /** Moves the position and forgets what was fetched from the old one. */
  seek(offset: number): void {
    assert(Number.isSafeInteger(offset) && offset >= 0, 'an offset is a non-negative integer');
    this.position = offset;
    this.generation += 1;
    this.dropRecords();
    this.error = null;
    this.retryAtMs = 0;
    this.resetByPolicy = false;
  }

  dropRecords(): void {
    this.records = [];
    this.taken = 0;
    this.bufferedBytes = 0;
  }
}

export function partitionKey(topic: string, partition: number): string {
  return `${partition}:${topic}`;
}

export class Fetcher {
  readonly partitions = new Map<string, PartitionState>();
  private inFlight = 0;
  private cursor = 0;
  private readonly waiters = new Set<() => void>();
  private readonly wake: Wakeup;

  constructor(
    private readonly connections: Connections,
    private readonly metadata: Metadata,
    private readonly client: ResolvedClientOptions,
    private readonly config: FetcherConfig,
    private readonly timers: Timers,
    private readonly committed: CommittedLookup | null,
  ) {
    this.wake = new Wakeup(timers, () => { this.pump(); });
  }

  get bufferedBytes(): number {
    let bytes = 0;
    for (const state of this.partitions.values()) bytes += state.bufferedBytes;
    return bytes;
  }

  state(tp: TopicPartition): PartitionState | undefined {
    return this.partitions.get(partitionKey(tp.topic, tp.partition));
  }

  /** The state of an assigned partition, or ILLEGAL_STATE (Kafka's "no current assignment"). */
  assigned(tp: TopicPartition): PartitionState {
    const state = this.state(tp);
    if (state === undefined) throw new DriftwoodError('ILLEGAL_STATE', `${tp.topic}-${tp.partition} is not assigned to this consumer`);
    return state;
  }

  add(tp: TopicPartition): PartitionState {
    const existing = this.state(tp);
    if (existing !== undefined) return existing;
    const state = new PartitionState(tp.topic, tp.partition);
    this.partitions.set(state.key, state);
    return state;
  }

  remove(tp: TopicPartition): void {
    const state = this.state(tp);
    if (state === undefined) return;
    // A fetch still on its way finds the partition gone (or a new state) and is dropped.
    state.generation += 1;
    state.dropRecords();
    this.partitions.delete(state.key);
  }

  /** Resolves when records may be there (or a partition has an error), or after `waitMs`. */
  waitForData(waitMs: number): Promise<void> {
    return new Promise((resolve) => {
      let cancel = (): void => undefined;
      const done = (): void => {
        this.waiters.delete(done);
        cancel();
        resolve();
      };
      this.waiters.add(done);
      cancel = this.timers.after(waitMs, done);
      if (this.timers.closed) done();
    });
  }

  /** Wakes every poll() that waits (new records, an error, a seek, close). */
  notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /**
   * Takes up to `recordsMax` buffered records of partitions not paused, starting at a
   * different partition each time so that none starves, and moves their positions past them.
   */
  take(recordsMax: number): ConsumerRecord[] {
    const states = [...this.partitions.values()];
    const taken: ConsumerRecord[] = [];
    for (let i = 0; i < states.length && taken.length < recordsMax; i += 1) {
      const state = states[(this.cursor + i) % states.length] as PartitionState;
      if (state.paused || !state.hasRecords) continue;
      const end = Math.min(state.records.length, state.taken + recordsMax - taken.length);
      for (let index = state.taken; index < end; index += 1) taken.push(state.records[index] as ConsumerRecord);
      state.taken = end;
      const last = taken.at(-1) as ConsumerRecord;
      state.position = last.offset + 1;
      if (state.taken >= state.records.length) state.dropRecords();
    }
    this.cursor = states.length === 0 ? 0 : (this.cursor + 1) % states.length;
    return taken;
  }

  /** The first error a partition holds for poll() to raise (and clear). */
  takeError(): DriftwoodError | null {
    for (const state of this.partitions.values()) {
      if (state.error !== null && !state.paused) {
        const error = state.error;
        state.error = null;
        return error;
      }
    }
    return null;
  }

  /** Starts offset lookups and fetches for every partition that can use one; arms a timer for the rest. */
  pump(): void {
    if (this.timers.closed) return;
    const nowMs = monotonicMs();
    let nextMs = Infinity;
    const unresolved: PartitionState[] = [];
    const fetchable: PartitionState[] = [];
    for (const state of this.partitions.values()) {
      if (state.error !== null || state.resolving || state.fetching || state.seeksPending > 0) continue;
      if (state.retryAtMs > nowMs) {
        nextMs = Math.min(nextMs, state.retryAtMs);
        continue;
      }
      if (state.position === null) unresolved.push(state);
      else if (!state.paused && !state.hasRecords) fetchable.push(state);
    }
    if (unresolved.length > 0) void this.resolvePositions(unresolved);
    // The partitions that waited longest go first: with more partitions than fetchesInFlightMax,
    // long polls of idle partitions must not keep the others from ever being fetched.
    fetchable.sort((a, b) => a.lastFetchMs - b.lastFetchMs);
    const bufferedBytes = this.bufferedBytes;
    for (const state of fetchable) {
      if (this.inFlight >= this.config.fetchesInFlightMax || bufferedBytes >= this.config.fetchBytesMax) break;
      void this.fetch(state);
    }
    this.wake.at(nextMs);
  }

  private backOff(state: PartitionState, error: unknown): void {
    if (needsMetadataRefresh(error)) this.metadata.invalidate(state.topic);
    state.retryAtMs = monotonicMs() + backoffMs(Math.min(state.failures, 30), this.client);
    state.failures += 1;
  }

  // --- fetching ---

  private async fetch(state: PartitionState): Promise<void> {
    const position = state.position;
    assert(position !== null && !state.fetching);
    const generation = state.generation;
    state.fetching = true;
    state.lastFetchMs = monotonicMs();
    this.inFlight += 1;
    try {
      const leader = await this.metadata.currentLeader(state.topic, state.partition);
      const epoch = Math.max(leader.leaderEpoch, state.leaderEpoch ?? -1);
      const query = `offset=${position}&maxBytes=${this.config.partitionFetchBytesMax}&maxWaitMs=${this.config.fetchMaxWaitMs}&minBytes=${this.config.fetchMinBytes}&leaderEpoch=${epoch}`;
      const path = `/v1/topics/${encodeURIComponent(state.topic)}/partitions/${state.partition}/records?${query}`;
      const answer = await this.connections.request(leader.address, { method: 'GET', path, timeoutMs: this.client.requestTimeoutMs + this.config.fetchMaxWaitMs });
      if (this.state(state) !== state || state.generation !== generation) return;
      if (answer.status >= 300) throw errorFromAnswer(answer);
      this.accept(state, position, answer);
      state.failures = 0;
    } catch (error) {
      if (this.state(state) !== state || state.generation !== generation || this.timers.closed) return;
      this.fetchFailed(state, asDriftwoodError(error));
    } finally {
      state.fetching = false;
      this.inFlight -= 1;
      this.notify();
      this.pump();
    }
  }

  /** Decodes a fetch answer into the partition's buffer: the records at or past `position`. */
  private accept(state: PartitionState, position: number, answer: HttpAnswer): void {
    const records: ConsumerRecord[] = [];
    const bytes = answer.body;
    for (let at = 0; at < bytes.length;) {
      const { header, records: decoded } = decodeBatch(bytes, at);
      at += header.sizeBytes;
      if ((header.attributes & CONTROL_FLAG) !== 0) continue;
      const logAppendTime = (header.attributes & TIMESTAMP_TYPE_LOG_APPEND_TIME_FLAG) !== 0;
      for (const record of decoded) {
        const offset = header.baseOffset + record.offsetDelta;
        // A batch comes back whole; records before the asked offset were returned already.
        if (offset < position) continue;
        records.push({
          topic: state.topic,
          partition: state.partition,
          offset,
          key: record.key,
          value: record.value,
          headers: record.headers,
          timestampMs: logAppendTime ? header.maxTimestamp : header.baseTimestamp + record.timestampDelta,
        });
      }
    }
    state.highWatermark = numberHeader(answer, 'x-driftwood-high-watermark') ?? state.highWatermark;
    const epoch = numberHeader(answer, 'x-driftwood-leader-epoch');
    if (epoch !== undefined) state.leaderEpoch = Math.max(epoch, state.leaderEpoch ?? -1);
    if (records.length > 0) {
      state.records = records;
      state.taken = 0;
      state.bufferedBytes = bytes.length;
      return;
    }
    // Nothing at or past the position (batches of control records only): skip to where the answer ends.
    const next = numberHeader(answer, 'x-driftwood-next-offset');
    if (next !== undefined && next > position && bytes.length > 0) state.position = next;
  }

  private fetchFailed(state: PartitionState, error: DriftwoodError): void {
    if (error.code === 'OFFSET_OUT_OF_RANGE') {
      this.outOfRange(state, error);
      return;
    }
    if (isRetriable(error)) {
      this.backOff(state, error);
      return;
    }
    state.error = error;
  }

  /** The position is outside the log (retention removed it, or it was never there): reset as the policy says. */
  private outOfRange(state: PartitionState, error: DriftwoodError): void {
    if (this.config.autoOffsetReset === 'none') {
      state.error = error;
      return;
    }
    state.position = null;
    state.resetByPolicy = true;
    state.generation += 1;
  }

  // --- positions ---

  /** Finds positions: committed offsets first (one lookup per topic), then the reset policy. */
  private async resolvePositions(states: PartitionState[]): Promise<void> {
    const byTopic = new Map<string, PartitionState[]>();
    for (const state of states) {
      state.resolving = true;
      byTopic.set(state.topic, [...(byTopic.get(state.topic) ?? []), state]);
    }
    await Promise.all([...byTopic].map(async ([topic, members]) => {
      const generations = members.map((state) => state.generation);
      try {
        const asking = members.filter((state) => !state.resetByPolicy).map((state) => state.partition);
        const committed = this.committed === null || asking.length === 0 ? new Map<number, number>() : await this.committed(topic, asking);
        await Promise.all(members.map(async (state, i) => {
          if (state.generation !== generations[i] || this.state(state) !== state) return;
          const offset = (state.resetByPolicy ? undefined : committed.get(state.partition)) ?? await this.resetOffset(state);
          if (state.generation !== generations[i] || this.state(state) !== state) return;
          state.seek(offset);
          state.failures = 0;
        }));
      } catch (error) {
        for (const state of members) {
          if (state.position !== null) continue;
          if (isDriftwoodError(error) && (isRetriable(error) || error.code === 'OFFSET_OUT_OF_RANGE')) this.backOff(state, error);
          else state.error = asDriftwoodError(error);
        }
      } finally {
        for (const state of members) state.resolving = false;
      }
    }));
    this.notify();
    this.pump();
  }

  private async resetOffset(state: PartitionState): Promise<number> {
    const policy = this.config.autoOffsetReset;
    if (policy === 'none') {
      throw new DriftwoodError('NO_OFFSET_FOR_PARTITION', `${state.topic}-${state.partition} has no committed offset and autoOffsetReset is none`);
    }
    return (await this.offsetFor(state, policy)).offset;
  }

  /**
   * The offset of `target` (earliest, latest, or the first record at or after a timestamp in
   * ms) asked of the partition's leader once; offset -1 when no record is that recent.
   */
  async offsetFor(tp: TopicPartition, target: 'earliest' | 'latest' | number): Promise<{ offset: number; logStartOffset: number; highWatermark: number }> {
    const leader = await this.metadata.currentLeader(tp.topic, tp.partition);
    const path = `/v1/topics/${encodeURIComponent(tp.topic)}/partitions/${tp.partition}/offsets?timestamp=${target}`;
    try {
      const answer = await this.connections.json<{ offset?: unknown; logStartOffset?: unknown; highWatermark?: unknown } | null>(leader.address, { method: 'GET', path, timeoutMs: this.client.requestTimeoutMs });
      const { offset, logStartOffset, highWatermark } = answer ?? {};
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(logStartOffset) || !Number.isSafeInteger(highWatermark)) {
        throw new DriftwoodError('CORRUPT_MESSAGE', `the offsets answer for ${tp.topic}-${tp.partition} lacks its offsets`);
      }
      return { offset: offset as number, logStartOffset: logStartOffset as number, highWatermark: highWatermark as number };
    } catch (error) {
      if (needsMetadataRefresh(error)) this.metadata.invalidate(tp.topic);
      throw error;
    }
  }
}
