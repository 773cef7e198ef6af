// Zigzag varints as Kafka's records use them (ByteUtils.writeVarint / writeVarlong): the
// signed value is zigzag-mapped so small magnitudes of either sign take few bytes, then
// written seven bits at a time, least significant group first, high bit = "more follows".
//
// Decoding reads input from the network or the disk, so every failure is a
// DriftwoodError('CORRUPT_MESSAGE'); encoding only sees values this process made, so a bad
// value there is a programmer error and an assertion.
import assert from 'node:assert';
import { DriftwoodError } from './errors.js';

export const VARINT_BYTES_MAX = 5;
export const VARLONG_BYTES_MAX = 10;

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
// Up to this magnitude the zigzag value (at most 2^53) is exact in a double; beyond it the
// encoder falls back to BigInt.
const NUMBER_ZIGZAG_MAGNITUDE_MAX = 2 ** 52;
// Seven groups are 49 bits, exact in a double; longer varlongs are decoded with BigInt.
const VARLONG_FAST_BYTES_MAX = 7;

/**
 * A read position inside `buf` that must not pass `end` (the end of the enclosing record or
 * batch, which may be before the end of the buffer). Decoders advance `pos` in place, so a
 * whole batch decodes without allocating a result object per varint.
 */
export interface ByteCursor {
  readonly buf: Buffer;
  pos: number;
  readonly end: number;
}

export function isInt32(value: number): boolean {
  return Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX;
}

function truncated(kind: string, start: number): DriftwoodError {
  return new DriftwoodError('CORRUPT_MESSAGE', `${kind} at byte ${start} is truncated`);
}

function overlong(kind: string, start: number, bytesMax: number): DriftwoodError {
  return new DriftwoodError('CORRUPT_MESSAGE', `${kind} at byte ${start} is longer than ${bytesMax} bytes`);
}

function overflow(kind: string, start: number, bits: number): DriftwoodError {
  return new DriftwoodError('CORRUPT_MESSAGE', `${kind} at byte ${start} does not fit in ${bits} bits`);
}

/** Reads a zigzag int32 varint at `cursor.pos` and advances the cursor past it. */
export function takeVarint(cursor: ByteCursor): number {
  const { buf, end } = cursor;
  assert(end <= buf.length);
  const start = cursor.pos;
  let pos = start;
  let raw = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    if (pos >= end) throw truncated('varint', start);
    const byte = buf[pos++] as number;
    raw |= (byte & 0x7f) << shift;
    if (byte < 0x80) {
      cursor.pos = pos;
      return (raw >>> 1) ^ -(raw & 1);
    }
  }
  // The fifth byte holds the top four bits; anything more cannot be an int32.
  if (pos >= end) throw truncated('varint', start);
  const last = buf[pos++] as number;
  if (last >= 0x80) throw overlong('varint', start, VARINT_BYTES_MAX);
  if (last > 0x0f) throw overflow('varint', start, 32);
  raw |= last << 28;
  cursor.pos = pos;
  return (raw >>> 1) ^ -(raw & 1);
}

/**
 * Reads a zigzag int64 varlong at `cursor.pos` as a JS number and advances the cursor.
 * Values outside the safe integer range are rejected: a timestamp delta that large is not
 * one any producer writes.
 */
export function takeVarlong(cursor: ByteCursor): number {
  const { buf, end } = cursor;
  assert(end <= buf.length);
  let pos = cursor.pos;
  let raw = 0;
  let scale = 1;
  for (let i = 0; i < VARLONG_FAST_BYTES_MAX; i++) {
    if (pos >= end) throw truncated('varlong', cursor.pos);
    const byte = buf[pos++] as number;
    raw += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      cursor.pos = pos;
      // Odd zigzag values are negative: 1 -> -1, 3 -> -2, ...
      return raw % 2 === 1 ? -(raw + 1) / 2 : raw / 2;
    }
    scale *= 128;
  }
  return takeVarlongBig(cursor);
}

// The rare long form (|value| >= 2^48), decoded from the start with exact arithmetic.
function takeVarlongBig(cursor: ByteCursor): number {
  const { buf, end } = cursor;
  const start = cursor.pos;
  let pos = start;
  let raw = 0n;
  for (let i = 0; i < VARLONG_BYTES_MAX; i++) {
    if (pos >= end) throw truncated('varlong', start);
    const byte = buf[pos++] as number;
    if (i === VARLONG_BYTES_MAX - 1) {
      // The tenth byte holds bit 63 only.
      if (byte >= 0x80) throw overlong('varlong', start, VARLONG_BYTES_MAX);
      if (byte > 0x01) throw overflow('varlong', start, 64);
    }
    raw |= BigInt(byte & 0x7f) << BigInt(7 * i);
    if (byte < 0x80) break;
  }
  const value = (raw >> 1n) ^ -(raw & 1n);
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new DriftwoodError('CORRUPT_MESSAGE', `varlong at byte ${start} is ${value}, outside the safe integer range`);
  }
  cursor.pos = pos;
  return Number(value);
}

/** Reads a zigzag int32 varint at `pos`; throws CORRUPT_MESSAGE if truncated or overlong. */
export function readVarint(buf: Buffer, pos: number): { value: number; next: number } {
  const cursor: ByteCursor = { buf, pos, end: buf.length };
  const value = takeVarint(cursor);
  return { value, next: cursor.pos };
}

/** Reads a zigzag int64 varlong at `pos` (safe integers only). */
export function readVarlong(buf: Buffer, pos: number): { value: number; next: number } {
  const cursor: ByteCursor = { buf, pos, end: buf.length };
  const value = takeVarlong(cursor);
  return { value, next: cursor.pos };
}

function zigzag32(value: number): number {
  return ((value << 1) ^ (value >> 31)) >>> 0;
}

/** Writes `value` (an int32) as a zigzag varint at `pos`; returns the position after it. */
export function writeVarint(buf: Buffer, pos: number, value: number): number {
  assert(isInt32(value), `varint value ${value} is not an int32`);
  assert(pos >= 0);
  let zz = zigzag32(value);
  while (zz >= 0x80) {
    buf[pos++] = (zz & 0x7f) | 0x80;
    zz >>>= 7;
  }
  buf[pos++] = zz;
  // A typed array drops writes past its end silently, so check after the fact.
  assert(pos <= buf.length, 'varint written past the end of the buffer');
  return pos;
}

/** Writes `value` (a safe integer) as a zigzag varlong at `pos`; returns the next position. */
export function writeVarlong(buf: Buffer, pos: number, value: number): number {
  assert(Number.isSafeInteger(value), `varlong value ${value} is not a safe integer`);
  // An int32's zigzag form is the same in 32 and in 64 bits, so the common case is cheap.
  if (isInt32(value)) return writeVarint(buf, pos, value);
  if (Math.abs(value) <= NUMBER_ZIGZAG_MAGNITUDE_MAX) {
    let zz = value >= 0 ? value * 2 : -value * 2 - 1;
    while (zz >= 0x80) {
      buf[pos++] = (zz % 0x80) | 0x80;
      zz = Math.floor(zz / 0x80);
    }
    buf[pos++] = zz;
  } else {
    let zz = zigzag64(value);
    while (zz >= 0x80n) {
      buf[pos++] = Number(zz & 0x7fn) | 0x80;
      zz >>= 7n;
    }
    buf[pos++] = Number(zz);
  }
  assert(pos <= buf.length, 'varlong written past the end of the buffer');
  return pos;
}

function zigzag64(value: number): bigint {
  const big = BigInt(value);
  return BigInt.asUintN(64, (big << 1n) ^ (big >> 63n));
}

/** Bytes `writeVarint` takes for `value`. */
export function varintSize(value: number): number {
  assert(isInt32(value), `varint value ${value} is not an int32`);
  const zz = zigzag32(value);
  if (zz < 0x80) return 1;
  if (zz < 0x4000) return 2;
  if (zz < 0x200000) return 3;
  if (zz < 0x10000000) return 4;
  return 5;
}

/** Bytes `writeVarlong` takes for `value`. */
export function varlongSize(value: number): number {
  assert(Number.isSafeInteger(value), `varlong value ${value} is not a safe integer`);
  if (isInt32(value)) return varintSize(value);
  // Beyond int32 the size grows by one byte per seven bits of the zigzag value.
  let zz = zigzag64(value) >> 7n;
  let size = 1;
  while (zz > 0n) {
    size++;
    zz >>= 7n;
  }
  return size;
}
