// The consumer: assign() partitions yourself, or subscribe() to topics in a group whose
// coordinator assigns them; poll() (or `for await`) returns records in offset order per
// partition. Positions start at the committed offset, else where autoOffsetReset says; commits
// go to the group's coordinator (with the member id and epoch in a group, without them for a
// standalone consumer of a group that has no members).
import assert from 'node:assert/strict';
import { DriftwoodError, isDriftwoodError } from '../../storage/errors.js';
import { Connections } from './connections.js';
import { GroupCoordinator } from './coordinator.js';
import { Fetcher, partitionKey, type ConsumerRecord, type OffsetReset, type PartitionState, type TopicPartition } from './fetcher.js';
import { GroupMember, type Assignor } from './group-member.js';
import { Metadata } from './metadata.js';
import { checkedInteger, resolveClientOptions, type ClientOptions, type ResolvedClientOptions } from './options.js';
import { asDriftwoodError, isRetriable, monotonicMs, retryUntil, Timers } from './retry.js';

export type { ConsumerRecord, OffsetReset, TopicPartition } from './fetcher.js';
export type { Assignor } from './group-member.js';

type PartitionsCallback = (partitions: TopicPartition[]) => void | Promise<void>;

export interface ConsumerOptions extends ClientOptions {
  /** The consumer group: needed to subscribe() and to commit. */
  readonly groupId?: string;
  /** Where a partition without a committed offset (or outside the log) starts: 'earliest' (default), 'latest', or 'none' (an error). */
  readonly autoOffsetReset?: OffsetReset;
  /** Commit positions by itself (default true with a groupId): in poll() every autoCommitIntervalMs, on revocation and on close. */
  readonly autoCommit?: boolean;
  readonly autoCommitIntervalMs?: number;
  /** How long a fetch waits at the leader for records (default 500). */
  readonly fetchMaxWaitMs?: number;
  readonly fetchMinBytes?: number;
  /** Bytes one fetch of one partition asks for (default 1 MiB; at least one whole batch comes back). */
  readonly partitionFetchBytesMax?: number;
  /** Fetched bytes buffered at most before fetching pauses (default 50 MiB). */
  readonly fetchBytesMax?: number;
  /** Fetches in flight at once (default 32), one per partition at most. */
  readonly fetchesInFlightMax?: number;
  /** Records one poll() returns at most (default 500). */
  readonly pollRecordsMax?: number;
  /** How long commit(), committed(), position() and the seekTo* calls may take (default 60000). */
  readonly apiTimeoutMs?: number;
  /** In a group: without an answered heartbeat for this long the member is out (default 10000). */
  readonly sessionTimeoutMs?: number;
  readonly assignor?: Assignor;
  /** Called with partitions the group gave this member (before they are fetched). */
  readonly onPartitionsAssigned?: PartitionsCallback;
  /** Called with partitions the group took back, after their positions are committed (when committing). */
  readonly onPartitionsRevoked?: PartitionsCallback;
  /** Called with partitions dropped without a commit (fenced, or the session ran out). */
  readonly onPartitionsLost?: PartitionsCallback;
  /** Failures the consumer recovers from by itself (an auto-commit or heartbeat that failed), for logging. */
  readonly onError?: (error: DriftwoodError) => void;
}

export interface CommitOffset {
  readonly topic: string;
  readonly partition: number;
  /** The next offset to read (as in Kafka): the last processed record's offset + 1. */
  readonly offset: number;
  readonly metadata?: string;
}

export interface CommittedOffset {
  readonly topic: string;
  readonly partition: number;
  /** null when the group has no commit for the partition. */
  readonly offset: number | null;
  readonly metadata: string | null;
}

interface Resolved {
  readonly groupId: string | null;
  readonly autoOffsetReset: OffsetReset;
  readonly autoCommit: boolean;
  readonly autoCommitIntervalMs: number;
  readonly pollRecordsMax: number;
  readonly apiTimeoutMs: number;
  readonly sessionTimeoutMs: number;
  readonly assignor: Assignor;
}

/** How long the async iterator waits per poll before checking whether the consumer closed. */
const ITERATOR_POLL_MS = 1000;
const GROUP_ID_BYTES_MAX = 249;
/** Partitions one consumer may be assigned by hand at most. */
const ASSIGNED_PARTITIONS_MAX = 100_000;
/** Time on top of a long poll for its answer to arrive before close() ends the connection by force. */
const CLOSE_SLACK_MS = 2000;

export class Consumer implements AsyncIterable<ConsumerRecord> {
  private readonly client: ResolvedClientOptions;
  private readonly config: Resolved;
  private readonly options: ConsumerOptions;
  private readonly timers = new Timers();
  private readonly connections: Connections;
  private readonly metadata: Metadata;
  private readonly fetcher: Fetcher;
  private readonly coordinator: GroupCoordinator | null;
  private readonly fetchMaxWaitMs: number;
  private member: GroupMember | null = null;
  private mode: 'none' | 'assigned' | 'subscribed' = 'none';
  private fatal: DriftwoodError | null = null;
  private lastAutoCommitMs: number;
  private autoCommitting = false;
  private closedValue = false;
  private closing: Promise<void> | null = null;

  constructor(options: ConsumerOptions) {
    this.options = options;
    this.client = resolveClientOptions(options, 'consumer');
    this.config = resolveConsumerOptions(options);
    this.connections = new Connections(this.client.requestsPerBrokerMax, this.client.security);
    this.metadata = new Metadata(this.connections, this.client, this.timers);
    this.coordinator = this.config.groupId === null ? null : new GroupCoordinator(this.config.groupId, this.connections, this.metadata, this.client, this.timers);
    this.fetchMaxWaitMs = checkedInteger('fetchMaxWaitMs', options.fetchMaxWaitMs, 500, 0, 30_000);
    const fetchConfig = {
      autoOffsetReset: this.config.autoOffsetReset,
      fetchMaxWaitMs: this.fetchMaxWaitMs,
      fetchMinBytes: checkedInteger('fetchMinBytes', options.fetchMinBytes, 1, 0, 64 * 1024 * 1024),
      partitionFetchBytesMax: checkedInteger('partitionFetchBytesMax', options.partitionFetchBytesMax, 1024 * 1024, 1, 64 * 1024 * 1024),
      fetchBytesMax: checkedInteger('fetchBytesMax', options.fetchBytesMax, 50 * 1024 * 1024, 1, 2 ** 40),
      fetchesInFlightMax: checkedInteger('fetchesInFlightMax', options.fetchesInFlightMax, 32, 1, this.client.requestsPerBrokerMax),
    };
    const committed = this.coordinator === null ? null : (topic: string, partitions: readonly number[]) => this.committedOf(topic, partitions);
    this.fetcher = new Fetcher(this.connections, this.metadata, this.client, fetchConfig, this.timers, committed);
    this.lastAutoCommitMs = monotonicMs();
  }

  get closed(): boolean {
    return this.closedValue;
  }

  /** The group membership as the coordinator last answered it (memberId null outside a group). */
  groupMetadata(): { groupId: string | null; memberId: string | null; memberEpoch: number } {
    return { groupId: this.config.groupId, memberId: this.member?.memberId ?? null, memberEpoch: this.member?.memberEpoch ?? 0 };
  }

  // --- assignment ---

  /** Reads exactly these partitions (no group membership); replaces any earlier assign(). */
  assign(partitions: readonly TopicPartition[]): void {
    this.checkOpen();
    if (this.mode === 'subscribed') throw new DriftwoodError('ILLEGAL_STATE', 'assign() on a subscribed consumer; unsubscribe() first');
    if (partitions.length > ASSIGNED_PARTITIONS_MAX) throw new DriftwoodError('INVALID_REQUEST', `at most ${ASSIGNED_PARTITIONS_MAX} partitions`);
    partitions.forEach(checkTopicPartition);
    const wanted = new Set(partitions.map((tp) => partitionKey(tp.topic, tp.partition)));
    for (const state of [...this.fetcher.partitions.values()]) if (!wanted.has(state.key)) this.fetcher.remove(state);
    for (const tp of partitions) this.fetcher.add(tp);
    this.mode = partitions.length === 0 ? 'none' : 'assigned';
    this.fetcher.pump();
  }

  /** Joins the group (groupId) with these topics; the coordinator assigns their partitions among its members. */
  subscribe(topics: readonly string[]): void {
    this.checkOpen();
    if (this.mode === 'assigned') throw new DriftwoodError('ILLEGAL_STATE', 'subscribe() on a consumer with assigned partitions; assign([]) first');
    if (this.coordinator === null) throw new DriftwoodError('INVALID_GROUP_ID', 'subscribe() needs a groupId');
    if (topics.length === 0 || !topics.every((topic) => typeof topic === 'string' && topic.length > 0)) throw new DriftwoodError('INVALID_REQUEST', 'subscribe() takes topic names');
    this.mode = 'subscribed';
    if (this.member !== null) {
      this.member.subscribe(topics);
      return;
    }
    this.member = new GroupMember(this.coordinator, this.client, { sessionTimeoutMs: this.config.sessionTimeoutMs, assignor: this.config.assignor }, this.timers, {
      owned: () => this.assignment(),
      revoke: (partitions) => this.revoke(partitions),
      assign: (partitions) => this.takeUp(partitions),
      lose: (reason) => { this.lose(reason); },
      fatal: (error) => { this.fatal = error; this.fetcher.notify(); },
      warn: (error) => { this.warn(error); },
    }, topics);
    this.member.start();
  }

  /** Leaves the group (committing first when auto-committing) and drops every partition. */
  async unsubscribe(): Promise<void> {
    this.checkOpen();
    const member = this.member;
    if (member === null) return;
    await member.stop();
    await this.commitOnExit();
    await member.leave();
    this.member = null;
    for (const state of [...this.fetcher.partitions.values()]) this.fetcher.remove(state);
    this.mode = 'none';
    this.fatal = null;
  }

  /** The partitions this consumer holds now. */
  assignment(): TopicPartition[] {
    return [...this.fetcher.partitions.values()].map((state) => ({ topic: state.topic, partition: state.partition }));
  }

  // --- reading ---

  /**
   * Records fetched since the last poll, up to pollRecordsMax, waiting up to timeoutMs for
   * some. Raises a partition's error once (OFFSET_OUT_OF_RANGE with autoOffsetReset none,
   * NO_OFFSET_FOR_PARTITION, ...) and a group's fatal error on every call.
   */
  poll(timeoutMs = 0): Promise<ConsumerRecord[]> {
    return this.pollUpTo(timeoutMs, this.config.pollRecordsMax);
  }

  /** Records one at a time until close(); a record is consumed (for commits) once the loop asks for the next. */
  async *[Symbol.asyncIterator](): AsyncGenerator<ConsumerRecord, void, undefined> {
    while (!this.closedValue) {
      const [record] = await this.pollUpTo(ITERATOR_POLL_MS, 1);
      if (record !== undefined) yield record;
    }
  }

  private async pollUpTo(timeoutMs: number, recordsMax: number): Promise<ConsumerRecord[]> {
    this.checkOpen();
    assert(Number.isFinite(timeoutMs) && timeoutMs >= 0, 'poll timeout is a non-negative number of ms');
    if (this.mode === 'none') throw new DriftwoodError('ILLEGAL_STATE', 'poll() before subscribe() or assign()');
    this.maybeAutoCommit();
    const deadlineMs = monotonicMs() + timeoutMs;
    for (;;) {
      if (this.fatal !== null) throw this.fatal;
      const error = this.fetcher.takeError();
      if (error !== null) throw error;
      this.fetcher.pump();
      const records = this.fetcher.take(recordsMax);
      if (records.length > 0) return records;
      const leftMs = deadlineMs - monotonicMs();
      if (leftMs <= 0 || this.closedValue) return [];
      await this.fetcher.waitForData(leftMs);
    }
  }

  // --- positions ---

  /** The next offset poll() returns for the partition. */
  seek(tp: TopicPartition, offset: number): void {
    this.checkOpen();
    if (!Number.isSafeInteger(offset) || offset < 0) throw new DriftwoodError('INVALID_REQUEST', `offset ${offset} is not a non-negative integer`);
    const state = this.fetcher.assigned(tp);
    state.seekSerial += 1;
    state.seek(offset);
    this.fetcher.notify();
    this.fetcher.pump();
  }

  /** Moves to the log start of each partition (all assigned ones when none are named). */
  seekToBeginning(partitions?: readonly TopicPartition[]): Promise<void> {
    return this.seekTo(partitions, 'earliest');
  }

  /** Moves to the high watermark of each partition: only records produced from now on. */
  seekToEnd(partitions?: readonly TopicPartition[]): Promise<void> {
    return this.seekTo(partitions, 'latest');
  }

  /** Moves to the first record at or after `timestampMs` (to the end when none is that recent). */
  seekToTimestamp(partitions: readonly TopicPartition[] | undefined, timestampMs: number): Promise<void> {
    if (!Number.isSafeInteger(timestampMs) || timestampMs < 0) return Promise.reject(new DriftwoodError('INVALID_REQUEST', 'timestampMs is a non-negative integer'));
    return this.seekTo(partitions, timestampMs);
  }

  pause(partitions: readonly TopicPartition[]): void {
    this.checkOpen();
    for (const tp of partitions) this.fetcher.assigned(tp).paused = true;
  }

  resume(partitions: readonly TopicPartition[]): void {
    this.checkOpen();
    for (const tp of partitions) this.fetcher.assigned(tp).paused = false;
    this.fetcher.pump();
    this.fetcher.notify();
  }

  paused(): TopicPartition[] {
    return [...this.fetcher.partitions.values()].filter((state) => state.paused).map((state) => ({ topic: state.topic, partition: state.partition }));
  }

  /** The next offset poll() returns for the partition, looking it up (committed offset or reset policy) when not known yet. */
  async position(tp: TopicPartition): Promise<number> {
    this.checkOpen();
    const deadlineMs = monotonicMs() + this.config.apiTimeoutMs;
    for (;;) {
      const state = this.fetcher.assigned(tp);
      if (state.position !== null) return state.position;
      if (state.error !== null) throw state.error;
      const leftMs = deadlineMs - monotonicMs();
      if (leftMs <= 0) throw new DriftwoodError('REQUEST_TIMED_OUT', `the position of ${tp.topic}-${tp.partition} was not found within apiTimeoutMs ${this.config.apiTimeoutMs}`);
      this.fetcher.pump();
      await this.fetcher.waitForData(Math.min(leftMs, this.client.retryBackoffMsMax));
      this.checkOpen();
    }
  }

  private async seekTo(partitions: readonly TopicPartition[] | undefined, target: 'earliest' | 'latest' | number): Promise<void> {
    this.checkOpen();
    const states = (partitions ?? this.assignment()).map((tp) => this.fetcher.assigned(tp));
    const deadlineMs = monotonicMs() + this.config.apiTimeoutMs;
    await Promise.all(states.map(async (state) => {
      const serial = (state.seekSerial += 1);
      // What was fetched or looked up for the old position is of no use now.
      state.generation += 1;
      state.dropRecords();
      state.seeksPending += 1;
      try {
        const found = await this.retrying(() => this.fetcher.offsetFor(state, target), deadlineMs);
        const offset = found.offset >= 0 ? found.offset : found.highWatermark;
        // A later seek wins; a partition no longer assigned is left alone.
        if (state.seekSerial === serial && this.fetcher.state(state) === state) state.seek(offset);
      } finally {
        state.seeksPending -= 1;
      }
    }));
    this.fetcher.notify();
    this.fetcher.pump();
  }

  // --- commits ---

  /**
   * Commits `offsets` (default: the position of every assigned partition) and resolves once
   * they are durable. In a group the member must hold the partitions (STALE_MEMBER_EPOCH
   * otherwise) and be in the group (UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH); a standalone
   * consumer may commit only while the group has no members.
   */
  async commit(offsets?: readonly CommitOffset[]): Promise<void> {
    this.checkOpen();
    const list = offsets ?? this.positions(false);
    await this.sendCommit(list, monotonicMs() + this.config.apiTimeoutMs);
  }

  /** commit() without waiting; the callback (or onError) hears how it went. */
  commitAsync(offsets?: readonly CommitOffset[], callback?: (error: DriftwoodError | null) => void): void {
    this.commit(offsets).then(
      () => callback?.(null),
      (error: unknown) => {
        const failure = asDriftwoodError(error);
        if (callback === undefined) this.warn(failure);
        else callback(failure);
      },
    );
  }

  /** The group's committed offsets of these partitions (all assigned ones when none are named). */
  async committed(partitions?: readonly TopicPartition[]): Promise<CommittedOffset[]> {
    this.checkOpen();
    const coordinator = this.requireGroup();
    const wanted = partitions ?? this.assignment();
    const topics = [...new Set(wanted.map((tp) => tp.topic))];
    const query = topics.length === 1 ? `?topic=${encodeURIComponent(topics[0] as string)}` : '';
    const deadlineMs = monotonicMs() + this.config.apiTimeoutMs;
    const answer = await this.groupOffsets(coordinator, query, deadlineMs);
    const found = new Map(answer.map((o) => [partitionKey(o.topic, o.partition), o]));
    return wanted.map((tp) => {
      const entry = found.get(partitionKey(tp.topic, tp.partition));
      return { topic: tp.topic, partition: tp.partition, offset: entry?.offset ?? null, metadata: entry?.metadata ?? null };
    });
  }

  private positions(onlyChanged: boolean): CommitOffset[] {
    const list: CommitOffset[] = [];
    for (const state of this.fetcher.partitions.values()) {
      if (state.position === null || (onlyChanged && state.position === state.committedPosition)) continue;
      list.push({ topic: state.topic, partition: state.partition, offset: state.position });
    }
    return list;
  }

  private async sendCommit(offsets: readonly CommitOffset[], deadlineMs: number): Promise<void> {
    const coordinator = this.requireGroup();
    if (offsets.length === 0) return;
    for (const o of offsets) {
      checkTopicPartition(o);
      if (!Number.isSafeInteger(o.offset) || o.offset < 0) throw new DriftwoodError('INVALID_REQUEST', `offset ${o.offset} of ${o.topic}-${o.partition} is not a non-negative integer`);
    }
    const member = this.member;
    if (member !== null && member.memberId === null) throw new DriftwoodError('UNKNOWN_MEMBER_ID', 'the consumer is not in the group now (joining or rejoining); its partitions are not its own to commit');
    const body = {
      ...(member === null ? {} : { memberId: member.memberId, memberEpoch: member.memberEpoch }),
      offsets: offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset, ...(o.metadata === undefined ? {} : { metadata: o.metadata }) })),
    };
    await coordinator.request({ method: 'POST', path: `${coordinator.path}/offsets`, body }, deadlineMs);
    for (const o of offsets) {
      const state = this.fetcher.state(o);
      if (state !== undefined) state.committedPosition = o.offset;
    }
  }

  /** In poll(), as Kafka: commits what earlier polls returned once autoCommitIntervalMs has passed. */
  private maybeAutoCommit(): void {
    if (!this.config.autoCommit || this.autoCommitting || monotonicMs() - this.lastAutoCommitMs < this.config.autoCommitIntervalMs) return;
    if (this.member !== null && this.member.memberId === null) return;
    const offsets = this.positions(true);
    this.lastAutoCommitMs = monotonicMs();
    if (offsets.length === 0) return;
    this.autoCommitting = true;
    this.sendCommit(offsets, monotonicMs() + this.config.autoCommitIntervalMs)
      .catch((error: unknown) => { this.warn(asDriftwoodError(error)); })
      .finally(() => { this.autoCommitting = false; });
  }

  /** The commit on close or unsubscribe, when auto-committing and still a member (or standalone). */
  private async commitOnExit(): Promise<void> {
    if (!this.config.autoCommit) return;
    if (this.member !== null && this.member.memberId === null) return;
    try {
      await this.sendCommit(this.positions(true), monotonicMs() + this.config.apiTimeoutMs);
    } catch (error) {
      this.warn(asDriftwoodError(error));
    }
  }

  private async committedOf(topic: string, partitions: readonly number[]): Promise<Map<number, number>> {
    const coordinator = this.requireGroup();
    const answer = await this.groupOffsets(coordinator, `?topic=${encodeURIComponent(topic)}`, monotonicMs() + this.client.requestTimeoutMs);
    const wanted = new Set(partitions);
    return new Map(answer.filter((o) => o.topic === topic && wanted.has(o.partition) && o.offset !== null).map((o) => [o.partition, o.offset as number]));
  }

  private async groupOffsets(coordinator: GroupCoordinator, query: string, deadlineMs: number): Promise<CommittedOffset[]> {
    let answer: { offsets?: unknown };
    try {
      answer = await coordinator.request<{ offsets?: unknown }>({ method: 'GET', path: `${coordinator.path}/offsets${query}` }, deadlineMs);
    } catch (error) {
      if (isDriftwoodError(error, 'GROUP_ID_NOT_FOUND')) return [];
      throw error;
    }
    if (!Array.isArray(answer.offsets)) throw new DriftwoodError('CORRUPT_MESSAGE', 'the group offsets answer has no offsets');
    return (answer.offsets as unknown[]).map((raw) => {
      const o = raw as { topic?: unknown; partition?: unknown; offset?: unknown; metadata?: unknown } | null;
      if (o === null || typeof o.topic !== 'string' || !Number.isInteger(o.partition) || !Number.isSafeInteger(o.offset)) throw new DriftwoodError('CORRUPT_MESSAGE', 'a group offset is not {topic, partition, offset}');
      return { topic: o.topic, partition: o.partition as number, offset: o.offset as number, metadata: typeof o.metadata === 'string' ? o.metadata : null };
    });
  }

  // --- group hooks ---

  private async revoke(partitions: TopicPartition[]): Promise<void> {
    const states = partitions.map((tp) => this.fetcher.state(tp)).filter((state): state is PartitionState => state !== undefined);
    const offsets = states.filter((s) => s.position !== null && s.position !== s.committedPosition).map((s) => ({ topic: s.topic, partition: s.partition, offset: s.position as number }));
    for (const state of states) this.fetcher.remove(state);
    if (this.config.autoCommit && offsets.length > 0) {
      try {
        // Bounded well inside the session: the coordinator waits for this member's acknowledgement.
        await this.sendCommit(offsets, monotonicMs() + Math.min(this.config.apiTimeoutMs, this.config.sessionTimeoutMs / 2));
      } catch (error) {
        this.warn(asDriftwoodError(error));
      }
    }
    await this.callback(this.options.onPartitionsRevoked, partitions);
  }

  /** As Kafka: the application hears of new partitions before anything of them is fetched. */
  private async takeUp(partitions: TopicPartition[]): Promise<void> {
    await this.callback(this.options.onPartitionsAssigned, partitions);
    if (this.closedValue) return;
    for (const tp of partitions) this.fetcher.add(tp);
    this.fetcher.pump();
  }

  private lose(reason: DriftwoodError): void {
    const lost = this.assignment();
    for (const state of [...this.fetcher.partitions.values()]) this.fetcher.remove(state);
    this.warn(reason);
    if (lost.length > 0) void this.callback(this.options.onPartitionsLost, lost);
  }

  private async callback(callback: PartitionsCallback | undefined, partitions: TopicPartition[]): Promise<void> {
    if (callback === undefined) return;
    try {
      await callback(partitions);
    } catch (error) {
      this.warn(asDriftwoodError(error));
    }
  }

  // --- closing ---

  /** Commits (when auto-committing), leaves the group, and closes every connection. Idempotent. */
  close(): Promise<void> {
    this.closedValue = true;
    this.fetcher.notify();
    this.closing ??= (async () => {
      await this.member?.stop();
      await this.commitOnExit();
      await this.member?.leave();
      this.timers.close();
      this.fetcher.notify();
      // Long polls end within fetchMaxWaitMs: close after them rather than cut them off.
      await this.connections.close(this.fetchMaxWaitMs + CLOSE_SLACK_MS);
    })();
    return this.closing;
  }

  // --- helpers ---

  private checkOpen(): void {
    if (this.closedValue) throw new DriftwoodError('CLIENT_CLOSED', 'the consumer is closed');
  }

  private requireGroup(): GroupCoordinator {
    if (this.coordinator === null) throw new DriftwoodError('INVALID_GROUP_ID', 'commits need a groupId');
    return this.coordinator;
  }

  private warn(error: DriftwoodError): void {
    this.options.onError?.(error);
  }

  /** Runs `call` again after retriable failures, with backoff, until `deadlineMs`. */
  private retrying<T>(call: () => Promise<T>, deadlineMs: number): Promise<T> {
    return retryUntil(call, isRetriable, deadlineMs, this.client, this.timers);
  }
}

function resolveConsumerOptions(options: ConsumerOptions): Resolved {
  const groupId = options.groupId ?? null;
  if (groupId !== null && (typeof groupId !== 'string' || groupId.length === 0 || Buffer.byteLength(groupId) > GROUP_ID_BYTES_MAX)) {
    throw new DriftwoodError('INVALID_GROUP_ID', `a group id is 1 to ${GROUP_ID_BYTES_MAX} bytes`);
  }
  const autoOffsetReset = options.autoOffsetReset ?? 'earliest';
  if (!['earliest', 'latest', 'none'].includes(autoOffsetReset)) throw new DriftwoodError('INVALID_CONFIG', 'autoOffsetReset is earliest, latest or none');
  if (options.autoCommit === true && groupId === null) throw new DriftwoodError('INVALID_CONFIG', 'autoCommit needs a groupId');
  const assignor: string = options.assignor ?? 'range';
  if (assignor !== 'range' && assignor !== 'roundrobin') throw new DriftwoodError('INVALID_CONFIG', 'assignor is range or roundrobin');
  return {
    groupId,
    autoOffsetReset,
    autoCommit: options.autoCommit ?? groupId !== null,
    autoCommitIntervalMs: checkedInteger('autoCommitIntervalMs', options.autoCommitIntervalMs, 5000, 1, 3_600_000),
    pollRecordsMax: checkedInteger('pollRecordsMax', options.pollRecordsMax, 500, 1, 1_000_000),
    apiTimeoutMs: checkedInteger('apiTimeoutMs', options.apiTimeoutMs, 60_000, 1, 3_600_000),
    sessionTimeoutMs: checkedInteger('sessionTimeoutMs', options.sessionTimeoutMs, 10_000, 1000, 300_000),
    assignor,
  };
}

function checkTopicPartition(tp: TopicPartition): void {
  if (typeof tp.topic !== 'string' || tp.topic.length === 0 || !Number.isInteger(tp.partition) || tp.partition < 0) {
    throw new DriftwoodError('INVALID_REQUEST', 'a partition is {topic, partition} with a non-negative partition number');
  }
}
