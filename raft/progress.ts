// The leader's view of one follower (etcd's tracker.Progress): how much of the log it holds
// (match), what to send next (next), and how to send it:
//  - probe: we do not know where the follower's log ends; send one append at a time and wait
//    for its answer (or a heartbeat response) before sending the next;
//  - replicate: the follower is in step; stream appends optimistically, at most
//    maxInflightAppends unacknowledged at once;
//  - snapshot: the follower needs entries we compacted; send the snapshot chunk by chunk and
//    nothing else until it has it.
import assert from 'node:assert/strict';
import type { Snapshot } from './types.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/**
 * The last indexes of the appends in flight to one follower, oldest first: a bounded ring.
 * Full means the follower's pipe is full and we wait for acknowledgements.
 */
export class Inflights {
  private readonly ring: number[];
  private start = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    assert(Number.isSafeInteger(capacity) && capacity > 0, `inflight capacity must be positive, got ${capacity}`);
    this.ring = new Array<number>(capacity).fill(0);
  }

  get size(): number {
    return this.count;
  }

  full(): boolean {
    return this.count === this.capacity;
  }

  add(lastIndex: number): void {
    assert(!this.full(), 'adding to full inflights');
    const newest = this.count === 0 ? undefined : this.at(this.count - 1);
    assert(newest === undefined || lastIndex > newest, `inflight ${lastIndex} does not follow ${newest}`);
    this.ring[(this.start + this.count) % this.capacity] = lastIndex;
    this.count++;
  }

  /** Frees every append whose last index is <= index: the follower acknowledged them. */
  freeLE(index: number): void {
    while (this.count > 0 && this.at(0) <= index) {
      this.start = (this.start + 1) % this.capacity;
      this.count--;
    }
  }

  /** Frees the oldest append: a heartbeat round trip suggests it was lost. */
  freeFirst(): void {
    if (this.count === 0) return;
    this.start = (this.start + 1) % this.capacity;
    this.count--;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
  }

  private at(offset: number): number {
    const value = this.ring[(this.start + offset) % this.capacity];
    assert(value !== undefined);
    return value;
  }
}

/** A snapshot being sent to one follower, chunk by chunk, one chunk in flight. */
export interface SnapshotTransfer {
  readonly snapshot: Snapshot;
  /** The follower acknowledged holding this many bytes. */
  ackedOffset: number;
  /** The end of the last chunk sent. */
  sentOffset: number;
  /** ackedOffset when the previous heartbeat response came back: unchanged means stalled. */
  ackedAtLastHeartbeat: number;
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** Probe state: an append is in flight; wait for an answer or a heartbeat response. */
  probeSent = false;
  /** Heard from since the last check-quorum round (or the leader's election). */
  recentActive = false;
  readonly inflights: Inflights;
  transfer: SnapshotTransfer | null = null;

  constructor(
    next: number,
    maxInflight: number,
    readonly isVoter: boolean,
  ) {
    assert(next >= 1);
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  becomeProbe(): void {
    // After a snapshot the follower holds at least the snapshot's index: probe after it.
    const snapshotIndex = this.transfer?.snapshot.meta.index ?? 0;
    this.next = Math.max(this.match + 1, snapshotIndex + 1);
    this.reset('probe');
  }

  becomeReplicate(): void {
    this.next = this.match + 1;
    this.reset('replicate');
  }

  becomeSnapshot(snapshot: Snapshot): void {
    this.reset('snapshot');
    this.transfer = { snapshot, ackedOffset: 0, sentOffset: 0, ackedAtLastHeartbeat: -1 };
  }

  /**
   * The follower acknowledged holding the log up to index. Returns whether match moved;
   * acknowledgements arrive out of order, so an older one is ignored.
   */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * The follower rejected an append at prevIndex `rejected`; matchHint is where the logs may
   * match (already refined by term on both sides). Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      // A rejection at or below match answers an append older than what was acknowledged.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // Outside replicate state one append is in flight, anchored at next - 1; any other
    // rejection is stale.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  /** An append with `count` entries ending at lastIndex went out. */
  sentEntries(count: number, lastIndex: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex);
      }
      return;
    }
    assert.equal(this.state, 'probe');
    this.probeSent = true;
  }

  private reset(state: ProgressState): void {
    if (state !== 'snapshot') this.transfer = null;
    this.state = state;
    this.probeSent = false;
    this.inflights.reset();
  }
}
