// The leader-epoch cache of one partition: for each leader epoch, the first offset written
// in it. Followers use it to find where their log forked from the leader's (KIP-101,
// KIP-279): "what is the end offset of epoch E?" is answered by the start of the next epoch.
// Persisted like Kafka's leader-epoch-checkpoint (text: version, count, "epoch offset" lines),
// written to a temporary file, synced and renamed into place, so a crash leaves the old or
// the new file, never half of one.
import assert from 'node:assert/strict';
import type { Disk } from './disk.js';
import { joinPath } from './disk.js';
import { readWholeFile, writeFileAtomically } from './files.js';

export interface EpochEntry {
  readonly epoch: number;
  readonly startOffset: number;
}

export const UNDEFINED_EPOCH = -1;
export const UNDEFINED_EPOCH_OFFSET = -1;
export const EPOCH_CHECKPOINT_FILE = 'leader-epoch-checkpoint';
const CHECKPOINT_VERSION = 0;

export class LeaderEpochCache {
  private entries: EpochEntry[];

  private constructor(private readonly disk: Disk, private readonly dir: string, entries: EpochEntry[]) {
    this.entries = entries;
    this.checkInvariants();
  }

  /** Loads the checkpoint; null when it is missing or damaged, so the caller rebuilds it. */
  static async load(disk: Disk, dir: string): Promise<LeaderEpochCache | null> {
    const bytes = await readWholeFile(disk, joinPath(dir, EPOCH_CHECKPOINT_FILE));
    const entries = bytes === null ? null : parseCheckpoint(bytes.toString('utf8'));
    return entries === null ? null : new LeaderEpochCache(disk, dir, entries);
  }

  /** An empty cache (new log, or one being rebuilt); persist() writes it. */
  static empty(disk: Disk, dir: string): LeaderEpochCache {
    return new LeaderEpochCache(disk, dir, []);
  }

  get all(): readonly EpochEntry[] {
    return this.entries;
  }

  latestEpoch(): number {
    return this.entries.at(-1)?.epoch ?? UNDEFINED_EPOCH;
  }

  /**
   * Records that `epoch` starts at `startOffset`. Returns whether anything changed (the
   * caller then persists before it writes the batch). An epoch older than the latest is a
   * caller bug: batches reach the log in epoch order.
   */
  assign(epoch: number, startOffset: number): boolean {
    assert.ok(Number.isSafeInteger(epoch) && epoch >= 0, `leader epoch must be >= 0, got ${epoch}`);
    const latest = this.entries.at(-1);
    if (latest !== undefined && epoch === latest.epoch) return false;
    assert.ok(latest === undefined || epoch > latest.epoch, `leader epoch ${epoch} is older than ${String(latest?.epoch)}`);
    // An epoch that wrote nothing is replaced by the next one starting at the same offset.
    this.entries = this.entries.filter((entry) => entry.startOffset < startOffset);
    this.entries.push({ epoch, startOffset });
    this.checkInvariants();
    return true;
  }

  /**
   * Kafka's OffsetsForLeaderEpoch answer: the largest epoch <= requested and the offset where
   * it ended (the next epoch's start, or the log end for the latest epoch).
   */
  endOffsetFor(requestedEpoch: number, logEndOffset: number): EpochEntry {
    const undefinedAnswer = { epoch: UNDEFINED_EPOCH, startOffset: UNDEFINED_EPOCH_OFFSET };
    if (requestedEpoch === UNDEFINED_EPOCH) return undefinedAnswer;
    const latest = this.entries.at(-1);
    if (latest !== undefined && latest.epoch === requestedEpoch) return { epoch: requestedEpoch, startOffset: logEndOffset };
    const higher = this.entries.findIndex((entry) => entry.epoch > requestedEpoch);
    if (higher < 0) return undefinedAnswer;
    const next = this.entries[higher];
    assert.ok(next !== undefined);
    const floor = higher === 0 ? undefined : this.entries[higher - 1];
    return { epoch: floor?.epoch ?? requestedEpoch, startOffset: next.startOffset };
  }

  /** Drops epochs that start at or after `endOffset` (the log was truncated there). */
  truncateFromEnd(endOffset: number): boolean {
    const kept = this.entries.filter((entry) => entry.startOffset < endOffset);
    const changed = kept.length !== this.entries.length;
    this.entries = kept;
    return changed;
  }

  /** Moves the first epoch's start up to `startOffset` (segments before it were deleted). */
  truncateFromStart(startOffset: number): boolean {
    const firstKept = this.entries.findLastIndex((entry) => entry.startOffset <= startOffset);
    if (firstKept < 0) return false;
    const first = this.entries[firstKept];
    assert.ok(first !== undefined);
    if (firstKept === 0 && first.startOffset === startOffset) return false;
    this.entries = [{ epoch: first.epoch, startOffset }, ...this.entries.slice(firstKept + 1)];
    this.checkInvariants();
    return true;
  }

  /**
   * Keeps only epochs of batches in [startOffset, endOffset): the first moves up to the log
   * start, any starting at or past the log end goes. Retention and recovery both end here,
   * so the cache is the same before and after a restart. Returns whether anything changed.
   */
  clampTo(startOffset: number, endOffset: number): boolean {
    const movedStart = this.truncateFromStart(startOffset);
    return this.truncateFromEnd(endOffset) || movedStart;
  }

  clear(): void {
    this.entries = [];
  }

  /** Writes the checkpoint durably: temporary file, sync, rename, sync of the directory. */
  async persist(): Promise<void> {
    const bytes = Buffer.from(formatCheckpoint(this.entries), 'utf8');
    await writeFileAtomically(this.disk, joinPath(this.dir, EPOCH_CHECKPOINT_FILE), bytes);
    await this.disk.syncDir(this.dir);
  }

  private checkInvariants(): void {
    for (let i = 1; i < this.entries.length; i += 1) {
      const previous = this.entries[i - 1];
      const current = this.entries[i];
      assert.ok(previous !== undefined && current !== undefined);
      assert.ok(current.epoch > previous.epoch, 'leader epochs must increase');
      assert.ok(current.startOffset > previous.startOffset, 'leader epoch start offsets must increase');
    }
  }
}

function formatCheckpoint(entries: readonly EpochEntry[]): string {
  const lines = [String(CHECKPOINT_VERSION), String(entries.length), ...entries.map((e) => `${e.epoch} ${e.startOffset}`)];
  return `${lines.join('\n')}\n`;
}

function parseCheckpoint(text: string): EpochEntry[] | null {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines[0] !== String(CHECKPOINT_VERSION)) return null;
  const count = Number(lines[1]);
  if (!Number.isSafeInteger(count) || count !== lines.length - 2) return null;
  const entries: EpochEntry[] = [];
  for (const line of lines.slice(2)) {
    const match = /^(\d+) (\d+)$/.exec(line);
    if (match === null) return null;
    const entry = { epoch: Number(match[1]), startOffset: Number(match[2]) };
    const previous = entries.at(-1);
    if (previous !== undefined && (entry.epoch <= previous.epoch || entry.startOffset <= previous.startOffset)) return null;
    entries.push(entry);
  }
  return entries;
}
