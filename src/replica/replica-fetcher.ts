// The follower's side of replica fetching: one fetcher per leader broker, one long-polling
// request at a time covering every partition this broker follows there, in an incremental
// session. It appends what comes back, truncates where the leader says its log diverged,
// starts over below the leader's log start, and drops a partition the leader refuses until
// the metadata gives it a new leader epoch.
import type { Clock } from '../../storage/clock.js';
import { isDriftwoodError } from '../../storage/errors.js';
import { partitionKey, type FetchPosition, type PartitionAnswer, type PartitionKey, type ReplicaChannel, type ReplicaFetchRequest } from './fetch-protocol.js';
import type { Partition } from './partition.js';
import type { ReplicationThrottle } from './replication-throttle.js';

export interface FetcherConfig {
  /** How long the leader may hold a fetch with nothing new (Kafka: replica.fetch.wait.max.ms, 500). */
  readonly maxWaitMs: number;
  readonly bytesMax: number;
  readonly partitionBytesMax: number;
  /** Pause after a failed request before the next (Kafka: replica.fetch.backoff.ms). */
  readonly backoffMs: number;
}

/** The least a throttled request asks per partition, so tiny allowances still make progress. */
const THROTTLED_BYTES_MIN = 16 * 1024;

export const defaultFetcherConfig: FetcherConfig = { maxWaitMs: 500, bytesMax: 16 * 1024 * 1024, partitionBytesMax: 4 * 1024 * 1024, backoffMs: 100 };

interface Followed {
  readonly partition: Partition;
  /** The leader refused it (say, it has not applied the metadata yet): skip it until then, or a metadata change. */
  delayedUntilMs: number;
  /** The partition epoch it was delayed at. */
  delayedAtEpoch: number;
}

export class ReplicaFetcher {
  private readonly followed = new Map<string, Followed>();
  /** What the leader's session holds for each partition, as last sent. */
  private readonly sent = new Map<string, FetchPosition>();
  private readonly removed = new Map<string, PartitionKey>();
  private sessionId = 0;
  private sessionEpoch = 0;
  private running = false;
  private idle: (() => void) | null = null;
  /** Requests sent and answers applied, for tests and metrics. */
  rounds = 0;

  constructor(
    readonly leaderId: number,
    private readonly followerId: number,
    private readonly config: FetcherConfig,
    private readonly ports: { clock: Clock; channel: ReplicaChannel; onFatal: (error: unknown) => void; throttle?: ReplicationThrottle },
  ) {}

  get size(): number {
    return this.followed.size;
  }

  keys(): string[] {
    return [...this.followed.keys()];
  }

  /** Follows `partition` from this leader (again, after a metadata change). */
  assign(partition: Partition): void {
    const key = partitionKey(partition.state);
    const known = this.followed.get(key);
    if (known?.partition === partition) {
      if (known.delayedAtEpoch !== partition.state.partitionEpoch) known.delayedUntilMs = 0;
    } else {
      this.followed.set(key, { partition, delayedUntilMs: 0, delayedAtEpoch: -1 });
    }
    this.removed.delete(key);
    this.wakeIdle();
  }

  unassign(key: PartitionKey): void {
    const id = partitionKey(key);
    if (!this.followed.delete(id)) return;
    if (this.sent.delete(id)) this.removed.set(id, { topicId: key.topicId, partition: key.partition });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  stop(): void {
    this.running = false;
    this.wakeIdle();
  }

  private wakeIdle(): void {
    const wake = this.idle;
    this.idle = null;
    wake?.();
  }

  private isRunning(): boolean {
    return this.running;
  }

  private async loop(): Promise<void> {
    while (this.isRunning()) {
      if (this.followed.size === 0) {
        await new Promise<void>((resolve) => { this.idle = resolve; });
        continue;
      }
      const waitMs = this.delayMs();
      if (waitMs > 0) {
        await this.sleep(waitMs);
        continue;
      }
      try {
        await this.round();
      } catch (error) {
        if (!this.isRunning()) return;
        // A failed request, or an answer that no longer fits the log (a role change raced
        // it): start a new session after a pause. A broken invariant stops the broker.
        if (!isDriftwoodError(error)) {
          this.running = false;
          this.ports.onFatal(error);
          return;
        }
        this.resetSession();
        await this.sleep(this.config.backoffMs);
      }
    }
  }

  /** 0 when some partition can be fetched now, else how long until one can. */
  private delayMs(): number {
    const nowMs = this.ports.clock.monotonicMs();
    let soonest = Infinity;
    for (const followed of this.followed.values()) {
      if (followed.delayedUntilMs <= nowMs) return 0;
      soonest = Math.min(soonest, followed.delayedUntilMs - nowMs);
    }
    return soonest === Infinity ? 0 : soonest;
  }

  private isBeingAdded(partition: Partition): boolean {
    return partition.state.addingReplicas?.includes(this.followerId) === true;
  }

  private resetSession(): void {
    this.sessionId = 0;
    this.sessionEpoch = 0;
    this.sent.clear();
    this.removed.clear();
  }

  private position(partition: Partition): FetchPosition {
    const { topicId, partition: index, leaderEpoch } = partition.state;
    return { topicId, partition: index, leaderEpoch, fetchOffset: partition.log.logEndOffset, lastFetchedEpoch: partition.lastFetchedEpoch };
  }

  private async round(): Promise<void> {
    const positions: FetchPosition[] = [];
    const current = new Map<string, FetchPosition>();
    const nowMs = this.ports.clock.monotonicMs();
    const throttle = this.ports.throttle;
    const allowance = throttle?.active === true ? throttle.allowance() : null;
    const throttled = new Set<string>();
    for (const [key, followed] of this.followed) {
      if (followed.delayedUntilMs > nowMs) continue;
      if (allowance !== null && this.isBeingAdded(followed.partition)) {
        // A partition this broker is being added to copies within the reassignment throttle.
        if (allowance.bytes <= 0) {
          followed.delayedUntilMs = nowMs + allowance.waitMs;
          followed.delayedAtEpoch = followed.partition.state.partitionEpoch;
          continue;
        }
        throttled.add(key);
      }
      const position = this.position(followed.partition);
      current.set(key, position);
      const last = this.sent.get(key);
      if (this.sessionId === 0 || last === undefined || !samePosition(last, position)) positions.push(position);
    }
    // Partitions the session holds that are no longer fetched (delayed ones included) leave it.
    const removed = this.sessionId === 0 ? [] : [...this.removed.values(), ...[...this.sent.keys()].filter((key) => !current.has(key) && !this.removed.has(key)).map(splitKey)];
    const request: ReplicaFetchRequest = {
      followerId: this.followerId,
      sessionId: this.sessionId,
      sessionEpoch: this.sessionEpoch,
      positions,
      removed,
      maxWaitMs: this.config.maxWaitMs,
      bytesMax: this.config.bytesMax,
      // A request carrying throttled partitions asks each for no more than the tokens left (a
      // batch is never split, so one may still overdraw by a batch); the partitions riding
      // along are capped too, for that round only.
      partitionBytesMax: throttled.size === 0 || allowance === null ? this.config.partitionBytesMax : Math.min(this.config.partitionBytesMax, Math.max(THROTTLED_BYTES_MIN, allowance.bytes)),
    };
    const response = await this.ports.channel.fetch(this.leaderId, request);
    this.rounds += 1;
    if (response.sessionError !== undefined) {
      this.resetSession();
      return;
    }
    if (this.sessionId !== response.sessionId) this.sent.clear();
    this.sessionId = response.sessionId;
    this.sessionEpoch = request.sessionEpoch + 1;
    this.removed.clear();
    for (const key of removed) this.sent.delete(partitionKey(key));
    for (const position of positions) this.sent.set(partitionKey(position), position);
    for (const answer of response.partitions) {
      if (answer.kind === 'records' && throttled.has(partitionKey(answer))) throttle?.spend(answer.bytes.length);
      try {
        await this.apply(answer, current.get(partitionKey(answer)));
      } catch (error) {
        // The partition's log failed: it took itself offline (the replica manager stops
        // hosting it). The other partitions of this leader go on.
        if (!isDriftwoodError(error) || error.code !== 'KAFKA_STORAGE_ERROR') throw error;
        this.unassign(answer);
      }
    }
  }

  /** Applies one partition's answer, unless the partition moved on (new leader or epoch) meanwhile. */
  private async apply(answer: PartitionAnswer, asked: FetchPosition | undefined): Promise<void> {
    const key = partitionKey(answer);
    const followed = this.followed.get(key);
    if (followed === undefined || asked === undefined) return;
    const { partition } = followed;
    if (partition.state.leader !== this.leaderId || partition.state.leaderEpoch !== asked.leaderEpoch || partition.log.logEndOffset !== asked.fetchOffset) return;
    switch (answer.kind) {
      case 'records':
        await partition.appendFromLeader(answer.bytes, answer.highWatermark);
        return;
      case 'diverging':
        await partition.truncateToDivergence(answer.epoch, answer.endOffset);
        return;
      case 'start-over':
        await partition.startOver(answer.logStartOffset, answer.highWatermark);
        return;
      case 'error':
        // The leader dropped it from the session (not its leader, or another epoch); wait
        // for the metadata to move on.
        followed.delayedUntilMs = this.ports.clock.monotonicMs() + this.config.backoffMs;
        followed.delayedAtEpoch = partition.state.partitionEpoch;
        this.sent.delete(key);
        return;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => { this.ports.clock.setTimer(ms, resolve); });
  }
}

function samePosition(a: FetchPosition, b: FetchPosition): boolean {
  return a.fetchOffset === b.fetchOffset && a.leaderEpoch === b.leaderEpoch && a.lastFetchedEpoch === b.lastFetchedEpoch;
}

function splitKey(key: string): PartitionKey {
  const slash = key.lastIndexOf('/');
  return { topicId: key.slice(0, slash), partition: Number(key.slice(slash + 1)) };
}
