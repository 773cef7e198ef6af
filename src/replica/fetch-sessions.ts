// The leader's side of replica fetching: incremental fetch sessions (KIP-227), one per
// follower, remembering each partition's fetch position so a request lists only what
// changed. A request is answered at once when some partition has records (or a new high
// watermark, a divergence, an error) for the follower; otherwise it waits until an append or
// a high-watermark move touches one of its partitions, or maxWaitMs passes. A request looks
// only at the partitions that changed or that the follower moved, and at all of them every
// idlePartitionsScanMs (which keeps idle followers' lag current): with thousands of idle
// partitions, reading each one on every round cost a leader over 10% of a core.
import type { Clock } from '../../storage/clock.js';
import { DriftwoodError, isDriftwoodError } from '../../storage/errors.js';
import { partitionKey, type FetchPosition, type PartitionAnswer, type ReplicaFetchRequest, type ReplicaFetchResponse } from './fetch-protocol.js';
import type { Partition } from './partition.js';

export interface FetchSessionsConfig {
  /** Sessions kept at most; the least recently used goes first (Kafka: max.incremental.fetch.session.cache.slots). */
  readonly sessionsMax: number;
  /** A session unused this long may be evicted. */
  readonly sessionIdleMsMax: number;
  /** The longest a fetch may wait, whatever it asks. */
  readonly maxWaitMsLimit: number;
  readonly bytesMaxLimit: number;
  /** How often a session's unchanged partitions are read too (well below replica.lag.time.max.ms). */
  readonly idlePartitionsScanMs: number;
}

export const defaultFetchSessionsConfig: FetchSessionsConfig = { sessionsMax: 1000, sessionIdleMsMax: 60_000, maxWaitMsLimit: 30_000, bytesMaxLimit: 64 * 1024 * 1024, idlePartitionsScanMs: 2000 };

interface SessionPartition {
  position: FetchPosition;
  /** The high watermark and log start last sent (-1: never), so unchanged ones stay off the wire. */
  sentHighWatermark: number;
  sentLogStart: number;
}

interface Session {
  readonly id: number;
  readonly followerId: number;
  /** The epoch the next request must carry. */
  epoch: number;
  readonly partitions: Map<string, SessionPartition>;
  lastUsedMs: number;
  /** Set by an append or high-watermark move on one of its partitions. */
  dirty: boolean;
  /** The partitions the next answer reads: changed, moved by the follower, or not read for lack of bytes. */
  readonly pending: Set<string>;
  /** When the next answer reads every partition (monotonic ms). */
  scanAtMs: number;
  wake: (() => void) | null;
  /** Where the next answer starts reading, so no partition starves the others. */
  rotation: number;
}

export class FetchSessions {
  private readonly sessions = new Map<number, Session>();
  private readonly byPartition = new Map<string, Set<Session>>();
  private nextId = 1;

  constructor(
    private readonly config: FetchSessionsConfig,
    private readonly clock: Clock,
    private readonly lookup: (topicId: string, partition: number) => Partition | undefined,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  /** Something changed on a partition (an append, a high-watermark move): wake the fetches waiting on it. */
  notify(topicId: string, partition: number): void {
    const sessions = this.byPartition.get(partitionKey({ topicId, partition }));
    if (sessions === undefined) return;
    for (const session of sessions) {
      session.dirty = true;
      session.pending.add(partitionKey({ topicId, partition }));
      const wake = session.wake;
      session.wake = null;
      wake?.();
    }
  }

  async handle(request: ReplicaFetchRequest): Promise<ReplicaFetchResponse> {
    checkRequest(request, this.config);
    const session = this.sessionFor(request);
    if ('sessionError' in session) return { sessionId: 0, sessionError: session.sessionError, partitions: [] };
    for (const key of request.removed) this.forget(session, partitionKey(key));
    for (const position of request.positions) this.track(session, position);
    session.epoch += 1;
    session.lastUsedMs = this.clock.monotonicMs();
    let answers = await this.collect(session, request);
    if (answers.length === 0 && request.maxWaitMs > 0 && !session.dirty) {
      await this.waitForChange(session, request.maxWaitMs);
      answers = await this.collect(session, request);
    }
    session.lastUsedMs = this.clock.monotonicMs();
    return { sessionId: session.id, partitions: answers };
  }

  private sessionFor(request: ReplicaFetchRequest): Session | { sessionError: 'FETCH_SESSION_ID_NOT_FOUND' | 'INVALID_FETCH_SESSION_EPOCH' } {
    if (request.sessionId === 0) return this.open(request.followerId);
    const session = this.sessions.get(request.sessionId);
    if (session?.followerId !== request.followerId) return { sessionError: 'FETCH_SESSION_ID_NOT_FOUND' };
    if (request.sessionEpoch !== session.epoch) {
      this.close(session);
      return { sessionError: 'INVALID_FETCH_SESSION_EPOCH' };
    }
    return session;
  }

  /** A new session for a follower replaces its older ones (one fetcher per leader per follower). */
  private open(followerId: number): Session {
    for (const session of [...this.sessions.values()]) if (session.followerId === followerId) this.close(session);
    if (this.sessions.size >= this.config.sessionsMax) {
      const nowMs = this.clock.monotonicMs();
      const oldest = [...this.sessions.values()].sort((a, b) => a.lastUsedMs - b.lastUsedMs)[0];
      if (oldest !== undefined && nowMs - oldest.lastUsedMs > this.config.sessionIdleMsMax) this.close(oldest);
      else throw new DriftwoodError('REQUEST_TIMED_OUT', `${this.config.sessionsMax} fetch sessions are open and busy; retry`);
    }
    const session: Session = { id: this.nextId++, followerId, epoch: 0, partitions: new Map(), lastUsedMs: this.clock.monotonicMs(), dirty: false, pending: new Set(), scanAtMs: 0, wake: null, rotation: 0 };
    this.sessions.set(session.id, session);
    return session;
  }

  private close(session: Session): void {
    this.sessions.delete(session.id);
    for (const key of [...session.partitions.keys()]) this.forget(session, key);
    const wake = session.wake;
    session.wake = null;
    wake?.();
  }

  private track(session: Session, position: FetchPosition): void {
    const key = partitionKey(position);
    session.pending.add(key);
    const known = session.partitions.get(key);
    if (known !== undefined) {
      known.position = position;
      return;
    }
    session.partitions.set(key, { position, sentHighWatermark: -1, sentLogStart: -1 });
    let sessions = this.byPartition.get(key);
    if (sessions === undefined) {
      sessions = new Set();
      this.byPartition.set(key, sessions);
    }
    sessions.add(session);
  }

  private forget(session: Session, key: string): void {
    session.partitions.delete(key);
    session.pending.delete(key);
    const sessions = this.byPartition.get(key);
    sessions?.delete(session);
    if (sessions?.size === 0) this.byPartition.delete(key);
  }

  private waitForChange(session: Session, maxWaitMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.clock.setTimer(maxWaitMs, () => {
        session.wake = null;
        resolve();
      });
      session.wake = () => {
        timer.cancel();
        resolve();
      };
    });
  }

  /** Every partition with something to tell the follower; partitions answered with an error leave the session. */
  private async collect(session: Session, request: ReplicaFetchRequest): Promise<PartitionAnswer[]> {
    session.dirty = false;
    const answers: PartitionAnswer[] = [];
    const nowMs = this.clock.monotonicMs();
    const scan = nowMs >= session.scanAtMs;
    if (scan) session.scanAtMs = nowMs + this.config.idlePartitionsScanMs;
    const entries = scan ? [...session.partitions] : [...session.pending].flatMap((key): Array<[string, SessionPartition]> => {
      const tracked = session.partitions.get(key);
      return tracked === undefined ? [] : [[key, tracked]];
    });
    session.pending.clear();
    const start = entries.length === 0 ? 0 : session.rotation % entries.length;
    session.rotation += 1;
    let bytesLeft = request.bytesMax;
    for (let i = 0; i < entries.length; i += 1) {
      const entry = entries[(start + i) % entries.length];
      if (entry === undefined) continue;
      const [key, tracked] = entry;
      // Unread for lack of bytes: it may have records, so the next answer looks again.
      if (bytesLeft <= 0) session.pending.add(key);
      const answer = await this.answerFor(request.followerId, tracked, bytesLeft > 0 ? Math.min(bytesLeft, request.partitionBytesMax) : 0);
      if (answer === null) continue;
      if (answer.kind === 'records') bytesLeft -= answer.bytes.length;
      if (answer.kind === 'error') this.forget(session, key);
      tracked.sentHighWatermark = answer.highWatermark;
      tracked.sentLogStart = answer.logStartOffset;
      answers.push(answer);
    }
    return answers;
  }

  private async answerFor(followerId: number, tracked: SessionPartition, bytesMax: number): Promise<PartitionAnswer | null> {
    const { position } = tracked;
    const key = { topicId: position.topicId, partition: position.partition };
    const partition = this.lookup(position.topicId, position.partition);
    if (partition === undefined) return { ...key, kind: 'error', error: 'NOT_LEADER_OR_FOLLOWER', message: 'this broker does not host the partition', highWatermark: -1, logStartOffset: -1 };
    try {
      // With no byte budget left nothing is read (the follower asks again), but the fetch
      // still counts for its lag.
      const answer = await partition.readForFollower({ followerId, leaderEpoch: position.leaderEpoch, fetchOffset: position.fetchOffset, lastFetchedEpoch: position.lastFetchedEpoch, bytesMax });
      const offsets = { highWatermark: answer.highWatermark, logStartOffset: partition.log.logStartOffset };
      if (answer.kind === 'diverging') return { ...key, ...offsets, kind: 'diverging', epoch: answer.epoch, endOffset: answer.endOffset };
      if (answer.kind === 'start-over') return { ...key, ...offsets, kind: 'start-over' };
      const bytes = answer.bytes;
      const news = bytes.length > 0 || offsets.highWatermark !== tracked.sentHighWatermark || offsets.logStartOffset !== tracked.sentLogStart;
      return news ? { ...key, ...offsets, kind: 'records', bytes } : null;
    } catch (error) {
      if (!isDriftwoodError(error)) throw error;
      return { ...key, kind: 'error', error: error.code, message: error.message, highWatermark: -1, logStartOffset: -1 };
    }
  }
}

function checkRequest(request: ReplicaFetchRequest, config: FetchSessionsConfig): void {
  const whole = (value: number, min: number, max: number): boolean => Number.isSafeInteger(value) && value >= min && value <= max;
  if (!whole(request.followerId, 1, 2 ** 31 - 1) || !whole(request.sessionId, 0, 2 ** 31 - 1) || !whole(request.sessionEpoch, 0, Number.MAX_SAFE_INTEGER)) {
    throw new DriftwoodError('INVALID_REQUEST', 'followerId, sessionId and sessionEpoch must be non-negative integers');
  }
  if (!whole(request.maxWaitMs, 0, config.maxWaitMsLimit)) throw new DriftwoodError('INVALID_REQUEST', `maxWaitMs must be in 0..${config.maxWaitMsLimit}`);
  if (!whole(request.bytesMax, 1, config.bytesMaxLimit) || !whole(request.partitionBytesMax, 1, config.bytesMaxLimit)) {
    throw new DriftwoodError('INVALID_REQUEST', `bytesMax and partitionBytesMax must be in 1..${config.bytesMaxLimit}`);
  }
  if (request.sessionId === 0 && request.removed.length > 0) throw new DriftwoodError('INVALID_REQUEST', 'a new session removes nothing');
}
