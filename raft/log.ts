// The in-memory Raft log: the compaction point (the last snapshot), the entries after it,
// and the markers that say how much of it the driver has been handed and has made durable.
//
//   snapshotIndex   persisted   handed      lastIndex
//        |-------------|===========|~~~~~~~~~~~|
//          durable       handed to   not yet handed
//                        the driver  (Ready.entries next)
//
// applied <= applying <= committed always; committed entries are handed out for applying only
// up to min(committed, persisted): an entry is applied only once it is durable locally.
import assert from 'node:assert/strict';
import type { Entry, Snapshot, SnapshotMeta } from './types.js';

/** Marks what one Ready handed out, so advance() can tell what became durable. */
export interface HandoffMark {
  /** Entries up to here were handed out (or are covered by the handed snapshot). */
  readonly index: number;
  /** The restore epoch at hand-out: a snapshot restored since voids the mark. */
  readonly epoch: number;
}

/** Bytes an entry counts for in size limits: its payload plus a fixed header estimate. */
export function entryBytes(entry: Entry): number {
  return entry.data.byteLength + entryHeaderBytes;
}
const entryHeaderBytes = 24;

export class RaftLog {
  private snapshotIndex: number;
  private snapshotTerm: number;
  /** entries[i] has index snapshotIndex + 1 + i. */
  private entries: Entry[];
  private committedIndex: number;
  private appliedIndex: number;
  /** The last index handed out for applying (committed list or snapshot); >= applied. */
  private applyingIndex: number;
  /**
   * The durable prefix. It drops below snapshotIndex only while a received snapshot waits to
   * be handed out and persisted: nothing of the new log is durable until then.
   */
  private persistedIndex: number;
  /** Entries up to here have been handed to the driver (Ready.entries). */
  private handedIndex: number;
  /** A snapshot received from the leader and not yet handed to the driver. */
  private pendingSnapshot: Snapshot | null = null;
  /** Bumped by every restore: a hand-out from before a restore describes a discarded log. */
  private epoch = 0;

  constructor(snapshot: SnapshotMeta | null, entries: readonly Entry[], commit: number) {
    this.snapshotIndex = snapshot?.index ?? 0;
    this.snapshotTerm = snapshot?.term ?? 0;
    this.entries = [];
    for (const entry of entries) this.push(entry);
    this.persistedIndex = this.lastIndex();
    this.handedIndex = this.lastIndex();
    assert(commit >= this.snapshotIndex, `commit ${commit} is below the snapshot ${this.snapshotIndex}`);
    assert(commit <= this.lastIndex(), `commit ${commit} is beyond the last index ${this.lastIndex()}: was the log lost?`);
    this.committedIndex = commit;
    // The driver rebuilds its state machine from the snapshot and re-applies the committed
    // entries after it, so applying starts at the snapshot.
    this.appliedIndex = this.snapshotIndex;
    this.applyingIndex = this.snapshotIndex;
  }

  get committed(): number {
    return this.committedIndex;
  }

  get applied(): number {
    return this.appliedIndex;
  }

  get persisted(): number {
    return this.persistedIndex;
  }

  firstIndex(): number {
    return this.snapshotIndex + 1;
  }

  lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  lastTerm(): number {
    const term = this.term(this.lastIndex());
    assert(term !== undefined);
    return term;
  }

  /** The term at index, or undefined when it was compacted away or is beyond the log. */
  term(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.snapshotTerm;
    return this.entry(index)?.term;
  }

  entry(index: number): Entry | undefined {
    if (index <= this.snapshotIndex) return undefined;
    return this.entries[index - this.snapshotIndex - 1];
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The index of the first entry that conflicts with ours (same index, different term) or is
   * new to us; 0 when every entry is already in our log. Entries at or below the compaction
   * point are committed and therefore match.
   */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (entry.index <= this.snapshotIndex) continue;
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The largest index <= index whose term is <= term, with that term (etcd's
   * findConflictByTerm). Terms only grow along a log, so no index above the answer can hold
   * an entry of a term <= term: a leader can skip all of them at once. An index that was
   * compacted away answers with term 0: "unknown, may match".
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let at = Math.min(index, this.lastIndex()); at > 0; at--) {
      const ourTerm = this.term(at);
      if (ourTerm === undefined) return { index: at, term: 0 };
      if (ourTerm <= term) return { index: at, term: ourTerm };
    }
    return { index: 0, term: 0 };
  }

  /**
   * A follower's append: if our log holds (prevIndex, prevTerm), write the entries after it,
   * truncating at the first conflict, and return the index of the last new entry; otherwise
   * null. Entries already present are left alone (a stale or duplicated append must never
   * truncate entries a later append added).
   */
  maybeAppend(prevIndex: number, prevTerm: number, entries: readonly Entry[]): number | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNewIndex = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      assert(conflict > this.committedIndex, `entry ${conflict} conflicts with a committed entry (commit ${this.committedIndex})`);
      const first = entries[0];
      assert(first !== undefined);
      this.append(entries.slice(conflict - first.index));
    }
    return lastNewIndex;
  }

  /**
   * Writes entries at entries[0].index, dropping whatever our log held from there on.
   * Committed entries are never dropped: that would lose an entry the cluster agreed on.
   */
  append(entries: readonly Entry[]): number {
    const first = entries[0];
    if (first === undefined) return this.lastIndex();
    assert(first.index > this.committedIndex, `append at ${first.index} would overwrite committed entries (commit ${this.committedIndex})`);
    assert(first.index <= this.lastIndex() + 1, `append at ${first.index} leaves a gap after ${this.lastIndex()}`);
    this.truncateFrom(first.index);
    for (const entry of entries) this.push(entry);
    return this.lastIndex();
  }

  /**
   * Entries in [lo, hiExclusive) up to maxCount entries and maxBytes bytes (always at least one
   * entry, so one large entry still moves); null when lo was compacted away.
   */
  slice(lo: number, hiExclusive: number, maxCount: number, maxBytes: number): Entry[] | null {
    if (lo <= this.snapshotIndex) return null;
    assert(hiExclusive <= this.lastIndex() + 1);
    const out: Entry[] = [];
    let bytes = 0;
    for (let index = lo; index < hiExclusive && out.length < maxCount; index++) {
      const entry = this.entry(index);
      assert(entry !== undefined);
      bytes += entryBytes(entry);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(entry);
    }
    return out;
  }

  commitTo(index: number): boolean {
    if (index <= this.committedIndex) return false;
    assert(index <= this.lastIndex(), `commit ${index} is beyond the last index ${this.lastIndex()}: was the log lost?`);
    this.committedIndex = index;
    return true;
  }

  /**
   * Replaces the whole log by a snapshot received from the leader. The caller has checked
   * that the snapshot is newer than our commit index and that our log does not already hold
   * its last entry: everything we hold is either older than it or possibly conflicting.
   */
  restore(snapshot: Snapshot): void {
    const meta = snapshot.meta;
    assert(meta.index > this.committedIndex, `snapshot ${meta.index} is not newer than commit ${this.committedIndex}`);
    this.snapshotIndex = meta.index;
    this.snapshotTerm = meta.term;
    this.entries = [];
    this.committedIndex = meta.index;
    this.pendingSnapshot = snapshot;
    this.handedIndex = meta.index;
    this.persistedIndex = 0;
    this.epoch++;
  }

  /** Drops the entries up to index, which the driver captured in a snapshot of applied state. */
  compact(index: number): void {
    assert(index <= this.appliedIndex, `compact(${index}) beyond the applied index ${this.appliedIndex}`);
    assert(index >= this.snapshotIndex, `compact(${index}) below the last snapshot ${this.snapshotIndex}`);
    assert(index <= this.persistedIndex);
    const term = this.term(index);
    assert(term !== undefined);
    this.entries = this.entries.slice(index - this.snapshotIndex);
    this.snapshotIndex = index;
    this.snapshotTerm = term;
  }

  // --- hand-out to the driver (Ready) and back (advance) ---

  hasUnhanded(): boolean {
    return this.pendingSnapshot !== null || this.handedIndex < this.lastIndex();
  }

  /** The entries the driver has not been handed yet; the first may overwrite a stored suffix. */
  unhandedEntries(): Entry[] {
    return this.entries.slice(this.handedIndex - this.snapshotIndex);
  }

  unhandedSnapshot(): Snapshot | null {
    return this.pendingSnapshot;
  }

  /** Records that the driver was handed everything up to the last index (and any snapshot). */
  handOut(): HandoffMark {
    const snapshot = this.pendingSnapshot;
    if (snapshot !== null) {
      // The driver installs the snapshot into its state machine with this Ready.
      this.applyingIndex = snapshot.meta.index;
      this.pendingSnapshot = null;
    }
    this.handedIndex = this.lastIndex();
    return { index: this.handedIndex, epoch: this.epoch };
  }

  /**
   * The driver made a hand-out durable. This is etcd's stableTo and its ABA race: between
   * ready() and advance() a step may have truncated the log at k <= mark.index and appended
   * new entries there. The driver persisted the OLD entries at k.., not the new ones, so
   * only the prefix up to min(mark.index, handed) is durable now; truncateFrom() lowered
   * `handed` to k-1 and the new entries go out in the next Ready. A restore in between voids
   * the mark altogether: the old entries belong to a log that no longer exists.
   */
  markPersisted(mark: HandoffMark): void {
    if (mark.epoch !== this.epoch) return;
    const durable = Math.min(mark.index, this.handedIndex);
    if (durable > this.persistedIndex) this.persistedIndex = durable;
    assert(this.persistedIndex <= this.lastIndex());
  }

  /** The next committed and durable entries to apply, at most maxCount of them. */
  nextCommitted(maxCount: number): Entry[] {
    const hi = Math.min(this.committedIndex, this.persistedIndex, this.applyingIndex + maxCount);
    const out: Entry[] = [];
    for (let index = this.applyingIndex + 1; index <= hi; index++) {
      const entry = this.entry(index);
      assert(entry !== undefined, `committed entry ${index} is missing`);
      out.push(entry);
    }
    return out;
  }

  hasNextCommitted(): boolean {
    return Math.min(this.committedIndex, this.persistedIndex) > this.applyingIndex;
  }

  /** The driver will apply up to index with the Ready being built. */
  applyingTo(index: number): void {
    assert(index >= this.applyingIndex);
    assert(index <= this.committedIndex);
    this.applyingIndex = index;
  }

  /** The driver applied everything it was handed. The applied index never regresses. */
  appliedTo(index: number): void {
    assert(index >= this.appliedIndex, `applied index regressed from ${this.appliedIndex} to ${index}`);
    assert(index <= this.applyingIndex, `applied ${index} beyond what was handed out (${this.applyingIndex})`);
    assert(index <= this.committedIndex);
    this.appliedIndex = index;
  }

  get applyingTarget(): number {
    return this.applyingIndex;
  }

  private truncateFrom(index: number): void {
    if (index > this.lastIndex()) return;
    this.entries.length = index - this.snapshotIndex - 1;
    if (this.handedIndex >= index) this.handedIndex = index - 1;
    if (this.persistedIndex >= index) this.persistedIndex = index - 1;
  }

  /** Every entry continues the log: the next index and a term that never goes down. */
  private push(entry: Entry): void {
    const last = this.lastIndex();
    assert.equal(entry.index, last + 1, `entry index ${entry.index} does not follow ${last}`);
    const lastTerm = this.term(last);
    assert(lastTerm !== undefined);
    assert(entry.term >= lastTerm, `entry ${entry.index} has term ${entry.term} below the previous ${lastTerm}`);
    this.entries.push(entry);
  }
}
