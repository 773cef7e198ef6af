// The replicas this broker hosts, kept in step with the metadata image: every partition whose
// replica list names this broker gets a log (opened or created under the topic's configs)
// and a Partition in the role the image gives it; a partition that leaves the image (topic
// deleted) or this broker's replica list is closed and its directory removed. Changes are
// applied one reconcile pass at a time, in image order, so a partition never sees an older
// state after a newer one. It also serves the data path (produce, consume, follower
// fetches), runs the per-leader fetchers, asks for ISR changes and checkpoints high watermarks.
import assert from 'node:assert/strict';
import type { Clock, TimerHandle } from '../../storage/clock.js';
import type { Disk } from '../../storage/disk.js';
import { DriftwoodError } from '../../storage/errors.js';
import type { LogConfig } from '../../storage/log-config.js';
import { PartitionLog, type AppendResult, type ReadResult, type RecoveryReport } from '../../storage/partition-log.js';
import { PRODUCER_ID_EXPIRATION_MS_DEFAULT } from '../../storage/producer-state.js';
import type { ImageChange, MetadataImage, PartitionState, TopicState } from '../controller/image.js';
import { ALTER_PARTITIONS_PER_REQUEST_MAX, type AlterPartitionItem, type PartitionRef } from '../controller/commands.js';
import { offlineReplicasOf } from '../controller/image.js';
import { NO_LEADER } from '../controller/records.js';
import { effectiveTopicConfig } from '../controller/topic-config.js';
import { silentLog, type DurationSink, type Log } from '../../storage/observe.js';
import type { ReplicaChannel, ReplicaFetchRequest, ReplicaFetchResponse } from './fetch-protocol.js';
import { defaultFetchSessionsConfig, FetchSessions, type FetchSessionsConfig } from './fetch-sessions.js';
import { readHighWatermarks, writeHighWatermarks } from './high-watermark-checkpoint.js';
import { Partition, type Acks, type ReplicaConfig } from './partition.js';
import { defaultFetcherConfig, ReplicaFetcher, type FetcherConfig } from './replica-fetcher.js';
import { ReplicationThrottle } from './replication-throttle.js';

export interface ReplicaManagerConfig extends ReplicaConfig {
  /** How often hosted logs apply retention (Kafka: log.retention.check.interval.ms). */
  readonly retentionCheckMs: number;
  /** How often led partitions check whether their ISR should shrink or expand. */
  readonly isrCheckMs: number;
  /** Partitions a metadata change opens or moves to a new role concurrently (each may wait on the disk). */
  readonly partitionsChangedAtOnceMax: number;
  /** How often high watermarks are checkpointed (Kafka: replica.high.watermark.checkpoint.interval.ms). */
  readonly highWatermarkCheckpointMs: number;
  /** How long a partition whose log failed (disk full, an I/O error) waits before opening it again. */
  readonly offlineRetryMs: number;
  readonly fetcher: FetcherConfig;
  readonly sessions: FetchSessionsConfig;
}

export const defaultReplicaManagerConfig: ReplicaManagerConfig = {
  replicaLagTimeMaxMs: 10_000,
  producerIdExpirationMs: PRODUCER_ID_EXPIRATION_MS_DEFAULT,
  retentionCheckMs: 300_000,
  isrCheckMs: 500,
  partitionsChangedAtOnceMax: 32,
  highWatermarkCheckpointMs: 5000,
  offlineRetryMs: 5000,
  fetcher: defaultFetcherConfig,
  sessions: defaultFetchSessionsConfig,
};

/** What the controller said of one partition's ISR change: its state after the request, or the error that refused it. */
export type IsrChangeAnswer = { readonly state: PartitionState } | { readonly error: unknown };

export interface ReplicaManagerPorts {
  readonly brokerId: number;
  readonly clock: Clock;
  readonly disk: Disk;
  readonly image: MetadataImage;
  /** Fetches from partition leaders on other brokers. */
  readonly channel: ReplicaChannel;
  /**
   * Sends ISR changes to the controller with this broker's epoch (AlterPartitions); answers
   * per partition with its state after the request or the error that refused it.
   */
  readonly alterPartitions: (items: AlterPartitionItem[]) => Promise<IsrChangeAnswer[]>;
  /** Tells the controller which hosted replicas' logs failed, and which opened again after a failure. */
  readonly reportReplicaStatus: (report: { offline: PartitionRef[]; online: PartitionRef[] }) => Promise<void>;
  /**
   * Whether this broker may take partition roles yet: registered in this process and
   * unfenced in its own image. Until then its image may lag the metadata log (a restart
   * replays only what this node had persisted), and a leader acting on a stale ISR could
   * acknowledge records a newer ISR member lacks (sim seed 252). Kafka waits the same way.
   */
  readonly mayTakeRoles: () => boolean;
  /** An invariant broke (or a failure outside the partition logs): the broker must stop. */
  readonly onFatal: (error: unknown) => void;
  /** Leadership and ISR changes of hosted partitions (default: none). */
  readonly log?: Log;
  /** Every hosted log's fsync durations (default: dropped). */
  readonly fsyncDurations?: DurationSink;
}

/** Plain counters since start, read by the metrics adapter at scrape time. */
export interface ReplicaStats {
  produceRequests: number;
  producedBytes: number;
  producedRecords: number;
  /** Consumer reads (follower fetches are not counted here). */
  fetchRequests: number;
  fetchedBytes: number;
  /** ISR changes of partitions this broker led before and after the change. */
  isrShrinks: number;
  isrExpands: number;
  /** Hosted logs that failed and were taken offline. */
  logFailures: number;
}

/** One hosted partition as the metrics adapter sees it. */
export interface HostedPartitionView {
  readonly topicId: string;
  readonly partition: number;
  readonly isLeader: boolean;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  readonly highWatermark: number;
  readonly logBytes: number;
}

/** A hosted partition whose log failed: not served until it opens again. */
export interface OfflinePartitionView {
  readonly topicId: string;
  readonly partition: number;
  readonly error: string;
  readonly sinceMs: number;
}

export interface PartitionOffsets {
  readonly partition: number;
  readonly logStartOffset: number;
  readonly logEndOffset: number;
  readonly highWatermark: number;
  /** While the partition is being reassigned: how far each follower has copied (-1: not fetched yet under this leader). */
  readonly followers?: ReadonlyArray<{ readonly id: number; readonly logEndOffset: number; readonly bytes: number }>;
  /** While the partition is being reassigned: the leader's log bytes, what a new replica must copy. */
  readonly logBytes?: number;
}

/** The segment file format's floor; Kafka's segment.bytes floor is lower (14). */
const SEGMENT_BYTES_FLOOR = 1024;
/** The longest a request waits for this broker to finish taking a leadership its image names. */
const ROLE_WAIT_MS_MAX = 2_000;
const BATCH_HEADER_BYTES = 61;

/** A topic's configs as partition-log settings. */
export function logConfigFor(topic: TopicState): Partial<LogConfig> {
  const c = effectiveTopicConfig(topic.configs);
  return {
    segmentBytesMax: Math.min(Math.max(c['segment.bytes'], SEGMENT_BYTES_FLOOR), 2 ** 31 - 1),
    segmentAgeMsMax: c['segment.ms'],
    messageBytesMax: Math.max(c['max.message.bytes'], BATCH_HEADER_BYTES),
    retentionMs: c['retention.ms'],
    retentionBytes: c['retention.bytes'],
    flushIntervalMs: c['flush.ms'],
    timestampType: c['message.timestamp.type'],
  };
}

/** The directory of a hosted partition: readable, and unique across a deleted and recreated name. */
export function partitionDir(topic: TopicState, partition: number): string {
  return `${topic.name}-${partition}.${topic.topicId}`;
}

/** The partition a directory name made by partitionDir names, or null for any other name (a checkpoint file, say). */
export function parsePartitionDir(name: string): { topicId: string; partition: number } | null {
  const match = /^.+-(\d+)\.([A-Za-z0-9_-]+)$/.exec(name);
  if (match === null) return null;
  const partition = Number(match[1]);
  return Number.isSafeInteger(partition) ? { topicId: match[2] ?? '', partition } : null;
}

function splitPartitionKey(id: string): { topicId: string; partition: number } {
  const slash = id.lastIndexOf('/');
  return { topicId: id.slice(0, slash), partition: Number(id.slice(slash + 1)) };
}

function key(topicId: string, partition: number): string {
  return `${topicId}/${partition}`;
}

/**
 * What a failed AlterPartition says about the change (Kafka's handleAlterPartitionError):
 * - refused: judged on its merits with this leader's epochs current, so nothing changed;
 * - outdated: this leader's epochs are stale, so the change may be in the log and the
 *   controller may have moved on; wait for the image;
 * - unanswered: no answer, or it never reached the controller; it may have been applied, so
 *   send it again.
 */
export function isrChangeOutcome(error: unknown): 'refused' | 'outdated' | 'unanswered' {
  const code = error instanceof DriftwoodError ? error.code : null;
  if (code === 'INELIGIBLE_REPLICA' || code === 'INVALID_REQUEST' || code === 'UNKNOWN_TOPIC_OR_PARTITION') return 'refused';
  if (code === 'FENCED_LEADER_EPOCH' || code === 'INVALID_UPDATE_VERSION' || code === 'STALE_BROKER_EPOCH') return 'outdated';
  return 'unanswered';
}

/** Settles a partition's pending ISR change with its AlterPartitions answer: the partition's new state, or an error. */
function isrChangeAnswered(partition: Partition, sentPartitionEpoch: number, answer: IsrChangeAnswer): void {
  if ('state' in answer) {
    // No change recorded (the ISR was already that): nothing will clear the pending one.
    if (answer.state.partitionEpoch === sentPartitionEpoch) partition.isrChangeFailed();
    return;
  }
  if (partition.state.partitionEpoch !== sentPartitionEpoch) return; // the image answered already
  const outcome = isrChangeOutcome(answer.error);
  if (outcome === 'refused') partition.isrChangeFailed();
  else if (outcome === 'outdated') partition.isrChangeOutdated();
  else partition.isrChangeUnanswered();
}

export interface ConsumeOptions {
  readonly bytesMax: number;
  readonly minBytes: number;
  readonly maxWaitMs: number;
  /** The leader epoch the consumer knows (KIP-320), checked against this leader's. */
  readonly currentLeaderEpoch?: number;
}

export class ReplicaManager {
  private readonly hosted = new Map<string, { partition: Partition; dir: string }>();
  /** The keys of `hosted` by topic id, so a pass finds a changed topic's replicas without a scan. */
  private readonly hostedByTopic = new Map<string, Set<string>>();
  private reconciling: Promise<void> | null = null;
  private again = false;
  private closed = false;
  private unsubscribe: (() => void) | null = null;
  private retentionTimer: TimerHandle | null = null;
  private isrTimer: TimerHandle | null = null;
  private checkpointTimer: TimerHandle | null = null;
  private rolesAllowed = false;
  /**
   * Topics whose records were applied since the last pass began, or 'all' (at start, after a
   * restored image, once roles are allowed): a pass looks only at these, the others' replicas
   * being in step with the image already.
   */
  private dirtyTopics: Set<string> | 'all' = 'all';
  /** High watermarks as the checkpoint had them at start, by partition directory. */
  private checkpointed = new Map<string, number>();
  private readonly fetchers = new Map<number, ReplicaFetcher>();
  /**
   * Partitions whose log failed (disk full, an I/O error), by hosted key. They are not hosted
   * (not served, not fetched) until retryAtMs, when a pass opens the log again: recovery cuts
   * whatever the failed write left half done, and the replica catches up as a follower.
   */
  private readonly offline = new Map<string, { error: DriftwoodError; sinceMs: number; retryAtMs: number; dir: string | undefined }>();
  /** Failed partitions the controller may not know of yet, and reopened ones it may still list offline. */
  private readonly unreportedOffline = new Set<string>();
  private readonly unreportedOnline = new Set<string>();
  private statusReportInFlight = false;
  /** Directories of partitions no longer hosted whose removal the disk refused, with when to try again. */
  private readonly dirsToRemove = new Map<string, number>();
  /** Shared by every fetcher: the reassignment throttle is per broker. */
  private readonly throttle: ReplicationThrottle;
  readonly sessions: FetchSessions;
  readonly stats: ReplicaStats = { produceRequests: 0, producedBytes: 0, producedRecords: 0, fetchRequests: 0, fetchedBytes: 0, isrShrinks: 0, isrExpands: 0, logFailures: 0 };
  private readonly log: Log;

  constructor(private readonly config: ReplicaManagerConfig, private readonly ports: ReplicaManagerPorts) {
    this.sessions = new FetchSessions(config.sessions, ports.clock, (topicId, partition) => {
      const replica = this.partition(topicId, partition);
      return replica?.isLeader === true ? replica : undefined;
    });
    this.log = ports.log ?? silentLog;
    this.throttle = new ReplicationThrottle(ports.clock, () => ports.image.replicationThrottleBytesPerSec);
  }

  /** Starts following the image; resolves once the partitions it names now are open. */
  async start(): Promise<void> {
    await this.ports.disk.mkdir('.');
    this.checkpointed = await readHighWatermarks(this.ports.disk);
    this.unsubscribe = this.ports.image.onChange((change) => { this.markDirty(change); void this.reconcile(); });
    this.scheduleRetention();
    this.scheduleIsrCheck();
    this.scheduleCheckpoint();
    await this.reconcile();
  }

  // --- the data path ---

  /** The led replica of a partition, or the error a client should get (unknown, or led elsewhere). */
  leaderFor(topicName: string, partition: number): { replica: Partition; topic: TopicState } {
    const image = this.ports.image;
    const topic = image.topic(topicName);
    const state = topic === undefined ? undefined : image.partition(topic.topicId, partition);
    if (topic === undefined || state === undefined) throw new DriftwoodError('UNKNOWN_TOPIC_OR_PARTITION', `no partition ${topicName}-${partition}`);
    const replica = this.partition(topic.topicId, partition);
    const failed = this.offline.get(key(topic.topicId, partition));
    // Until the controller moves the leadership off (or when no other replica can take it),
    // clients hear why; once another broker leads, where it went.
    if (failed !== undefined && (state.leader === this.ports.brokerId || state.leader === NO_LEADER)) {
      throw new DriftwoodError('KAFKA_STORAGE_ERROR', `${topicName}-${partition} is offline on broker ${this.ports.brokerId}: ${failed.error.message}`);
    }
    if (replica?.isLeader !== true || state.leader !== this.ports.brokerId) {
      const leader = state.leader === NO_LEADER ? null : state.leader;
      throw new DriftwoodError('NOT_LEADER_OR_FOLLOWER', `broker ${this.ports.brokerId} does not lead ${topicName}-${partition}${leader === null ? '; it has no leader now' : `; broker ${leader} does`}`, {
        leader,
        leaderAddress: leader === null ? null : image.broker(leader)?.address ?? null,
      });
    }
    return { replica, topic };
  }

  /**
   * leaderFor, but when this broker's image already names it the leader and the role change is
   * still being applied (the log opening, say, right after a topic was created), waits up to
   * `waitMs` for it instead of sending the client away to retry against itself.
   */
  async readyLeaderFor(topicName: string, partition: number, waitMs: number): Promise<{ replica: Partition; topic: TopicState }> {
    try {
      return this.leaderFor(topicName, partition);
    } catch (error) {
      const topic = this.ports.image.topic(topicName);
      const named = topic === undefined ? undefined : this.ports.image.partition(topic.topicId, partition);
      if (named?.leader !== this.ports.brokerId || this.reconciling === null) throw error;
      await this.settled(this.reconciling, Math.min(waitMs, ROLE_WAIT_MS_MAX));
      return this.leaderFor(topicName, partition);
    }
  }

  /** Resolves when `work` settles or after `waitMs`, whichever comes first. */
  private settled(work: Promise<void>, waitMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.ports.clock.setTimer(waitMs, resolve);
      void work.finally(() => { timer.cancel(); resolve(); });
    });
  }

  /** A produce to a partition this broker leads; see Partition.appendAsLeader. */
  async produce(topicName: string, partition: number, bytes: Buffer, acks: Acks, timeoutMs: number): Promise<AppendResult> {
    const { replica, topic } = await this.readyLeaderFor(topicName, partition, timeoutMs);
    const minInsyncReplicas = effectiveTopicConfig(topic.configs)['min.insync.replicas'];
    const leaderEpoch = replica.state.leaderEpoch;
    const result = await replica.appendAsLeader(bytes, acks, minInsyncReplicas, timeoutMs);
    // The image may have moved the leadership on while the write was on a slow disk, before
    // the replica heard of it: a broker that knows it was deposed does not acknowledge.
    const now = this.ports.image.partition(topic.topicId, partition);
    if (now?.leader !== this.ports.brokerId || now.leaderEpoch !== leaderEpoch) {
      throw new DriftwoodError('NOT_LEADER_OR_FOLLOWER', `broker ${this.ports.brokerId} lost the leadership of ${topicName}-${partition} while writing; the write may or may not be kept`, { leader: now === undefined || now.leader === NO_LEADER ? null : now.leader });
    }
    this.stats.produceRequests += 1;
    this.stats.producedBytes += bytes.length;
    this.stats.producedRecords += result.recordCount;
    return result;
  }

  /**
   * A consumer read: batches from `offset` below the high watermark; waits up to maxWaitMs for
   * at least minBytes when there are fewer.
   */
  async consume(topicName: string, partition: number, offset: number, options: ConsumeOptions): Promise<ReadResult & { highWatermark: number; leaderEpoch: number }> {
    const { replica } = await this.readyLeaderFor(topicName, partition, options.maxWaitMs);
    if (options.currentLeaderEpoch !== undefined) replica.checkEpoch(options.currentLeaderEpoch);
    const deadlineMs = this.ports.clock.monotonicMs() + options.maxWaitMs;
    await this.establishedHighWatermark(replica, deadlineMs);
    for (;;) {
      const watermark = replica.highWatermark;
      const read = await replica.readCommitted(offset, options.bytesMax);
      const leftMs = deadlineMs - this.ports.clock.monotonicMs();
      if (!replica.isLeader) throw this.notLeader(replica);
      if (read.bytes.length >= options.minBytes || leftMs <= 0) {
        this.stats.fetchRequests += 1;
        this.stats.fetchedBytes += read.bytes.length;
        return { ...read, highWatermark: replica.highWatermark, leaderEpoch: replica.state.leaderEpoch };
      }
      await this.highWatermarkPast(replica, watermark, leftMs);
    }
  }

  /**
   * Waits (until deadlineMs) for a new leader's high watermark to reach its own epoch, so no
   * client sees a high watermark below one an earlier leader showed; OFFSET_NOT_AVAILABLE if
   * it does not (the followers have not fetched yet).
   */
  async establishedHighWatermark(replica: Partition, deadlineMs: number): Promise<void> {
    while (!replica.highWatermarkEstablished) {
      if (!replica.isLeader) throw this.notLeader(replica);
      const leftMs = deadlineMs - this.ports.clock.monotonicMs();
      if (leftMs <= 0) {
        throw new DriftwoodError('OFFSET_NOT_AVAILABLE', `${replica.name} leader epoch ${replica.state.leaderEpoch}: high watermark ${replica.highWatermark} has not reached the epoch start ${replica.leaderEpochStartOffset}; retry`, { leaderEpoch: replica.state.leaderEpoch });
      }
      await this.highWatermarkPast(replica, replica.highWatermark, leftMs);
    }
  }

  private notLeader(replica: Partition): DriftwoodError {
    const leader = replica.state.leader === NO_LEADER ? null : replica.state.leader;
    return new DriftwoodError('NOT_LEADER_OR_FOLLOWER', `broker ${this.ports.brokerId} no longer leads ${replica.name}`, { leader, leaderAddress: leader === null ? null : this.ports.image.broker(leader)?.address ?? null });
  }

  /**
   * A Kafka fetch's wait for minBytes: resolves once any of these partitions this broker leads
   * has committed records at or past the asked offset (or stops being led here), or after
   * `waitMs`. One timer, and every listener removed when it resolves, so a fetch leaves no
   * waiters behind on the partitions that stayed quiet.
   */
  waitForAny(asks: ReadonlyArray<{ topic: string; partition: number; offset: number }>, waitMs: number): Promise<void> {
    const replicas: Array<{ replica: Partition; offset: number }> = [];
    for (const ask of asks) {
      try {
        replicas.push({ replica: this.leaderFor(ask.topic, ask.partition).replica, offset: ask.offset });
      } catch {
        return Promise.resolve(); // an error to answer now: the fetch reads it at once
      }
    }
    const ready = (): boolean => replicas.some(({ replica, offset }) => !replica.isLeader || replica.highWatermark > offset);
    if (replicas.length === 0 || waitMs <= 0 || ready()) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const stops: Array<() => void> = [];
      const done = (): void => {
        timer.cancel();
        for (const stop of stops) stop();
        resolve();
      };
      const timer = this.ports.clock.setTimer(waitMs, done);
      for (const { replica } of replicas) stops.push(replica.onChange(() => { if (ready()) done(); }));
    });
  }

  /** Resolves once the partition's high watermark passes `watermark`, or after `waitMs`. */
  private highWatermarkPast(replica: Partition, watermark: number, waitMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.ports.clock.setTimer(waitMs, () => { stop(); resolve(); });
      const stop = replica.onChange(() => {
        if (replica.highWatermark <= watermark && replica.isLeader) return;
        timer.cancel();
        stop();
        resolve();
      });
    });
  }

  /** A follower's fetch (the leader side of replication). */
  handleFetch(request: ReplicaFetchRequest): Promise<ReplicaFetchResponse> {
    return this.sessions.handle(request);
  }

  /** The hosted replica of a partition, if this broker hosts one. */
  partition(topicId: string, partition: number): Partition | undefined {
    return this.hosted.get(key(topicId, partition))?.partition;
  }

  get hostedCount(): number {
    return this.hosted.size;
  }

  /** Offsets of the partitions of a topic this broker leads. */
  leaderOffsets(topicId: string): PartitionOffsets[] {
    const offsets: PartitionOffsets[] = [];
    for (const { partition } of this.hosted.values()) {
      if (partition.state.topicId !== topicId || !partition.isLeader) continue;
      const { log, state } = partition;
      const reassigning = state.addingReplicas !== undefined || state.removingReplicas !== undefined;
      offsets.push({
        partition: state.partition,
        logStartOffset: log.logStartOffset,
        logEndOffset: log.logEndOffset,
        highWatermark: partition.highWatermark,
        ...(reassigning ? {
          logBytes: log.sizeBytes,
          followers: partition.followerLogEndOffsets().map(({ id, logEndOffset }) => ({ id, logEndOffset, bytes: logEndOffset < 0 ? 0 : log.bytesBelow(logEndOffset) })),
        } : {}),
      });
    }
    return offsets.sort((a, b) => a.partition - b.partition);
  }

  /** Every hosted partition, for metrics (sizes are summed over segments: O(segments)). */
  hostedPartitions(): HostedPartitionView[] {
    return [...this.hosted.values()].map(({ partition }) => ({
      topicId: partition.state.topicId,
      partition: partition.state.partition,
      isLeader: partition.isLeader,
      replicas: partition.state.replicas,
      isr: partition.state.isr,
      highWatermark: partition.highWatermark,
      logBytes: partition.log.sizeBytes,
    }));
  }

  /** Brings the hosted set in line with the image; concurrent calls coalesce into one more pass. */
  reconcile(): Promise<void> {
    if (this.reconciling !== null) {
      this.again = true;
      return this.reconciling;
    }
    this.reconciling = (async () => {
      try {
        do {
          this.again = false;
          await this.reconcileOnce();
        } while (this.passRequested());
      } catch (error) {
        this.ports.onFatal(error);
      } finally {
        this.reconciling = null;
      }
    })();
    return this.reconciling;
  }

  /** A method, as the flag changes across awaits. */
  private isClosed(): boolean {
    return this.closed;
  }

  /** Another change arrived during the pass (a method, as the flag changes across awaits). */
  private passRequested(): boolean {
    return this.again && !this.closed;
  }

  private markDirty(change: ImageChange): void {
    if (this.dirtyTopics === 'all') return;
    if (change.records === null) {
      this.dirtyTopics = 'all';
      return;
    }
    for (const record of change.records) if ('topicId' in record) this.dirtyTopics.add(record.topicId);
  }

  private async reconcileOnce(): Promise<void> {
    const firstPass = !this.rolesAllowed;
    if (!this.rolesAllowed) {
      if (!this.ports.mayTakeRoles()) return;
      this.rolesAllowed = true; // once caught up, the image says what to do from here on
      this.dirtyTopics = 'all';
    }
    const dirty = this.dirtyTopics;
    this.dirtyTopics = new Set();
    const image = this.ports.image;
    // The dirty topics in image order (by name), so a pass does what a pass over all would.
    const topics = dirty === 'all' ? image.topics() : [...dirty].map((topicId) => image.topicById(topicId)).filter((topic) => topic !== undefined).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const wanted = new Map<string, { topic: TopicState; state: PartitionState }>();
    for (const topic of topics) {
      for (const state of image.partitions(topic.topicId) ?? []) {
        if (state.replicas.includes(this.ports.brokerId)) wanted.set(key(topic.topicId, state.partition), { topic, state });
      }
    }
    let changed = dirty === 'all';
    const held = dirty === 'all' ? [...this.hosted.keys()] : [...dirty].flatMap((topicId) => [...(this.hostedByTopic.get(topicId) ?? [])]);
    for (const id of held) {
      if (this.closed) return;
      const hosted = this.hosted.get(id);
      if (hosted === undefined || wanted.has(id)) continue;
      const { partition, dir } = hosted;
      changed = true;
      this.hosted.delete(id);
      this.hostedByTopic.get(partition.state.topicId)?.delete(id);
      partition.close();
      // Its data is going: a disk that fails now only leaves a directory behind (named by topic id, never reused).
      await partition.log.close().catch((error: unknown) => { this.closeFailed(partition.name, error); });
      await this.removeDirOrRetry(dir);
    }
    await this.retryDirRemovals();
    await this.forgetOfflineUnwanted(dirty, wanted);
    if (firstPass) await this.removeStrayDirs(wanted);
    const updates: Array<{ id: string; partition: Partition; topic: TopicState; state: PartitionState }> = [];
    const opens: Array<{ id: string; topic: TopicState; state: PartitionState }> = [];
    const nowMs = this.ports.clock.monotonicMs();
    for (const [id, { topic, state }] of wanted) {
      const current = this.hosted.get(id)?.partition;
      if (current === undefined) {
        if ((this.offline.get(id)?.retryAtMs ?? 0) <= nowMs) opens.push({ id, topic, state });
      } else if (current.state.partitionEpoch !== state.partitionEpoch || current.state.leaderEpoch !== state.leaderEpoch) {
        updates.push({ id, partition: current, topic, state });
      }
    }
    changed ||= updates.length > 0 || opens.length > 0;
    // Several at a time: each may wait on the disk (an fsync of its epoch file), and thousands
    // of partitions changing role or arriving one by one took minutes.
    const chunk = this.config.partitionsChangedAtOnceMax;
    for (let start = 0; start < updates.length; start += chunk) {
      if (this.closed) return;
      await Promise.all(updates.slice(start, start + chunk).map(({ id, partition, topic, state }) => {
        this.noteChange(topic, partition.state, state);
        return partition.update(state).catch((error: unknown) => { this.containFailure(id, error); });
      }));
    }
    for (let start = 0; start < opens.length; start += chunk) {
      if (this.closed) return;
      const opened = await Promise.all(opens.slice(start, start + chunk).map(({ id, topic, state }) => this.openPartition(id, topic, state).catch((error: unknown) => {
        this.containFailure(id, error);
        return null;
      })));
      // Hosted in image order, whatever order the opens finished in.
      opens.slice(start, start + chunk).forEach(({ id, topic, state }, i) => {
        const hosted = opened[i];
        if (hosted === null || hosted === undefined) return;
        this.hosted.set(id, hosted);
        const keys = this.hostedByTopic.get(state.topicId) ?? new Set<string>();
        keys.add(id);
        this.hostedByTopic.set(state.topicId, keys);
        if (this.offline.delete(id)) this.log.warn({ topic: topic.name, partition: state.partition }, 'partition log opened again after a failure');
      });
      // Followers start fetching as their partitions open, not when the whole pass is done:
      // their leaders would drop them from the ISR after replicaLagTimeMaxMs.
      if (!this.isClosed()) this.assignFetchers();
    }
    // Hosted replicas the image still lists offline (opened again, or after a restart) are reported online.
    for (const [id, { state }] of wanted) {
      if (this.hosted.has(id) && offlineReplicasOf(state).includes(this.ports.brokerId)) this.unreportedOnline.add(id);
    }
    // Fetchers follow the hosted partitions' leaders, which only change with the replicas.
    if (!this.closed && changed) this.assignFetchers();
    this.reportReplicaStatus();
  }

  private async openPartition(id: string, topic: TopicState, state: PartitionState): Promise<{ partition: Partition; dir: string }> {
    const dir = partitionDir(topic, state.partition);
    const log = await PartitionLog.open({
      disk: this.ports.disk,
      dir,
      clock: this.ports.clock,
      config: logConfigFor(topic),
      onFailure: (failure) => { queueMicrotask(() => { this.logFailed(id, log, failure); }); },
      ...(this.ports.fsyncDurations === undefined ? {} : { fsyncDurations: this.ports.fsyncDurations }),
    });
    this.noteRecovery(topic, state, dir, log.recovery);
    // The hw-regress defect forgets the checkpoint (and, in Partition, serves an unestablished high watermark).
    const highWatermark = this.config.bugs?.has('hw-regress') === true ? 0 : this.checkpointed.get(dir) ?? 0;
    let partition: Partition;
    try {
      partition = await Partition.open(this.ports.brokerId, log, state, this.ports.clock, this.config, highWatermark);
    } catch (error) {
      await log.close().catch(() => undefined);
      throw error;
    }
    // Appends and high-watermark moves wake the followers' fetches waiting on this partition.
    partition.onChange(() => { this.sessions.notify(state.topicId, state.partition); });
    return { partition, dir };
  }

  // --- partitions whose log failed ---

  /** A storage failure takes the partition offline; anything else (a bug) goes on up. */
  private containFailure(id: string, error: unknown): void {
    if (!(error instanceof DriftwoodError) || error.code !== 'KAFKA_STORAGE_ERROR') throw error;
    this.takeOffline(id, error);
  }

  /** A hosted log reported its failure; ignored when that log is no longer the one hosted. */
  private logFailed(id: string, log: PartitionLog, failure: DriftwoodError): void {
    if (this.closed || this.hosted.get(id)?.partition.log !== log) return;
    this.takeOffline(id, failure);
  }

  /**
   * Stops serving and following the partition, logs why, tells the controller (which moves
   * the leadership and the ISR off this replica) and opens the log again after offlineRetryMs.
   */
  private takeOffline(id: string, error: DriftwoodError): void {
    if (this.closed) return;
    const { topicId, partition: index } = splitPartitionKey(id);
    const hosted = this.hosted.get(id);
    if (hosted !== undefined) {
      this.hosted.delete(id);
      this.hostedByTopic.get(topicId)?.delete(id);
      hosted.partition.close(new DriftwoodError('KAFKA_STORAGE_ERROR', `${hosted.partition.name} went offline (${error.message}); the write may still be committed`));
      hosted.partition.log.close().catch(() => undefined);
      this.assignFetchers();
    }
    const nowMs = this.ports.clock.monotonicMs();
    const known = this.offline.get(id);
    this.offline.set(id, { error, sinceMs: known?.sinceMs ?? nowMs, retryAtMs: nowMs + this.config.offlineRetryMs, dir: hosted?.dir ?? known?.dir ?? this.dirOf(topicId, index) });
    this.stats.logFailures += 1;
    this.unreportedOnline.delete(id);
    this.unreportedOffline.add(id);
    const topic = this.ports.image.topicById(topicId)?.name ?? topicId;
    this.log.error({ topic, partition: index, error: error.message, retryMs: this.config.offlineRetryMs }, 'partition offline: its log failed');
    this.ports.clock.setTimer(this.config.offlineRetryMs, () => {
      if (this.closed || !this.offline.has(id)) return;
      this.markTopicDirty(topicId);
      void this.reconcile();
    });
    this.reportReplicaStatus();
  }

  /** A partition's directory name, while its topic is in the image. */
  private dirOf(topicId: string, partition: number): string | undefined {
    const topic = this.ports.image.topicById(topicId);
    return topic === undefined ? undefined : partitionDir(topic, partition);
  }

  private markTopicDirty(topicId: string): void {
    if (this.dirtyTopics !== 'all') this.dirtyTopics.add(topicId);
  }

  /**
   * Partition directories on the disk that the image does not give this broker: replicas
   * moved away or topics deleted while it was down (or before it finished removing them),
   * which no later image change would name again (Kafka's stray logs). Run once per process,
   * on the first pass after registering: the image then holds every entry committed before
   * this start, so every directory the broker made belongs to a partition it knows of.
   */
  private async removeStrayDirs(wanted: ReadonlyMap<string, unknown>): Promise<void> {
    assert(this.rolesAllowed);
    for (const name of await this.ports.disk.list('.')) {
      const owner = parsePartitionDir(name);
      if (owner === null) continue;
      const id = key(owner.topicId, owner.partition);
      if (wanted.has(id) || this.hosted.has(id) || this.offline.has(id)) continue;
      this.log.warn({ dir: name }, 'removing a partition directory this broker no longer hosts');
      await this.removeDirOrRetry(name);
    }
  }

  /**
   * Removes the directory of a partition this broker no longer hosts; when the disk refuses,
   * tries again in a pass after offlineRetryMs (in a pass, so the removal never races an open
   * of the same partition moved back here).
   */
  private async removeDirOrRetry(dir: string): Promise<void> {
    try {
      await this.ports.disk.removeDir(dir);
    } catch (error) {
      this.closeFailed(`removing ${dir}`, error);
      this.dirsToRemove.set(dir, this.ports.clock.monotonicMs() + this.config.offlineRetryMs);
      this.ports.clock.setTimer(this.config.offlineRetryMs, () => { if (!this.closed) void this.reconcile(); });
    }
  }

  /** Retries the removals the disk refused once they are due, for directories no hosted partition uses again. */
  private async retryDirRemovals(): Promise<void> {
    if (this.dirsToRemove.size === 0) return;
    const nowMs = this.ports.clock.monotonicMs();
    const inUse = new Set([...this.hosted.values()].map((hosted) => hosted.dir));
    for (const [dir, dueMs] of [...this.dirsToRemove]) {
      if (dueMs > nowMs) continue;
      this.dirsToRemove.delete(dir);
      if (!inUse.has(dir)) await this.removeDirOrRetry(dir);
    }
  }

  /** Offline partitions the image no longer gives this broker: forgotten, their directory removed if the disk lets it. */
  private async forgetOfflineUnwanted(dirty: Set<string> | 'all', wanted: ReadonlyMap<string, unknown>): Promise<void> {
    for (const [id, failed] of [...this.offline]) {
      const { topicId, partition } = splitPartitionKey(id);
      if ((dirty !== 'all' && !dirty.has(topicId)) || wanted.has(id)) continue;
      this.offline.delete(id);
      this.unreportedOffline.delete(id);
      const dir = failed.dir ?? this.dirOf(topicId, partition);
      if (dir !== undefined) await this.removeDirOrRetry(dir);
    }
  }

  /**
   * Tells the controller of failed logs it does not list offline yet and of reopened ones it
   * still does: one request at a time, retried from the ISR check until the image agrees.
   */
  private reportReplicaStatus(): void {
    if (this.statusReportInFlight || this.closed) return;
    const image = this.ports.image;
    const listedOffline = (id: string): boolean | undefined => {
      const { topicId, partition } = splitPartitionKey(id);
      const state = image.partition(topicId, partition);
      return state === undefined ? undefined : offlineReplicasOf(state).includes(this.ports.brokerId);
    };
    const offline: PartitionRef[] = [];
    const online: PartitionRef[] = [];
    for (const id of this.unreportedOffline) {
      if (!this.offline.has(id) || listedOffline(id) !== false) this.unreportedOffline.delete(id);
      else if (offline.length < ALTER_PARTITIONS_PER_REQUEST_MAX) offline.push(splitPartitionKey(id));
    }
    for (const id of this.unreportedOnline) {
      if (!this.hosted.has(id) || listedOffline(id) !== true) this.unreportedOnline.delete(id);
      else if (offline.length + online.length < ALTER_PARTITIONS_PER_REQUEST_MAX) online.push(splitPartitionKey(id));
    }
    if (offline.length + online.length === 0) return;
    this.statusReportInFlight = true;
    this.ports.reportReplicaStatus({ offline, online }).then(
      () => { for (const ref of [...offline, ...online]) { this.unreportedOffline.delete(key(ref.topicId, ref.partition)); this.unreportedOnline.delete(key(ref.topicId, ref.partition)); } },
      (error: unknown) => { this.log.warn({ error: error instanceof Error ? error.message : String(error), offline: offline.length, online: online.length }, 'replica status report failed; retrying'); },
    ).finally(() => { this.statusReportInFlight = false; });
  }

  /** Hosted partitions whose log failed, for metrics and the admin API. */
  offlinePartitions(): OfflinePartitionView[] {
    return [...this.offline].map(([id, { error, sinceMs }]) => ({ ...splitPartitionKey(id), error: error.message, sinceMs }));
  }

  /**
   * Logs what opening a partition's log cut. A torn tail of the active segment is what a
   * crash leaves (warn); damage to a sealed segment lost synced data on this replica (error).
   * Either way the replica fetches the cut offsets again from the leader, unless it leads
   * alone, and then they are gone.
   */
  private noteRecovery(topic: TopicState, state: PartitionState, dir: string, recovery: RecoveryReport): void {
    const damage = recovery.damage;
    if (damage === null) return;
    const fields = {
      topic: topic.name, partition: state.partition, dir, file: damage.file, kind: damage.kind,
      damagedAtOffset: damage.offset, damagedAtByte: damage.position, logEndOffset: recovery.endOffset,
      truncatedBytes: recovery.truncatedBytes, segmentsRemoved: damage.segmentsRemoved,
      leader: state.leader, isr: state.isr,
    };
    if (damage.kind === 'sealed-segment') this.log.error(fields, 'partition log truncated at open: a sealed segment is damaged; the replica fetches the rest from the leader');
    else this.log.warn(fields, 'partition log truncated at open: torn tail of the active segment');
  }

  /** Counts and logs a hosted partition's ISR and leadership changes as the image brings them. */
  private noteChange(topic: TopicState, before: PartitionState, after: PartitionState): void {
    assert.equal(before.topicId, after.topicId);
    assert.equal(before.partition, after.partition);
    const fields = { topic: topic.name, partition: after.partition, leaderEpoch: after.leaderEpoch };
    if (before.leader !== after.leader) {
      this.log.info({ ...fields, from: before.leader, to: after.leader }, 'partition leadership changed');
    }
    // Counted on the broker that led before and after, as Kafka counts IsrShrinksPerSec on the leader.
    const self = this.ports.brokerId;
    if (before.leader !== self || after.leader !== self) return;
    const shrank = before.isr.some((id) => !after.isr.includes(id));
    const grew = after.isr.some((id) => !before.isr.includes(id));
    if (shrank) {
      this.stats.isrShrinks += 1;
      this.log.info({ ...fields, from: before.isr, to: after.isr }, 'ISR shrank');
    }
    if (grew) {
      this.stats.isrExpands += 1;
      this.log.info({ ...fields, from: before.isr, to: after.isr }, 'ISR expanded');
    }
  }

  /** Every followed partition goes to the fetcher of its leader; fetchers left with nothing stop. */
  private assignFetchers(): void {
    // Followed partitions by leader, under their hosted keys (the fetchers' keys too).
    const wanted = new Map<number, Map<string, Partition>>();
    this.led = [];
    for (const [id, { partition }] of this.hosted) {
      const leader = partition.state.leader;
      if (partition.isLeader) this.led.push(partition);
      if (partition.isLeader || leader === NO_LEADER) continue;
      const followed = wanted.get(leader) ?? new Map<string, Partition>();
      followed.set(id, partition);
      wanted.set(leader, followed);
    }
    for (const [leaderId, fetcher] of this.fetchers) {
      const keep = wanted.get(leaderId);
      for (const key of fetcher.keys()) if (keep?.has(key) !== true) fetcher.unassign(splitPartitionKey(key));
      if (keep === undefined) {
        fetcher.stop();
        this.fetchers.delete(leaderId);
      }
    }
    for (const [leaderId, partitions] of wanted) {
      let fetcher = this.fetchers.get(leaderId);
      if (fetcher === undefined) {
        fetcher = new ReplicaFetcher(leaderId, this.ports.brokerId, this.config.fetcher, { clock: this.ports.clock, channel: this.ports.channel, onFatal: this.ports.onFatal, throttle: this.throttle });
        this.fetchers.set(leaderId, fetcher);
        fetcher.start();
      }
      for (const partition of partitions.values()) fetcher.assign(partition);
    }
  }

  /** Fetchers by leader and how many partitions each follows (for tests and metrics). */
  fetcherSizes(): Map<number, number> {
    return new Map([...this.fetchers].map(([leaderId, fetcher]) => [leaderId, fetcher.size]));
  }

  /**
   * Led partitions whose ISR should change ask the controller: one AlterPartitions request at
   * a time for all of them (Kafka batches the same way), one change in flight per partition.
   * Partitions past the request's limit wait for the next check.
   */
  private checkIsrs(): void {
    if (this.isrRequestInFlight) return;
    const image = this.ports.image;
    const alive = (id: number): boolean => image.broker(id)?.fenced === false;
    const changes: Array<{ partition: Partition; item: AlterPartitionItem }> = [];
    for (const partition of this.led) {
      if (changes.length >= ALTER_PARTITIONS_PER_REQUEST_MAX) break;
      const wanted = partition.wantedIsr(alive) ?? partition.isrChangeToResend();
      if (wanted === null) continue;
      const { topicId, partition: index, leaderEpoch, partitionEpoch } = partition.state;
      partition.isrChangeSent(wanted);
      changes.push({ partition, item: { topicId, partition: index, leaderEpoch, partitionEpoch, newIsr: [...wanted] } });
    }
    if (changes.length === 0) return;
    this.isrRequestInFlight = true;
    this.ports.alterPartitions(changes.map((change) => change.item)).then(
      (answers) => {
        assert.equal(answers.length, changes.length, 'an AlterPartitions answer per partition');
        changes.forEach((change, i) => { isrChangeAnswered(change.partition, change.item.partitionEpoch, answers[i] as IsrChangeAnswer); });
      },
      (error: unknown) => {
        for (const change of changes) isrChangeAnswered(change.partition, change.item.partitionEpoch, { error });
      },
    ).finally(() => { this.isrRequestInFlight = false; });
  }

  private isrRequestInFlight = false;
  /** The hosted partitions this broker leads, as of the last role change (the ISR check looks at no others). */
  private led: Partition[] = [];

  /** Writes every hosted partition's high watermark (one write at a time, in order). */
  checkpointHighWatermarks(): Promise<void> {
    const marks = new Map([...this.hosted.values()].map(({ partition, dir }) => [dir, partition.highWatermark]));
    this.checkpointWrite = this.checkpointWrite.then(() => writeHighWatermarks(this.ports.disk, marks));
    return this.checkpointWrite;
  }

  private checkpointWrite: Promise<void> = Promise.resolve();

  private scheduleCheckpoint(): void {
    this.checkpointTimer = this.ports.clock.setTimer(this.config.highWatermarkCheckpointMs, () => {
      if (this.closed) return;
      // A failed write keeps the last checkpoint, which is only older: a high watermark read
      // from it at start is lower than it was, never higher, and moves up as followers fetch.
      this.checkpointHighWatermarks().catch((error: unknown) => {
        this.log.warn({ error: error instanceof Error ? error.message : String(error) }, 'high watermark checkpoint failed; retrying');
      }).finally(() => { if (!this.closed) this.scheduleCheckpoint(); });
    });
  }

  private scheduleIsrCheck(): void {
    this.isrTimer = this.ports.clock.setTimer(this.config.isrCheckMs, () => {
      if (this.closed) return;
      this.checkIsrs();
      this.reportReplicaStatus();
      this.scheduleIsrCheck();
    });
  }

  private scheduleRetention(): void {
    this.retentionTimer = this.ports.clock.setTimer(this.config.retentionCheckMs, () => {
      void this.applyRetention().finally(() => { if (!this.closed) this.scheduleRetention(); });
    });
  }

  private async applyRetention(): Promise<void> {
    for (const { partition } of [...this.hosted.values()]) {
      if (this.closed) return;
      try {
        await partition.log.applyRetention();
        // Expired producers are forgotten on lookup too; this bounds the memory of idle ones.
        partition.expireProducers();
      } catch (error) {
        if (error instanceof DriftwoodError && error.code === 'LOG_CLOSED') continue; // removed meanwhile
        if (error instanceof DriftwoodError && error.code === 'KAFKA_STORAGE_ERROR') continue; // the log took itself offline
        this.ports.onFatal(error);
        return;
      }
    }
  }

  /** A storage failure while stopping is logged; anything else (a bug) goes on up. */
  private closeFailed(what: string, error: unknown): void {
    if (!(error instanceof DriftwoodError) || error.code !== 'KAFKA_STORAGE_ERROR') throw error;
    this.log.warn({ error: error.message }, `${what} failed while closing; what is on disk is what a crash would leave`);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe?.();
    this.retentionTimer?.cancel();
    this.isrTimer?.cancel();
    this.checkpointTimer?.cancel();
    for (const fetcher of this.fetchers.values()) fetcher.stop();
    this.fetchers.clear();
    await this.reconciling;
    // A disk that fails now leaves what a crash leaves; the other logs still close cleanly.
    await this.checkpointHighWatermarks().catch((error: unknown) => { this.closeFailed('the high watermark checkpoint', error); });
    for (const { partition } of this.hosted.values()) {
      partition.close();
      await partition.log.close().catch((error: unknown) => { this.closeFailed(partition.name, error); });
    }
    this.hosted.clear();
    this.hostedByTopic.clear();
  }
}
