// One hosted replica of a partition: its log, and the role the metadata image gives this
// broker for it. As leader it appends produce batches under its leader epoch, serves
// follower fetches (answering a diverging epoch when a follower's log forked, KIP-101 and
// KIP-320), tracks each follower's log end, advances the high watermark to the minimum over
// the ISR, completes acks=all produces once the high watermark passes them, and proposes ISR
// shrinks and expansions. As follower it appends what it fetched and truncates where its
// log diverged. Batches stay bytes throughout.
//
// Idempotent producers (KIP-98): the partition keeps a ProducerStateManager equal to its log.
// Leader appends run together: each checks its batches and reserves them as pending in one
// synchronous step, then writes. Everything else that changes the state (a follower append
// replayed from the headers, a truncation or start-over followed by a rebuild from the log)
// runs alone, after the leader writes in flight settled, and leader appends wait for it. A new
// leader epoch is such a barrier too: a write of the previous epoch that the log then refuses
// is off the state before the first batch of the new epoch is judged against it.
import assert from 'node:assert/strict';
import type { Clock, TimerHandle } from '../../storage/clock.js';
import { DriftwoodError } from '../../storage/errors.js';
import type { AppendResult, PartitionLog, ReadResult } from '../../storage/partition-log.js';
import { isPending, PRODUCER_ID_EXPIRATION_MS_DEFAULT, ProducerStateManager, type PendingBatch, type ProducerBatch } from '../../storage/producer-state.js';
import { checkRecordsPerBatch, readBatchHeader, splitBatches, type BatchHeader } from '../../storage/record-batch.js';
import type { PartitionState } from '../controller/image.js';
import { NO_LEADER } from '../controller/records.js';
import { sameMembers } from '../controller/partition-change.js';

export type Acks = 0 | 1 | -1;

const NO_BYTES = Buffer.alloc(0);

/** Deliberate defects the cluster simulator must catch (`driftwood sim cluster --bug`); never set otherwise. */
export type ReplicaBug = 'ack-before-isr' | 'truncate-to-hw' | 'hw-regress' | 'idempotence-off';
export const replicaBugs: readonly ReplicaBug[] = ['ack-before-isr', 'truncate-to-hw', 'hw-regress', 'idempotence-off'];

export interface ReplicaConfig {
  /** A follower that has not reached the leader's log end for this long leaves the ISR (replica.lag.time.max.ms). */
  readonly replicaLagTimeMaxMs: number;
  /** A producer silent this long is forgotten (producer.id.expiration.ms); default PRODUCER_ID_EXPIRATION_MS_DEFAULT. */
  readonly producerIdExpirationMs?: number;
  readonly bugs?: ReadonlySet<ReplicaBug>;
}

export const defaultReplicaConfig: ReplicaConfig = { replicaLagTimeMaxMs: 10_000 };

interface FollowerState {
  /** The follower's log end as its last fetch said (-1: not heard from in this leader epoch). */
  logEndOffset: number;
  lastCaughtUpMs: number;
  /** The leader's log end at the follower's previous fetch (Kafka's lastFetchLeaderLogEndOffset). */
  lastFetchLeaderLogEndOffset: number;
  lastFetchMs: number;
}

interface AckWaiter {
  /** Resolves once the high watermark reaches this offset. */
  readonly offset: number;
  /** The topic's min.insync.replicas: the committed ISR must still be this large when the high watermark passes. */
  readonly minInsyncReplicas: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  readonly timer: TimerHandle;
}

export interface FollowerFetch {
  readonly followerId: number;
  /** The leader epoch the follower believes current. */
  readonly leaderEpoch: number;
  readonly fetchOffset: number;
  /** Epoch of the follower's last batch (-1 for an empty log). */
  readonly lastFetchedEpoch: number;
  readonly bytesMax: number;
}

export type FollowerFetchAnswer =
  | { readonly kind: 'records'; readonly bytes: Buffer; readonly highWatermark: number; readonly logStartOffset: number; readonly logEndOffset: number }
  /** The follower's log forked from the leader's: truncate to the end of `epoch` (at most `endOffset`) and fetch again. */
  | { readonly kind: 'diverging'; readonly epoch: number; readonly endOffset: number; readonly highWatermark: number }
  /** The follower is below the leader's log start: start over from there. */
  | { readonly kind: 'start-over'; readonly logStartOffset: number; readonly highWatermark: number };

export class Partition {
  private stateValue: PartitionState;
  private highWatermarkValue: number;
  private readonly followers = new Map<number, FollowerState>();
  private waiters: AckWaiter[] = [];
  /** An ISR change sent to the controller and not yet in the image; HW counts its members too. */
  private pendingIsr: readonly number[] | null = null;
  /** The pending change's answer was lost: the controller may have committed it. It is sent again. */
  private pendingIsrUnanswered = false;
  private readonly changeListeners = new Set<() => void>();
  private producers: ProducerStateManager;
  /** Each pending batch's write, resolving with its request's batches as written (a retry of one waits here). */
  private readonly pendingWrites = new Map<PendingBatch, Promise<ReadonlyMap<PendingBatch, ProducerBatch>>>();
  /** Leader writes in flight (until written or refused, not until acknowledged). */
  private readonly leaderWrites = new Set<Promise<unknown>>();
  /** The last of the state changes that run alone (see the header), or null when none is queued. */
  private exclusiveTail: Promise<void> | null = null;

  private constructor(
    private readonly brokerId: number,
    readonly log: PartitionLog,
    state: PartitionState,
    private readonly clock: Clock,
    private readonly config: ReplicaConfig,
    highWatermark: number,
  ) {
    this.stateValue = state;
    this.highWatermarkValue = Math.min(highWatermark, log.logEndOffset);
    this.producers = new ProducerStateManager(config.producerIdExpirationMs ?? PRODUCER_ID_EXPIRATION_MS_DEFAULT);
  }

  /** Opens a hosted replica in the role the image gives it, its producer state rebuilt from the log. */
  static async open(brokerId: number, log: PartitionLog, state: PartitionState, clock: Clock, config: ReplicaConfig, highWatermark: number): Promise<Partition> {
    const partition = new Partition(brokerId, log, state, clock, config, highWatermark);
    await partition.rebuildProducerState();
    if (partition.isLeader) await partition.becomeLeader();
    else await partition.becomeFollower();
    return partition;
  }

  /** Followers keep their log and let the leader's epochs say where it diverged (KIP-101). */
  private async becomeFollower(): Promise<void> {
    // The defect KIP-101 fixed: cut to the high watermark, which may be below what the
    // leader has committed.
    if (this.config.bugs?.has('truncate-to-hw') === true) await this.log.truncateTo(Math.max(this.highWatermarkValue, this.log.logStartOffset));
  }

  private async becomeLeader(): Promise<void> {
    this.resetFollowers();
    // The barrier of a new epoch (see the header): nothing to do but wait for the writes in flight.
    void this.exclusively(() => Promise.resolve());
    await this.log.beginLeaderEpoch(this.stateValue.leaderEpoch);
    // A leader alone in its ISR commits what it holds now: no fetch or append may come to
    // move the high watermark of an idle partition (sim: __consumer_offsets never loaded).
    this.advanceHighWatermark();
  }

  get state(): PartitionState {
    return this.stateValue;
  }

  get isLeader(): boolean {
    return this.stateValue.leader === this.brokerId;
  }

  get highWatermark(): number {
    return this.highWatermarkValue;
  }

  /** Where this leader's epoch began: its log end when it was elected. */
  get leaderEpochStartOffset(): number {
    return this.log.epochEntries.find((entry) => entry.epoch === this.stateValue.leaderEpoch)?.startOffset ?? this.log.logEndOffset;
  }

  /**
   * Whether this leader's high watermark may be shown to clients. A new leader learned its
   * high watermark lazily as a follower (or from a checkpoint after a restart), so it may be
   * below what the previous leader served; once it reaches the start of this leader's own
   * epoch it is at least every high watermark any earlier leader had (Kafka's KIP-207 rule,
   * Raft's "commit an entry of your own term"). Until then clients get OFFSET_NOT_AVAILABLE.
   */
  get highWatermarkEstablished(): boolean {
    if (!this.isLeader) return false;
    return this.config.bugs?.has('hw-regress') === true || this.highWatermarkValue >= this.leaderEpochStartOffset;
  }

  get name(): string {
    return `${this.stateValue.topicId}-${this.stateValue.partition}`;
  }

  /**
   * The image changed this partition. A new leader epoch resets follower tracking; an ISR
   * change the controller committed replaces any pending one. Losing leadership fails the
   * acks=all produces still waiting (they may yet commit under the new leader).
   */
  async update(state: PartitionState): Promise<void> {
    const previous = this.stateValue;
    assert(state.leaderEpoch >= previous.leaderEpoch, `${this.name}: leader epoch went back from ${previous.leaderEpoch} to ${state.leaderEpoch}`);
    this.stateValue = state;
    if (state.partitionEpoch !== previous.partitionEpoch) {
      this.pendingIsr = null;
      this.pendingIsrUnanswered = false;
    }
    if (state.leaderEpoch !== previous.leaderEpoch || state.leader !== previous.leader) {
      if (this.isLeader) {
        await this.becomeLeader();
      } else {
        this.failWaiters(new DriftwoodError('NOT_LEADER_OR_FOLLOWER', `broker ${this.brokerId} no longer leads ${this.name}; the write may still be committed`, { leader: state.leader }));
        await this.becomeFollower();
      }
      // Fetch sessions read only partitions that changed: a new role is news to followers.
      this.notifyChange();
    } else if (this.isLeader && !sameMembers(state.replicas, previous.replicas)) {
      this.syncFollowers();
    }
    if (this.isLeader) this.advanceHighWatermark();
  }

  /** The ISR members whose log ends bound the high watermark: the committed ISR plus pending additions. */
  private maximalIsr(): readonly number[] {
    const isr = this.stateValue.isr;
    return this.pendingIsr === null ? isr : [...new Set([...isr, ...this.pendingIsr])];
  }

  /**
   * A reassignment changed the replicas under the same leader: replicas being added start
   * unknown and out of sync (they join the ISR once they reach the high watermark), removed
   * ones are forgotten; the others keep what the leader knows of them.
   */
  private syncFollowers(): void {
    for (const id of [...this.followers.keys()]) if (!this.stateValue.replicas.includes(id)) this.followers.delete(id);
    for (const id of this.stateValue.replicas) {
      if (id === this.brokerId || this.followers.has(id)) continue;
      this.followers.set(id, { logEndOffset: -1, lastCaughtUpMs: 0, lastFetchLeaderLogEndOffset: -1, lastFetchMs: 0 });
    }
  }

  /** How far each follower has fetched (-1: not yet under this leader), for reassignment progress. */
  followerLogEndOffsets(): Array<{ id: number; logEndOffset: number }> {
    return [...this.followers].map(([id, follower]) => ({ id, logEndOffset: follower.logEndOffset }));
  }

  private resetFollowers(): void {
    this.followers.clear();
    const nowMs = this.clock.monotonicMs();
    for (const id of this.stateValue.replicas) {
      if (id === this.brokerId) continue;
      // ISR members get a full lag window to show up under the new leader.
      this.followers.set(id, { logEndOffset: -1, lastCaughtUpMs: this.stateValue.isr.includes(id) ? nowMs : 0, lastFetchLeaderLogEndOffset: -1, lastFetchMs: 0 });
    }
  }

  // --- leader: produce ---

  /**
   * Appends batches as leader. acks=0 and 1 resolve once written locally; acks=all once the
   * high watermark passed the batches, or fails with REQUEST_TIMED_OUT after timeoutMs (the
   * write may still commit). Refuses with NOT_ENOUGH_REPLICAS before appending when the ISR
   * is smaller than min.insync.replicas. Batches with a producer id are checked against the
   * producer state first (INVALID_PRODUCER_EPOCH, OUT_OF_ORDER_SEQUENCE_NUMBER,
   * UNKNOWN_PRODUCER_ID: nothing written); a request that only repeats batches written (or
   * being written) is answered with the originals' offsets, as their own answer was.
   */
  async appendAsLeader(bytes: Buffer, acks: Acks, minInsyncReplicas: number, timeoutMs: number): Promise<AppendResult> {
    this.checkLeader();
    if (acks === -1 && this.stateValue.isr.length < minInsyncReplicas) {
      throw new DriftwoodError('NOT_ENOUGH_REPLICAS', `${this.name} has ${this.stateValue.isr.length} in-sync replicas, min.insync.replicas is ${minInsyncReplicas}`, { isr: this.stateValue.isr });
    }
    const headers = splitBatches(bytes, this.log.config.messageBytesMax);
    // Produced batches only: a follower copies what its leader accepted.
    let position = 0;
    for (const header of headers) {
      checkRecordsPerBatch(header, position);
      position += header.sizeBytes;
    }
    while (this.exclusiveTail !== null) await this.exclusiveTail;
    this.checkLeader();
    // From here to the log's enqueue nothing awaits: the check, the reservation and the
    // write's place in the log are one step, so a concurrent retry sees this batch pending.
    const epoch = this.stateValue.leaderEpoch;
    // The idempotence-off defect writes every batch as if it had no producer id.
    const admission = this.config.bugs?.has('idempotence-off') === true ? { kind: 'append' as const, pending: [] } : this.producers.admit(headers, this.clock.nowMs());
    if (admission.kind === 'duplicate') return this.answerDuplicate(admission.originals, headers, acks, minInsyncReplicas, timeoutMs, epoch);
    const result = await this.writeAsLeader(bytes, headers, admission.pending, epoch);
    this.notifyChange();
    this.advanceHighWatermark();
    if (acks !== -1) return result;
    if (!this.isLeader || this.stateValue.leaderEpoch !== epoch) {
      // Deposed while the batches were written: no high watermark of ours will confirm them.
      throw new DriftwoodError('NOT_LEADER_OR_FOLLOWER', `broker ${this.brokerId} lost the leadership of ${this.name} while appending; the write may still be committed`, { leader: this.stateValue.leader });
    }
    await this.waitForHighWatermark(result.lastOffset + 1, minInsyncReplicas, timeoutMs);
    return result;
  }

  /**
   * Writes admitted batches; as the write settles (in log order) the pending batches become
   * written ones, or leave the state when the log refused them.
   */
  private writeAsLeader(bytes: Buffer, headers: readonly BatchHeader[], pending: readonly PendingBatch[], epoch: number): Promise<AppendResult> {
    const write = this.log.append(bytes, { leaderEpoch: epoch, headers });
    // Batches without a producer id leave nothing in the state to settle.
    if (pending.length === 0) return write;
    const settled = write.then(
      (result) => this.completePending(bytes, pending, result),
      (error: unknown) => {
        for (const batch of pending) this.producers.abandon(batch);
        throw error;
      },
    );
    settled.catch(() => undefined); // a retry waiting on it sees the failure; nobody else must
    for (const batch of pending) this.pendingWrites.set(batch, settled);
    const tracked = settled.then(() => undefined, () => undefined).finally(() => {
      this.leaderWrites.delete(tracked);
      for (const batch of pending) this.pendingWrites.delete(batch);
    });
    this.leaderWrites.add(tracked);
    return write;
  }

  /** The written batches' offsets, read back from the bytes the log stamped in place. */
  private completePending(bytes: Buffer, pending: readonly PendingBatch[], result: AppendResult): Map<PendingBatch, ProducerBatch> {
    const written = new Map<PendingBatch, ProducerBatch>();
    const nowMs = this.clock.nowMs();
    let next = 0;
    for (let position = 0; position < bytes.length;) {
      const header = readBatchHeader(bytes, position);
      position += header.sizeBytes;
      if (header.producerId < 0) continue;
      const batch = pending[next];
      next += 1;
      assert(batch !== undefined && batch.producerId === header.producerId && batch.firstSeq === header.baseSequence, `${this.name}: the pending batches are not those written`);
      assert(header.baseOffset >= result.baseOffset && header.baseOffset <= result.lastOffset);
      const timestampMs = result.logAppendTimeMs >= 0 ? result.logAppendTimeMs : header.maxTimestamp;
      written.set(batch, this.producers.complete(batch, header.baseOffset, header.baseOffset + header.lastOffsetDelta, nowMs, timestampMs));
    }
    assert.equal(next, pending.length, `${this.name}: ${pending.length - next} pending batches were not written`);
    return written;
  }

  /**
   * A request that only repeats batches already written (or being written): the answer the
   * originals got, once they are written, and for acks=all once the high watermark passed
   * them. The client cannot tell it from the first answer.
   */
  private async answerDuplicate(originals: ReadonlyArray<ProducerBatch | PendingBatch>, headers: readonly BatchHeader[], acks: Acks, minInsyncReplicas: number, timeoutMs: number, epoch: number): Promise<AppendResult> {
    const written = await Promise.all(originals.map((batch): Promise<ProducerBatch> => {
      if (!isPending(batch)) return Promise.resolve(batch);
      const pending = this.pendingWrites.get(batch);
      assert(pending !== undefined, `${this.name}: a pending batch without its write`);
      return pending.then((batches) => {
        const found = batches.get(batch);
        assert(found !== undefined, `${this.name}: a pending batch missing from its write`);
        return found;
      });
    }));
    const first = written[0];
    const last = written.at(-1);
    assert(first !== undefined && last !== undefined);
    const result: AppendResult = {
      baseOffset: first.firstOffset,
      lastOffset: last.lastOffset,
      recordCount: headers.reduce((sum, header) => sum + header.recordCount, 0),
      logAppendTimeMs: this.log.config.timestampType === 'LogAppendTime' ? last.timestampMs : -1,
    };
    if (acks !== -1) return result;
    if (!this.isLeader || this.stateValue.leaderEpoch !== epoch) {
      throw new DriftwoodError('NOT_LEADER_OR_FOLLOWER', `broker ${this.brokerId} lost the leadership of ${this.name} while a retried write waited; it may still be committed`, { leader: this.stateValue.leader });
    }
    await this.waitForHighWatermark(result.lastOffset + 1, minInsyncReplicas, timeoutMs);
    return result;
  }

  private waitForHighWatermark(offset: number, minInsyncReplicas: number, timeoutMs: number): Promise<void> {
    if (this.highWatermarkValue >= offset) return this.enoughReplicasAfterAppend(minInsyncReplicas) ? Promise.resolve() : Promise.reject(this.tooFewAfterAppend());
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimer(timeoutMs, () => {
        this.waiters = this.waiters.filter((waiter) => waiter.timer !== timer);
        reject(new DriftwoodError('REQUEST_TIMED_OUT', `the in-sync replicas of ${this.name} did not confirm within ${timeoutMs} ms; the write may still be committed`));
      });
      this.waiters.push({ offset, minInsyncReplicas, resolve, reject, timer });
    });
  }

  /**
   * Kafka's rule: the ISR may shrink while a write waits, and a high watermark that then
   * passes it counts fewer copies than min.insync.replicas promised; the producer is told so
   * (NOT_ENOUGH_REPLICAS_AFTER_APPEND) instead of getting an acknowledgement.
   */
  private enoughReplicasAfterAppend(minInsyncReplicas: number): boolean {
    return this.stateValue.isr.length >= minInsyncReplicas;
  }

  private tooFewAfterAppend(): DriftwoodError {
    return new DriftwoodError('NOT_ENOUGH_REPLICAS_AFTER_APPEND', `${this.name} has ${this.stateValue.isr.length} in-sync replicas now`, { isr: this.stateValue.isr });
  }

  private failWaiters(error: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) {
      waiter.timer.cancel();
      waiter.reject(error);
    }
  }

  /** HW = the smallest log end over the (maximal) ISR; it never goes back. */
  private advanceHighWatermark(): void {
    if (!this.isLeader) return;
    let candidate = this.ownEndForHighWatermark();
    const ackBeforeIsr = this.config.bugs?.has('ack-before-isr') === true;
    for (const id of ackBeforeIsr ? [] : this.maximalIsr()) {
      if (id === this.brokerId) continue;
      const follower = this.followers.get(id);
      candidate = Math.min(candidate, follower?.logEndOffset ?? -1);
    }
    if (candidate <= this.highWatermarkValue) return;
    this.setHighWatermark(candidate);
    const due = this.waiters.filter((waiter) => waiter.offset <= candidate);
    if (due.length === 0) return;
    this.waiters = this.waiters.filter((waiter) => waiter.offset > candidate);
    for (const waiter of due) {
      waiter.timer.cancel();
      if (this.enoughReplicasAfterAppend(waiter.minInsyncReplicas)) waiter.resolve();
      else waiter.reject(this.tooFewAfterAppend());
    }
  }

  /**
   * What this leader's own log contributes to the high watermark. When the topic syncs every
   * append (flush.ms 0), only what is on disk, as followers report only synced ends: counting
   * the log end let a sole ISR member show consumers records a power loss then took back (sim
   * seed 394). Otherwise the log end, as in Kafka, where durability comes from replication.
   */
  private ownEndForHighWatermark(): number {
    return this.log.syncsEveryAppend ? this.log.flushedOffset : this.log.logEndOffset;
  }

  private setHighWatermark(offset: number): void {
    assert(offset >= this.highWatermarkValue, `${this.name}: high watermark went back from ${this.highWatermarkValue} to ${offset}`);
    assert(offset <= this.log.logEndOffset, `${this.name}: high watermark ${offset} above the log end ${this.log.logEndOffset}`);
    this.highWatermarkValue = offset;
    this.notifyChange();
  }

  /** Called after every leader append and high-watermark move (waiting fetches listen). */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => { this.changeListeners.delete(listener); };
  }

  private notifyChange(): void {
    for (const listener of [...this.changeListeners]) listener();
  }

  // --- leader: reads ---

  /** Consumer read: whole batches from `offset`, only below the high watermark. */
  async readCommitted(offset: number, bytesMax: number): Promise<ReadResult> {
    if (offset > this.highWatermarkValue && offset <= this.log.logEndOffset) {
      // Above the high watermark but inside the log: nothing to read yet, not an error.
      return { bytes: Buffer.alloc(0), nextOffset: offset, logStartOffset: this.log.logStartOffset, logEndOffset: this.log.logEndOffset };
    }
    try {
      return await this.log.read(offset, { bytesMax, offsetEnd: this.highWatermarkValue });
    } catch (error) {
      if (error instanceof DriftwoodError && error.code === 'OFFSET_OUT_OF_RANGE') {
        throw new DriftwoodError('OFFSET_OUT_OF_RANGE', `offset ${offset} is outside [${this.log.logStartOffset}, ${this.highWatermarkValue}]`, { logStartOffset: this.log.logStartOffset, highWatermark: this.highWatermarkValue });
      }
      throw error;
    }
  }

  /**
   * A follower's fetch: checks its view of the leader epoch, finds where its log diverged
   * from ours, records how far it got (for the ISR and the high watermark) and returns the
   * batches after its fetch offset, up to our log end.
   */
  async readForFollower(fetch: FollowerFetch): Promise<FollowerFetchAnswer> {
    this.checkLeader();
    const follower = this.followers.get(fetch.followerId);
    if (follower === undefined) throw new DriftwoodError('NOT_LEADER_OR_FOLLOWER', `broker ${fetch.followerId} is not a replica of ${this.name}`);
    this.checkEpoch(fetch.leaderEpoch);
    const log = this.log;
    // Checked at every offset, the log start included: a follower with an empty log can still
    // name an epoch it led without writing (sim seed 88).
    if (fetch.lastFetchedEpoch >= 0) {
      const end = log.endOffsetForEpoch(fetch.lastFetchedEpoch);
      if (end.epoch < fetch.lastFetchedEpoch || end.endOffset < fetch.fetchOffset) {
        return { kind: 'diverging', epoch: end.epoch, endOffset: end.endOffset, highWatermark: this.highWatermarkValue };
      }
    }
    if (fetch.fetchOffset < log.logStartOffset) return { kind: 'start-over', logStartOffset: log.logStartOffset, highWatermark: this.highWatermarkValue };
    if (fetch.fetchOffset > log.logEndOffset) {
      // Only a fork can put a follower past our end, and its last epoch then ends earlier
      // here; without an epoch (empty history) it starts over from our log start.
      return { kind: 'diverging', epoch: log.latestEpoch, endOffset: log.logEndOffset, highWatermark: this.highWatermarkValue };
    }
    this.recordFollowerFetch(follower, fetch.fetchOffset);
    // A follower at our log end (the idle case), or one whose answer has no room left, needs no read.
    if (fetch.fetchOffset === log.logEndOffset || fetch.bytesMax <= 0) return { kind: 'records', bytes: NO_BYTES, highWatermark: this.highWatermarkValue, logStartOffset: log.logStartOffset, logEndOffset: log.logEndOffset };
    const read = await log.read(fetch.fetchOffset, { bytesMax: fetch.bytesMax });
    return { kind: 'records', bytes: read.bytes, highWatermark: this.highWatermarkValue, logStartOffset: read.logStartOffset, logEndOffset: read.logEndOffset };
  }

  /** Kafka's rule: caught up if it reached our current end, or the end we had at its previous fetch. */
  private recordFollowerFetch(follower: FollowerState, fetchOffset: number): void {
    const nowMs = this.clock.monotonicMs();
    const leaderEnd = this.log.logEndOffset;
    if (fetchOffset >= leaderEnd) follower.lastCaughtUpMs = nowMs;
    else if (follower.lastFetchLeaderLogEndOffset >= 0 && fetchOffset >= follower.lastFetchLeaderLogEndOffset) follower.lastCaughtUpMs = Math.max(follower.lastCaughtUpMs, follower.lastFetchMs);
    follower.logEndOffset = fetchOffset;
    follower.lastFetchLeaderLogEndOffset = leaderEnd;
    follower.lastFetchMs = nowMs;
    this.advanceHighWatermark();
  }

  /**
   * The ISR this leader wants now, or null for no change: followers that lagged past
   * replica.lag.time.max.ms leave; replicas that reached the high watermark (and the start
   * of this leader epoch, so they hold nothing from an older fork) join. At most one change
   * is in flight; call isrChangeSent() once it is sent and the image's answer clears it.
   */
  wantedIsr(brokerIsAlive: (id: number) => boolean): number[] | null {
    if (!this.isLeader || this.pendingIsr !== null) return null;
    const nowMs = this.clock.monotonicMs();
    const isr = this.stateValue.isr;
    const epochStart = this.leaderEpochStartOffset;
    const next = isr.filter((id) => {
      if (id === this.brokerId) return true;
      const follower = this.followers.get(id);
      return follower !== undefined && nowMs - follower.lastCaughtUpMs <= this.config.replicaLagTimeMaxMs;
    });
    for (const [id, follower] of this.followers) {
      if (next.includes(id) || isr.includes(id) || !brokerIsAlive(id)) continue;
      if (follower.logEndOffset >= this.highWatermarkValue && follower.logEndOffset >= epochStart) next.push(id);
    }
    if (next.length === isr.length && next.every((id) => isr.includes(id))) return null;
    return next;
  }

  isrChangeSent(isr: readonly number[]): void {
    this.pendingIsr = isr;
    this.pendingIsrUnanswered = false;
  }

  /** The controller refused the change (or recorded nothing): try again from the image's ISR. */
  isrChangeFailed(): void {
    this.pendingIsr = null;
    this.pendingIsrUnanswered = false;
  }

  /**
   * The change's answer never came, so it may be committed. Its members keep counting for the
   * high watermark until the image says (dropping an expansion here let a leader commit over
   * a stale, smaller ISR while the controller had added a member it then elected: sim seed
   * 163 of 5 nodes), and the same change goes out again.
   */
  isrChangeUnanswered(): void {
    this.pendingIsrUnanswered = this.pendingIsr !== null;
  }

  /**
   * The controller refused the change because this leader's view is stale (a newer leader or
   * partition epoch): the change may have been applied before, and the controller may have
   * moved on since. Its members keep counting until the image catches up; dropping it here
   * let a deposed leader commit over the smaller ISR it still had (sim seed 785 of 5 nodes).
   */
  isrChangeOutdated(): void {
    this.pendingIsrUnanswered = false;
  }

  /** The pending change to send again, when its answer was lost; else null. */
  isrChangeToResend(): readonly number[] | null {
    return this.pendingIsrUnanswered && this.isLeader ? this.pendingIsr : null;
  }

  // --- follower ---

  /**
   * Appends batches fetched from the leader, replays their producers into the state (so a
   * new leader knows them all), and takes its high watermark (never past our end, never back).
   */
  async appendFromLeader(bytes: Buffer, leaderHighWatermark: number): Promise<void> {
    if (bytes.length > 0) {
      await this.exclusively(async () => {
        await this.log.appendAsFollower(bytes);
        // The log checked the batches; only their headers are read again.
        for (let position = 0; position < bytes.length;) {
          const header = readBatchHeader(bytes, position);
          this.producers.replay(header, this.clock.nowMs());
          position += header.sizeBytes;
        }
      });
    }
    this.followerHighWatermark(leaderHighWatermark);
  }

  followerHighWatermark(leaderHighWatermark: number): void {
    const hw = Math.min(leaderHighWatermark, this.log.logEndOffset);
    if (hw > this.highWatermarkValue) this.setHighWatermark(hw);
  }

  /**
   * The leader said our log diverged: cut to the end of that epoch as both logs know it
   * (KIP-320: the smaller of the leader's end for the epoch and ours). Never to the high
   * watermark blindly. Returns the new log end.
   */
  async truncateToDivergence(epoch: number, leaderEndOffset: number): Promise<number> {
    const end = await this.exclusively(async () => {
      // With no epoch in common (the leader's history is empty), keep nothing past its end.
      const ours = epoch < 0 ? this.log.logEndOffset : this.log.endOffsetForEpoch(epoch).endOffset;
      const target = Math.min(ours, leaderEndOffset);
      const cut = await this.log.truncateTo(Math.max(target, this.log.logStartOffset));
      if (this.highWatermarkValue > cut) {
        // The high watermark is never above data every ISR member has, so a cut below it means
        // this replica held uncommitted data past the committed point; only a replica outside the
        // ISR (or an unclean election) can get here. It keeps what remains.
        this.highWatermarkValue = cut;
      }
      // Producers keep their cached batches below the cut; one left with none is read back.
      if (!this.producers.truncateTo(cut)) await this.rebuildNow();
      return cut;
    });
    return end;
  }

  async startOver(logStartOffset: number, leaderHighWatermark: number): Promise<void> {
    await this.exclusively(async () => {
      await this.log.truncateFullyAndStartAt(logStartOffset);
      this.highWatermarkValue = Math.min(this.highWatermarkValue, logStartOffset);
      // The log is empty, and so is the state: producers whose batches are all below the
      // leader's log start are forgotten here, as a leader forgets them when it restarts.
      this.producers = new ProducerStateManager(this.producers.producerIdExpirationMs);
    });
    this.followerHighWatermark(leaderHighWatermark);
  }

  // --- producer state ---

  /**
   * Runs a change of the producer state alone: after the ones queued before it and after the
   * leader writes in flight settled; leader appends wait for the queue to empty.
   */
  private exclusively<T>(task: () => Promise<T>): Promise<T> {
    const before = this.exclusiveTail ?? Promise.resolve();
    const run = before.then(async () => {
      // Leader writes cannot start while this is queued, so the set only shrinks.
      while (this.leaderWrites.size > 0) await Promise.allSettled([...this.leaderWrites]);
      return task();
    });
    const tail = run.then(() => undefined, () => undefined);
    this.exclusiveTail = tail;
    void tail.then(() => { if (this.exclusiveTail === tail) this.exclusiveTail = null; });
    return run;
  }

  /** Rebuilds the producer state from the log (see rebuildNow), alone. */
  rebuildProducerState(): Promise<void> {
    return this.exclusively(() => this.rebuildNow());
  }

  /**
   * The producer state from the log's batch headers. The log keeps no append times, so read
   * back a producer is as old as its last batch's timestamp (Kafka's rule; while running,
   * idleness is measured on this broker's clock instead, so a producer sending old timestamps
   * is not forgotten at every batch). Only segments that may hold a batch of an unexpired
   * producer are read: from the first whose newest timestamp is within producerIdExpirationMs,
   * so the scan is bounded by the expiration, not the log's size.
   */
  private async rebuildNow(): Promise<void> {
    assert.equal(this.leaderWrites.size, 0, `${this.name}: rebuilding the producer state under a leader write`);
    const producers = new ProducerStateManager(this.producers.producerIdExpirationMs);
    const nowMs = this.clock.nowMs();
    const cutoffMs = nowMs - producers.producerIdExpirationMs;
    const from = this.log.segmentInfos().find((segment) => segment.maxTimestampMs >= cutoffMs && segment.nextOffset > segment.baseOffset);
    if (from !== undefined) await this.log.scanBatchHeaders(Math.max(from.baseOffset, this.log.logStartOffset), (header) => { producers.replay(header); });
    producers.removeExpired(nowMs);
    this.producers = producers;
  }

  /** Forgets producers idle past producerIdExpirationMs (the lookup does too; this bounds memory). */
  expireProducers(): number {
    return this.producers.removeExpired(this.clock.nowMs());
  }

  /** The producer state, for inspection (tests, admin). */
  get producerState(): ProducerStateManager {
    return this.producers;
  }

  /** The epoch of our last batch, for the next fetch (-1 for none). */
  get lastFetchedEpoch(): number {
    return this.log.latestEpoch;
  }

  /** Stops serving: requests waiting on it fail with `reason` (by default, not hosted here any more). */
  close(reason = new DriftwoodError('NOT_LEADER_OR_FOLLOWER', `${this.name} is no longer hosted here; the write may still be committed`)): void {
    this.failWaiters(reason);
    this.changeListeners.clear();
  }

  private checkLeader(): void {
    if (!this.isLeader) {
      throw new DriftwoodError('NOT_LEADER_OR_FOLLOWER', `broker ${this.brokerId} does not lead ${this.name}`, { leader: this.stateValue.leader === NO_LEADER ? null : this.stateValue.leader });
    }
  }

  /**
   * A follower's or a consumer's view of the leader epoch (KIP-320): an older one means it
   * missed a leader change (FENCED_LEADER_EPOCH: refresh metadata), a newer one that this
   * broker has not caught up yet (UNKNOWN_LEADER_EPOCH: retry).
   */
  checkEpoch(leaderEpoch: number): void {
    const ours = this.stateValue.leaderEpoch;
    if (leaderEpoch < ours) throw new DriftwoodError('FENCED_LEADER_EPOCH', `${this.name}: epoch ${leaderEpoch} is older than ${ours}`, { leaderEpoch: ours });
    if (leaderEpoch > ours) throw new DriftwoodError('UNKNOWN_LEADER_EPOCH', `${this.name}: epoch ${leaderEpoch} is newer than ${ours}`, { leaderEpoch: ours });
  }
}
