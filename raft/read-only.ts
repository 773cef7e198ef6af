// Linearizable reads by ReadIndex (Raft thesis §6.4), as etcd's ReadOnlySafe.
//
// Why ReadIndex and not a leader lease: a lease lets a leader answer reads alone for a while
// after a heartbeat round, on the assumption that no other node can be elected before the
// lease runs out. That is an assumption about clocks: bounded drift, and no pauses or jumps.
// The simulator jumps clocks and stalls processes on purpose, and real machines do it by
// accident (VM migration, GC pauses, NTP steps); an old leader with a stale lease would then
// serve reads that miss writes a newer leader already committed. ReadIndex assumes nothing
// about time: the leader records its commit index, then confirms it is still the leader by a
// heartbeat round answered by a majority *after* the read arrived. Any newer leader must have
// been elected by a majority that overlaps the one that answered, so none existed when the
// round started, and the recorded commit index covers every write acknowledged before the read.
// The cost is one round trip per batch of reads.
//
// A new leader may not know the commit index of the term before it (Raft §5.4.2: it commits
// the previous terms' entries only by committing its own noop), so reads wait until the
// leader has committed an entry of its own term; until then they are deferred here.
import assert from 'node:assert/strict';
import type { NodeId, ReadState } from './types.js';

interface PendingRead {
  readonly requestId: number;
  /** The leader's commit index when the read arrived. */
  readonly index: number;
  /** Voters that answered a heartbeat carrying this request id (the leader included). */
  readonly acks: Set<NodeId>;
}

/** A limit on reads waiting for their heartbeat round or their leader's first commit. */
export const pendingReadsMax = 4096;

export class ReadOnly {
  /** Oldest first: confirming one read confirms every read queued before it. */
  private queue: PendingRead[] = [];
  private readonly byId = new Map<number, PendingRead>();
  /** Reads that arrived before the leader committed an entry of its term. */
  private deferred: number[] = [];

  get size(): number {
    return this.queue.length + this.deferred.length;
  }

  has(requestId: number): boolean {
    return this.byId.has(requestId) || this.deferred.includes(requestId);
  }

  defer(requestId: number): void {
    assert(!this.has(requestId), `read request ${requestId} is already pending`);
    this.deferred.push(requestId);
  }

  takeDeferred(): number[] {
    const out = this.deferred;
    this.deferred = [];
    return out;
  }

  add(requestId: number, index: number, leader: NodeId): void {
    assert(!this.has(requestId), `read request ${requestId} is already pending`);
    const read: PendingRead = { requestId, index, acks: new Set([leader]) };
    this.queue.push(read);
    this.byId.set(requestId, read);
  }

  /** Records a voter's answer to the heartbeat round for requestId; the acks so far. */
  recvAck(from: NodeId, requestId: number): number {
    const read = this.byId.get(requestId);
    if (read === undefined) return 0;
    read.acks.add(from);
    return read.acks.size;
  }

  /** Leadership is confirmed for requestId: release it and every read queued before it. */
  release(requestId: number): ReadState[] {
    const at = this.queue.findIndex((read) => read.requestId === requestId);
    if (at < 0) return [];
    const released = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    for (const read of released) this.byId.delete(read.requestId);
    return released.map((read) => ({ requestId: read.requestId, index: read.index }));
  }

  /** The leader lost its role: pending reads are dropped; the driver's callers retry. */
  reset(): void {
    this.queue = [];
    this.byId.clear();
    this.deferred = [];
  }
}
