// The leader's side of log replication: one Progress per follower (voters and observers),
// what to send each of them and when, and what their answers change. A Replication lives for
// one term of leadership: a new leader starts a fresh one, knowing nothing of its followers.
//
// Raft (raft.ts) keeps the decisions that need more than one follower's view: committing,
// confirming reads, handing leadership over.
import assert from 'node:assert/strict';
import type { RaftLog } from './log.js';
import { Progress, type SnapshotTransfer } from './progress.js';
import { snapshotChunk } from './snapshot-transfer.js';
import type { Message, MessageBody, NodeId, Snapshot } from './types.js';

export interface ReplicationLimits {
  maxEntriesPerAppend: number;
  maxBytesPerAppend: number;
  maxInflightAppends: number;
  snapshotChunkBytes: number;
}

export interface Follower {
  readonly id: NodeId;
  readonly isVoter: boolean;
}

type MessageOf<T extends Message['type']> = Extract<Message, { type: T }>;

export class Replication {
  private readonly progress = new Map<NodeId, Progress>();

  constructor(
    private readonly log: RaftLog,
    private readonly limits: ReplicationLimits,
    followers: readonly Follower[],
    /** Sends a message of the leader's term. */
    private readonly send: (to: NodeId, body: MessageBody) => void,
    /** The snapshot to send a follower that needs compacted entries (null: not available). */
    private readonly snapshot: () => Snapshot | null,
  ) {
    // We know nothing of the followers yet: probe each from the end of our log.
    const next = log.lastIndex() + 1;
    for (const follower of followers) this.progress.set(follower.id, new Progress(next, limits.maxInflightAppends, follower.isVoter));
  }

  /** A follower that joined during this term (an observer added at runtime): probe it from our log's end. */
  addFollower(follower: Follower): void {
    assert(!this.progress.has(follower.id), `follower ${follower.id} is known already`);
    const pr = new Progress(this.log.lastIndex() + 1, this.limits.maxInflightAppends, follower.isVoter);
    this.progress.set(follower.id, pr);
    this.sendAppend(follower.id, pr, true);
  }

  /** A follower that left (an observer removed): nothing more is sent to it, its answers are ignored. */
  removeFollower(id: NodeId): void {
    const pr = this.progress.get(id);
    assert(pr !== undefined, `no progress for ${id}`);
    assert(!pr.isVoter, `voter ${id} cannot be removed`);
    this.progress.delete(id);
  }

  get(id: NodeId): Progress | undefined {
    return this.progress.get(id);
  }

  peer(id: NodeId): Progress {
    const pr = this.progress.get(id);
    assert(pr !== undefined, `no progress for ${id}`);
    return pr;
  }

  entries(): IterableIterator<[NodeId, Progress]> {
    return this.progress.entries();
  }

  /**
   * Counts the voters heard from since the last call (the leader itself included) and starts
   * a new round: check-quorum's view of who is alive.
   */
  activeVotersThenReset(): number {
    let active = 1;
    for (const pr of this.progress.values()) {
      if (pr.isVoter && pr.recentActive) active++;
      pr.recentActive = false;
    }
    return active;
  }

  bcastAppend(): void {
    for (const [id, pr] of this.progress) this.sendAppend(id, pr, true);
  }

  bcastHeartbeat(context: number): void {
    const committed = this.log.committed;
    // A follower may not hold our whole committed prefix yet; it must commit only what it
    // holds, and what it holds matches our log up to its match index.
    for (const [id, pr] of this.progress) this.send(id, { type: 'heartbeat', commit: Math.min(pr.match, committed), context });
  }

  /**
   * Sends the entries from pr.next on, or the snapshot when they were compacted away. Returns
   * whether anything was sent.
   */
  sendAppend(to: NodeId, pr: Progress, sendIfEmpty: boolean): boolean {
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const lastIndex = this.log.lastIndex();
    const entries = this.log.slice(pr.next, lastIndex + 1, this.limits.maxEntriesPerAppend, this.limits.maxBytesPerAppend);
    if (prevTerm === undefined || entries === null) return this.sendSnapshot(to, pr);
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send(to, { type: 'append', prevIndex, prevTerm, entries, commit: this.log.committed });
    pr.sentEntries(entries.length, prevIndex + entries.length);
    return true;
  }

  /** Sends as many appends as the follower's window takes, without empty ones. */
  fill(to: NodeId, pr: Progress): void {
    for (let sent = 0; sent <= this.limits.maxInflightAppends && this.sendAppend(to, pr, false); sent++);
  }

  /** The follower does not hold our entry at m.index: back up and probe again. */
  onRejected(from: NodeId, pr: Progress, m: MessageOf<'appendResponse'>): void {
    // The follower's hint is the largest index at which our logs may match; refine it by our
    // own log: none of our entries above the last one with a term <= hintTerm can match.
    const hint = m.hintTerm > 0 ? this.log.findConflictByTerm(m.hintIndex, m.hintTerm).index : m.hintIndex;
    if (!pr.maybeDecrTo(m.index, hint)) return;
    if (pr.state === 'replicate') pr.becomeProbe();
    this.sendAppend(from, pr, true);
  }

  /**
   * The follower holds our log up to index. Returns whether that moved its match (or took it
   * out of probing), in which case the caller looks at the commit index and the window.
   */
  onAcknowledged(pr: Progress, index: number): boolean {
    const updated = pr.maybeUpdate(index);
    if (!updated && !(pr.match === index && pr.state === 'probe')) return false;
    if (pr.state === 'probe') {
      pr.becomeReplicate();
    } else if (pr.state === 'snapshot' && pr.match + 1 >= this.log.firstIndex()) {
      // The follower caught up (by the snapshot or otherwise): replicate from its match.
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'replicate') {
      pr.inflights.freeLE(index);
    }
    return true;
  }

  onHeartbeatResponse(from: NodeId, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    // A round trip happened: if the window is full, its oldest append was probably lost.
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirst();
    if (pr.state === 'snapshot') this.resendStalledChunk(from, pr);
    else if (pr.match < this.log.lastIndex() || pr.state === 'probe') this.sendAppend(from, pr, true);
  }

  onSnapshotResponse(from: NodeId, pr: Progress, m: MessageOf<'snapshotResponse'>): void {
    const transfer = pr.transfer;
    if (pr.state !== 'snapshot' || transfer === null) return;
    if (m.done) {
      // Wait for the follower's append response (sent along) before appending more.
      pr.becomeProbe();
      pr.probeSent = true;
      return;
    }
    if (m.rejected) {
      // Out of order at the follower: resume from the offset it expects.
      if (m.offset <= transfer.snapshot.data.byteLength) this.sendChunk(from, transfer, m.offset);
      return;
    }
    if (m.offset > transfer.ackedOffset) transfer.ackedOffset = m.offset;
    if (m.offset === transfer.sentOffset && m.offset < transfer.snapshot.data.byteLength) this.sendChunk(from, transfer, m.offset);
  }

  /**
   * Chunks travel one at a time and may be lost. When a heartbeat round trip completes with no
   * chunk acknowledged since the previous one, send the unacknowledged chunk again.
   */
  private resendStalledChunk(from: NodeId, pr: Progress): void {
    const transfer = pr.transfer;
    if (transfer === null) return;
    if (transfer.ackedOffset === transfer.ackedAtLastHeartbeat) this.sendChunk(from, transfer, transfer.ackedOffset);
    transfer.ackedAtLastHeartbeat = transfer.ackedOffset;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    // Only to a follower we heard from lately: a snapshot is big, and a dead follower would
    // hold the transfer until it answers again.
    if (!pr.recentActive) return false;
    const snapshot = this.snapshot();
    // No snapshot data (restarted without it): temporarily unavailable; the driver's next
    // compact() provides it.
    if (snapshot === null) return false;
    assert(snapshot.meta.index >= this.log.firstIndex() - 1, 'the snapshot does not reach the log');
    pr.becomeSnapshot(snapshot);
    const transfer = pr.transfer;
    assert(transfer !== null);
    this.sendChunk(to, transfer, 0);
    return true;
  }

  private sendChunk(to: NodeId, transfer: SnapshotTransfer, offset: number): void {
    const { chunk, end, done } = snapshotChunk(transfer.snapshot, offset, this.limits.snapshotChunkBytes);
    this.send(to, { type: 'snapshot', meta: transfer.snapshot.meta, offset, chunk, done });
    transfer.sentOffset = end;
  }
}
