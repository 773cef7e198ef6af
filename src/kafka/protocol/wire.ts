// Byte-level reading and writing of Kafka's primitive encodings. The Reader checks every
// length against the bytes that remain and against named limits BEFORE it allocates or
// slices, so hostile input ends in a DriftwoodError, never a RangeError or a huge allocation.
import assert from 'node:assert/strict';
import { DriftwoodError } from '../../../storage/errors.js';

export interface DecodeLimits {
  /** Items in one decoded array. */
  readonly arrayItemsMax: number;
  /** UTF-8 bytes in one string. */
  readonly stringBytesMax: number;
  /** Bytes in one bytes or records field (a produce batch rides here). */
  readonly bytesBytesMax: number;
  /** Entries in one tagged-field section. */
  readonly taggedFieldsMax: number;
}

export const defaultDecodeLimits: DecodeLimits = {
  arrayItemsMax: 100_000,
  stringBytesMax: 32_767,
  bytesBytesMax: 64 * 1024 * 1024,
  taggedFieldsMax: 64,
};

// A varint longer than this cannot hold 32 bits; more continuation bytes are garbage.
const UVARINT32_BYTES_MAX = 5;

export class Reader {
  private offset: number;
  /** Field names from the message root to the field being read, for error messages. */
  readonly path: string[] = [];

  constructor(
    private readonly buf: Buffer,
    readonly limits: DecodeLimits,
    start = 0,
    private readonly end = buf.length,
  ) {
    assert.ok(start >= 0 && start <= end);
    assert.ok(end <= buf.length);
    this.offset = start;
  }

  remaining(): number {
    return this.end - this.offset;
  }

  fail(detail: string): DriftwoodError {
    const at = this.path.length === 0 ? 'message' : this.path.join('.');
    return new DriftwoodError('INVALID_REQUEST', `${at}: ${detail}`, { path: at });
  }

  private take(bytes: number): number {
    if (bytes > this.remaining()) throw this.fail(`needs ${bytes} bytes, ${this.remaining()} left`);
    const at = this.offset;
    this.offset += bytes;
    return at;
  }

  int8(): number { return this.buf.readInt8(this.take(1)); }
  int16(): number { return this.buf.readInt16BE(this.take(2)); }
  uint16(): number { return this.buf.readUInt16BE(this.take(2)); }
  int32(): number { return this.buf.readInt32BE(this.take(4)); }
  int64(): bigint { return this.buf.readBigInt64BE(this.take(8)); }
  float64(): number { return this.buf.readDoubleBE(this.take(8)); }

  bool(): boolean {
    const byte = this.buf.readUInt8(this.take(1));
    if (byte > 1) throw this.fail(`boolean byte ${byte}`);
    return byte === 1;
  }

  uvarint32(): number {
    let value = 0;
    for (let i = 0; i < UVARINT32_BYTES_MAX; i++) {
      const byte = this.buf.readUInt8(this.take(1));
      value += (byte & 0x7f) * 2 ** (7 * i);
      if ((byte & 0x80) === 0) {
        if (value > 0xffffffff) throw this.fail('unsigned varint beyond 32 bits');
        return value;
      }
    }
    throw this.fail('unsigned varint longer than 5 bytes');
  }

  /** A slice of the input (no copy): bytes, records and tagged-field bodies. */
  slice(bytes: number): Buffer {
    const at = this.take(bytes);
    return this.buf.subarray(at, at + bytes);
  }

  utf8(bytes: number): string {
    const at = this.take(bytes);
    return this.buf.toString('utf8', at, at + bytes);
  }

  /** A Reader over the next `bytes` bytes (a tagged field's body); this one skips them. */
  sub(bytes: number): Reader {
    const at = this.take(bytes);
    const reader = new Reader(this.buf, this.limits, at, at + bytes);
    reader.path.push(...this.path);
    return reader;
  }
}

// Blobs at least this big (record batches) are kept as their own chunk instead of copied.
const CHUNK_BYTES_MIN = 4096;
const FIRST_BUFFER_BYTES = 256;

export class Writer {
  private readonly chunks: Buffer[] = [];
  private buf = Buffer.allocUnsafe(FIRST_BUFFER_BYTES);
  private start = 0;
  private offset = 0;
  private total = 0;

  private ensure(bytes: number): void {
    if (this.offset + bytes <= this.buf.length) return;
    this.flush();
    this.buf = Buffer.allocUnsafe(Math.max(this.buf.length * 2, bytes));
    this.start = 0;
    this.offset = 0;
  }

  private flush(): void {
    if (this.offset > this.start) this.chunks.push(this.buf.subarray(this.start, this.offset));
    this.start = this.offset;
  }

  private advance(bytes: number): number {
    this.ensure(bytes);
    const at = this.offset;
    this.offset += bytes;
    this.total += bytes;
    return at;
  }

  get length(): number { return this.total; }

  int8(v: number): void { const at = this.advance(1); this.buf.writeInt8(v, at); }
  int16(v: number): void { const at = this.advance(2); this.buf.writeInt16BE(v, at); }
  uint16(v: number): void { const at = this.advance(2); this.buf.writeUInt16BE(v, at); }
  int32(v: number): void { const at = this.advance(4); this.buf.writeInt32BE(v, at); }
  int64(v: bigint): void { const at = this.advance(8); this.buf.writeBigInt64BE(v, at); }
  float64(v: number): void { const at = this.advance(8); this.buf.writeDoubleBE(v, at); }
  bool(v: boolean): void { const at = this.advance(1); this.buf.writeUInt8(v ? 1 : 0, at); }

  uvarint32(v: number): void {
    assert.ok(Number.isInteger(v) && v >= 0 && v <= 0xffffffff, `uvarint ${v}`);
    let rest = v;
    while (rest >= 0x80) {
      const at = this.advance(1);
      this.buf.writeUInt8((rest % 0x80) | 0x80, at);
      rest = Math.floor(rest / 0x80);
    }
    const at = this.advance(1);
    this.buf.writeUInt8(rest, at);
  }

  utf8(s: string, bytes: number): void {
    // Take the offset first: advance() may move to a new buffer.
    const at = this.advance(bytes);
    const written = this.buf.write(s, at, bytes, 'utf8');
    assert.equal(written, bytes);
  }

  raw(bytes: Buffer): void {
    if (bytes.length < CHUNK_BYTES_MIN) {
      const at = this.advance(bytes.length);
      bytes.copy(this.buf, at);
      return;
    }
    this.flush();
    this.chunks.push(bytes);
    this.total += bytes.length;
  }

  /** The encoded bytes as chunks, big blobs uncopied (for a writev). */
  finishChunks(): Buffer[] {
    this.flush();
    return this.chunks;
  }

  finish(): Buffer {
    const chunks = this.finishChunks();
    const out = chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, this.total);
    assert.equal(out.length, this.total);
    return out;
  }
}
