// Durable Raft state in the KV port: hard state, log entries and the last snapshot, each
// change written in one atomic, synced batch, so that nothing a message depends on can be
// lost once the message is sent (the driver sends only after save() resolves).
//
// Keys: 'raft/hs' (hard state), 'raft/snap' (snapshot), 'raft/e/<index as 16 hex digits>'
// (one entry each; hex keeps them in index order for range scans and deletes).
import assert from 'node:assert/strict';
import type { Entry, HardState, Snapshot, SnapshotMeta } from '../../raft/index.js';
import type { KV, KVOp } from '../../storage/kv.js';

const HARD_STATE_KEY = 'raft/hs';
const SNAPSHOT_KEY = 'raft/snap';
const ENTRY_PREFIX = 'raft/e/';
const ENTRY_END = 'raft/e0'; // '0' sorts right after '/', so this bounds every entry key
const ENTRY_TYPES = ['normal', 'noop'] as const;

export interface LoadedRaftState {
  hardState: HardState;
  snapshot: Snapshot | null;
  entries: Entry[];
}

export function entryKey(index: number): string {
  assert.ok(Number.isSafeInteger(index) && index > 0);
  return `${ENTRY_PREFIX}${index.toString(16).padStart(16, '0')}`;
}

export class RaftStorage {
  /** The last entry index written, so an overwrite knows which stale keys to delete. */
  private lastIndex = 0;
  private firstIndex = 1;

  constructor(private readonly kv: KV) {}

  async load(): Promise<LoadedRaftState> {
    const hardStateBytes = await this.kv.get(HARD_STATE_KEY);
    const hardState: HardState = hardStateBytes === undefined ? { term: 0, vote: 0, commit: 0 } : (JSON.parse(Buffer.from(hardStateBytes).toString('utf8')) as HardState);
    const snapshotBytes = await this.kv.get(SNAPSHOT_KEY);
    const snapshot = snapshotBytes === undefined ? null : decodeSnapshot(snapshotBytes);
    const entries: Entry[] = [];
    for await (const [, value] of this.kv.iterate({ gte: ENTRY_PREFIX, lt: ENTRY_END })) entries.push(decodeEntry(value));
    this.firstIndex = (snapshot?.meta.index ?? 0) + 1;
    this.lastIndex = entries.at(-1)?.index ?? this.firstIndex - 1;
    checkLoaded(hardState, snapshot?.meta ?? null, entries);
    return { hardState, snapshot, entries };
  }

  /**
   * Writes what a Ready asks to persist, in one synced batch: a received snapshot (which
   * replaces the log up to it), new entries (which replace any suffix they overlap) and the
   * hard state.
   */
  async save(change: { hardState: HardState | null; entries: readonly Entry[]; snapshot: Snapshot | null }): Promise<void> {
    const ops: KVOp[] = [];
    if (change.snapshot !== null) this.addSnapshot(ops, change.snapshot);
    if (change.entries.length > 0) this.addEntries(ops, change.entries);
    if (change.hardState !== null) ops.push({ type: 'put', key: HARD_STATE_KEY, value: Buffer.from(JSON.stringify(change.hardState)) });
    if (ops.length > 0) await this.kv.batch(ops, { sync: true });
  }

  /** Saves a snapshot the driver took of its own state and drops the entries it covers. */
  async saveOwnSnapshot(snapshot: Snapshot): Promise<void> {
    const ops: KVOp[] = [{ type: 'put', key: SNAPSHOT_KEY, value: encodeSnapshot(snapshot) }];
    for (let index = this.firstIndex; index <= Math.min(snapshot.meta.index, this.lastIndex); index += 1) ops.push({ type: 'del', key: entryKey(index) });
    this.firstIndex = Math.max(this.firstIndex, snapshot.meta.index + 1);
    await this.kv.batch(ops, { sync: true });
  }

  private addSnapshot(ops: KVOp[], snapshot: Snapshot): void {
    ops.push({ type: 'put', key: SNAPSHOT_KEY, value: encodeSnapshot(snapshot) });
    // A received snapshot replaces the whole log: the core keeps entries after it only when
    // they agree with it, and re-hands those in `entries` if so.
    for (let index = this.firstIndex; index <= this.lastIndex; index += 1) ops.push({ type: 'del', key: entryKey(index) });
    this.firstIndex = snapshot.meta.index + 1;
    this.lastIndex = snapshot.meta.index;
  }

  private addEntries(ops: KVOp[], entries: readonly Entry[]): void {
    const first = entries[0];
    const last = entries.at(-1);
    assert.ok(first !== undefined && last !== undefined);
    assert.ok(first.index <= this.lastIndex + 1, `entries start at ${first.index}, past the log end ${this.lastIndex}`);
    for (let index = last.index + 1; index <= this.lastIndex; index += 1) ops.push({ type: 'del', key: entryKey(index) });
    for (const entry of entries) ops.push({ type: 'put', key: entryKey(entry.index), value: encodeEntry(entry) });
    this.lastIndex = last.index;
  }
}

function checkLoaded(hardState: HardState, snapshot: SnapshotMeta | null, entries: Entry[]): void {
  let expected = (snapshot?.index ?? 0) + 1;
  for (const entry of entries) {
    assert.equal(entry.index, expected, 'the stored Raft log has a gap');
    expected += 1;
  }
  assert.ok(hardState.commit <= expected - 1, 'the stored commit index is past the stored log');
}

/** [type: u8][term: u48][data]. */
function encodeEntry(entry: Entry): Buffer {
  const out = Buffer.allocUnsafe(7 + entry.data.length);
  out.writeUInt8(ENTRY_TYPES.indexOf(entry.type), 0);
  out.writeUIntBE(entry.term, 1, 6);
  out.set(entry.data, 7);
  return Buffer.concat([indexBytes(entry.index), out]);
}

function indexBytes(index: number): Buffer {
  const out = Buffer.allocUnsafe(6);
  out.writeUIntBE(index, 0, 6);
  return out;
}

function decodeEntry(bytes: Uint8Array): Entry {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = ENTRY_TYPES[buffer.readUInt8(6)];
  assert.ok(type !== undefined, 'unknown Raft entry type in storage');
  return { index: buffer.readUIntBE(0, 6), term: buffer.readUIntBE(7, 6), type, data: Uint8Array.prototype.slice.call(buffer, 13) };
}

/** [meta JSON length: u32][meta JSON][data]. */
function encodeSnapshot(snapshot: Snapshot): Buffer {
  const meta = Buffer.from(JSON.stringify(snapshot.meta));
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32BE(meta.length, 0);
  return Buffer.concat([length, meta, snapshot.data]);
}

function decodeSnapshot(bytes: Uint8Array): Snapshot {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const metaLength = buffer.readUInt32BE(0);
  const meta = JSON.parse(buffer.subarray(4, 4 + metaLength).toString('utf8')) as SnapshotMeta;
  return { meta, data: Uint8Array.prototype.slice.call(buffer, 4 + metaLength) };
}
