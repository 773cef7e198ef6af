// Sparse indexes of one segment, kept in memory and written to disk when the segment is
// sealed (the active segment's are rebuilt by the recovery scan, so they are never stale).
//
// - The offset index maps a batch's base offset to its byte position in the segment, one
//   entry per ~indexIntervalBytes: a read finds the nearest entry at or below the offset it
//   wants and scans forward at most one interval.
// - The time index maps "largest timestamp so far" to the offset of the batch that has it,
//   so a lookup by timestamp can skip everything that is certainly older.
//
// On-disk entries are Kafka's: offset index = relative offset u32 + position u32 (8 bytes);
// time index = timestamp i64 + relative offset u32 (12 bytes), big-endian.
import assert from 'node:assert/strict';

const INITIAL_CAPACITY = 64;

/** Two parallel columns of numbers; keys strictly increasing. */
class Columns {
  keys = new Float64Array(INITIAL_CAPACITY);
  values = new Float64Array(INITIAL_CAPACITY);
  count = 0;

  push(key: number, value: number): void {
    if (this.count === this.keys.length) this.grow();
    this.keys[this.count] = key;
    this.values[this.count] = value;
    this.count += 1;
  }

  lastKey(): number | undefined {
    return this.count === 0 ? undefined : this.keys[this.count - 1];
  }

  lastValue(): number | undefined {
    return this.count === 0 ? undefined : this.values[this.count - 1];
  }

  /** Index of the last entry whose key is <= key (or < key when strict), or -1. */
  floor(key: number, strict: boolean): number {
    let low = 0;
    let high = this.count - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const candidate = this.keys[middle] ?? Infinity;
      if (strict ? candidate < key : candidate <= key) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  }

  /** Keeps only the first `count` entries. */
  keep(count: number): void {
    assert.ok(count >= 0 && count <= this.count);
    this.count = count;
  }

  private grow(): void {
    const keys = new Float64Array(this.keys.length * 2);
    const values = new Float64Array(this.values.length * 2);
    keys.set(this.keys);
    values.set(this.values);
    this.keys = keys;
    this.values = values;
  }
}

export const OFFSET_INDEX_ENTRY_BYTES = 8;
export const TIME_INDEX_ENTRY_BYTES = 12;

export class OffsetIndex {
  private readonly columns = new Columns();

  constructor(readonly baseOffset: number) {}

  get entryCount(): number {
    return this.columns.count;
  }

  append(offset: number, position: number): void {
    const last = this.columns.lastKey();
    assert.ok(last === undefined || offset > last, `offset index must increase: ${offset} after ${String(last)}`);
    assert.ok(offset >= this.baseOffset && offset - this.baseOffset <= 0xffffffff);
    assert.ok(position >= 0 && position <= 0xffffffff);
    this.columns.push(offset, position);
  }

  /** The byte position of the nearest indexed batch starting at or below `offset` (0 if none). */
  lookup(offset: number): { offset: number; position: number } {
    const at = this.columns.floor(offset, false);
    if (at < 0) return { offset: this.baseOffset, position: 0 };
    return { offset: this.columns.keys[at] ?? this.baseOffset, position: this.columns.values[at] ?? 0 };
  }

  /** Drops entries at or past `sizeBytes` (the segment was cut there). */
  truncateToPosition(sizeBytes: number): void {
    let count = this.columns.count;
    while (count > 0 && (this.columns.values[count - 1] ?? 0) >= sizeBytes) count -= 1;
    this.columns.keep(count);
  }

  lastPosition(): number {
    return this.columns.lastValue() ?? 0;
  }

  serialize(): Buffer {
    const out = Buffer.alloc(this.columns.count * OFFSET_INDEX_ENTRY_BYTES);
    for (let i = 0; i < this.columns.count; i += 1) {
      out.writeUInt32BE((this.columns.keys[i] ?? 0) - this.baseOffset, i * 8);
      out.writeUInt32BE(this.columns.values[i] ?? 0, i * 8 + 4);
    }
    return out;
  }

  /**
   * Reads an index file; null when it is damaged (size not a multiple of the entry, offsets
   * or positions not increasing, a position past the segment's end), so the caller rebuilds it.
   */
  static parse(bytes: Buffer, baseOffset: number, segmentBytes: number): OffsetIndex | null {
    if (bytes.length % OFFSET_INDEX_ENTRY_BYTES !== 0) return null;
    const index = new OffsetIndex(baseOffset);
    let lastPosition = -1;
    for (let at = 0; at < bytes.length; at += OFFSET_INDEX_ENTRY_BYTES) {
      const offset = baseOffset + bytes.readUInt32BE(at);
      const position = bytes.readUInt32BE(at + 4);
      const lastOffset = index.columns.lastKey();
      if (lastOffset !== undefined && offset <= lastOffset) return null;
      if (position <= lastPosition || position >= segmentBytes) return null;
      index.columns.push(offset, position);
      lastPosition = position;
    }
    return index;
  }
}

export class TimeIndex {
  private readonly columns = new Columns();

  constructor(readonly baseOffset: number) {}

  get entryCount(): number {
    return this.columns.count;
  }

  /** Adds an entry only when the timestamp is newer than the last one. */
  maybeAppend(timestampMs: number, offset: number): void {
    const last = this.columns.lastKey();
    if (last !== undefined && timestampMs <= last) return;
    const lastOffset = this.columns.lastValue();
    assert.ok(lastOffset === undefined || offset >= lastOffset, 'time index offsets must not decrease');
    this.columns.push(timestampMs, offset);
  }

  /**
   * The offset from which to scan for the first record with timestamp >= timestampMs: every
   * batch before it has only older records. The segment's base offset when no entry helps.
   */
  lookup(timestampMs: number): number {
    const at = this.columns.floor(timestampMs, true);
    return at < 0 ? this.baseOffset : this.columns.values[at] ?? this.baseOffset;
  }

  /** Drops entries that point at or past `offset` (the segment was cut there). */
  truncateToOffset(offset: number): void {
    let count = this.columns.count;
    while (count > 0 && (this.columns.values[count - 1] ?? 0) >= offset) count -= 1;
    this.columns.keep(count);
  }

  lastTimestampMs(): number | undefined {
    return this.columns.lastKey();
  }

  serialize(): Buffer {
    const out = Buffer.alloc(this.columns.count * TIME_INDEX_ENTRY_BYTES);
    for (let i = 0; i < this.columns.count; i += 1) {
      out.writeBigInt64BE(BigInt(this.columns.keys[i] ?? 0), i * 12);
      out.writeUInt32BE((this.columns.values[i] ?? 0) - this.baseOffset, i * 12 + 8);
    }
    return out;
  }

  /** Reads a time index file; null when damaged (see OffsetIndex.parse). */
  static parse(bytes: Buffer, baseOffset: number, nextOffset: number): TimeIndex | null {
    if (bytes.length % TIME_INDEX_ENTRY_BYTES !== 0) return null;
    const index = new TimeIndex(baseOffset);
    for (let at = 0; at < bytes.length; at += TIME_INDEX_ENTRY_BYTES) {
      const timestampMs = Number(bytes.readBigInt64BE(at));
      const offset = baseOffset + bytes.readUInt32BE(at + 8);
      const lastTimestamp = index.columns.lastKey();
      const lastOffset = index.columns.lastValue();
      if (lastTimestamp !== undefined && timestampMs <= lastTimestamp) return null;
      if ((lastOffset !== undefined && offset < lastOffset) || offset >= nextOffset) return null;
      if (!Number.isSafeInteger(timestampMs)) return null;
      index.columns.push(timestampMs, offset);
    }
    return index;
  }
}
