// Kafka's RecordBatch v2 (magic 2), byte for byte, so a Kafka wire-protocol listener can
// serve the same bytes later (DESIGN.md, Partition log).
//
// Two audiences with different needs:
// - The broker's hot path (readBatchHeader, validateBatch, splitBatches, set*) reads the
//   fixed 61-byte header and makes one pass over the body: the CRC. Records stay opaque
//   bytes; the broker only stamps baseOffset and partitionLeaderEpoch, which sit outside
//   the CRC.
// - Clients, JSON fetch, timestamp lookups and tests (encodeBatch, decodeBatch, buildBatch)
//   see individual records.
//
// Layout (big-endian): baseOffset int64 @0, batchLength int32 @8 (bytes after it),
// partitionLeaderEpoch int32 @12, magic int8 @16, crc uint32 @17 (CRC-32C of @21..end),
// attributes int16 @21, lastOffsetDelta int32 @23, baseTimestamp int64 @27,
// maxTimestamp int64 @35, producerId int64 @43, producerEpoch int16 @51,
// baseSequence int32 @53, recordCount int32 @57, records @61.
import assert from 'node:assert';
import { crc32c } from './crc32c.js';
import { DriftwoodError } from './errors.js';
import {
  type ByteCursor,
  isInt32,
  takeVarint,
  takeVarlong,
  varintSize,
  varlongSize,
  writeVarint,
  writeVarlong,
} from './varint.js';

export const BATCH_HEADER_BYTES = 61;
/** baseOffset and batchLength: the bytes batchLength does not count. */
export const BATCH_OVERHEAD_BYTES = 12;
/** The smallest legal batchLength: the rest of the header, no records. */
export const BATCH_LENGTH_MIN = BATCH_HEADER_BYTES - BATCH_OVERHEAD_BYTES;
export const MAGIC_V2 = 2;

export const OFFSET_BASE_OFFSET = 0;
export const OFFSET_BATCH_LENGTH = 8;
export const OFFSET_PARTITION_LEADER_EPOCH = 12;
export const OFFSET_MAGIC = 16;
export const OFFSET_CRC = 17;
export const OFFSET_ATTRIBUTES = 21;
export const OFFSET_LAST_OFFSET_DELTA = 23;
export const OFFSET_BASE_TIMESTAMP = 27;
export const OFFSET_MAX_TIMESTAMP = 35;
export const OFFSET_PRODUCER_ID = 43;
export const OFFSET_PRODUCER_EPOCH = 51;
export const OFFSET_BASE_SEQUENCE = 53;
export const OFFSET_RECORD_COUNT = 57;

export const COMPRESSION_CODEC_MASK = 0x07;
export const TIMESTAMP_TYPE_LOG_APPEND_TIME_FLAG = 0x08;
export const TRANSACTIONAL_FLAG = 0x10;
export const CONTROL_FLAG = 0x20;

/** Kafka's "no producer id / epoch / sequence" and "no leader epoch" value. */
export const NO_PRODUCER_ID = -1;
export const NO_PRODUCER_EPOCH = -1;
export const NO_SEQUENCE = -1;
export const NO_PARTITION_LEADER_EPOCH = -1;
/**
 * The most records one produced batch may hold (RECORD_LIST_TOO_LARGE beyond). Bytes alone
 * would allow ~150,000 empty records in a 1 MiB batch; this bounds the per-record work a
 * batch can cost later (JSON fetches decode it, consumers hold it). Producers split batches
 * here too. Batches already in a log (replicated, recovered) are not checked again.
 */
export const RECORDS_PER_BATCH_MAX = 100_000;

// The smallest record: length, attributes, timestampDelta, offsetDelta, key length, value
// length and header count, one byte each. Bounds a claimed record count before decoding.
const RECORD_BYTES_MIN = 7;
const RECORD_BODY_BYTES_MIN = RECORD_BYTES_MIN - 1;
// A header is at least a key length and a value length.
const HEADER_BYTES_MIN = 2;
const CODEC_NAMES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];
const INT16_MIN = -0x8000;
const INT16_MAX = 0x7fff;
const INT8_MIN = -0x80;
const INT8_MAX = 0x7f;
const TWO_TO_32 = 2 ** 32;

export interface BatchHeader {
  baseOffset: number;
  batchLength: number;
  /** The whole batch: batchLength + BATCH_OVERHEAD_BYTES. */
  sizeBytes: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

export interface Header {
  key: string;
  value: Buffer | null;
}

export interface Record {
  offsetDelta: number;
  timestampDelta: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Header[];
  /** Record attributes (int8, unused by Kafka so far); 0 when absent. */
  attributes?: number;
}

export interface BatchFields {
  baseOffset: number;
  partitionLeaderEpoch: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  records: Record[];
}

export interface DecodedBatch {
  header: BatchHeader;
  records: Record[];
}

export interface DecodeOptions {
  /** Check the CRC before decoding (default true), as Kafka consumers do with check.crcs. */
  verifyCrc?: boolean;
}

/** A record as a producer hands it over, before offsets and deltas exist. */
export interface ProducerRecord {
  key?: Buffer | null;
  value: Buffer | null;
  headers?: Header[];
  timestampMs: number;
}

export interface BuildBatchOptions {
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  partitionLeaderEpoch?: number;
  baseOffset?: number;
}

function corrupt(batchPos: number, detail: string): DriftwoodError {
  return new DriftwoodError('CORRUPT_MESSAGE', `batch at byte ${batchPos}: ${detail}`);
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

// Big-endian reads assembled from bytes. Buffer's readInt32BE and friends check their
// arguments on every call, which makes reading a header about four times slower; callers
// here have checked that all 61 header bytes are present, so each index is defined.
function int32At(buf: Buffer, at: number): number {
  return ((buf[at] as number) << 24) | ((buf[at + 1] as number) << 16) | ((buf[at + 2] as number) << 8) | (buf[at + 3] as number);
}

function uint32At(buf: Buffer, at: number): number {
  return int32At(buf, at) >>> 0;
}

function int16At(buf: Buffer, at: number): number {
  return (((buf[at] as number) << 24) | ((buf[at + 1] as number) << 16)) >> 16;
}

function int8At(buf: Buffer, at: number): number {
  return ((buf[at] as number) << 24) >> 24;
}

// Two 32-bit halves instead of readBigInt64BE: no BigInt is allocated, and the result is
// exact whenever it is a safe integer.
function int64At(buf: Buffer, at: number, name: string, batchPos: number): number {
  const value = int32At(buf, at) * TWO_TO_32 + uint32At(buf, at + 4);
  if (!Number.isSafeInteger(value)) {
    throw corrupt(batchPos, `${name} ${buf.readBigInt64BE(at)} is outside the safe integer range`);
  }
  return value;
}

function writeInt64(buf: Buffer, at: number, value: number): void {
  assert(Number.isSafeInteger(value), `int64 value ${value} is not a safe integer`);
  const high = Math.floor(value / TWO_TO_32);
  buf.writeInt32BE(high, at);
  buf.writeUInt32BE(value - high * TWO_TO_32, at + 4);
}

/**
 * Reads the 61-byte header at `pos`. Checks only that the bytes are there and that the
 * int64 fields are safe integers; validateBatch checks the rest.
 */
export function readBatchHeader(buf: Buffer, pos: number): BatchHeader {
  assert(Number.isInteger(pos), 'batch position is not an integer');
  assert(pos >= 0, 'batch position is negative');
  checkHeaderBytes(pos, buf.length - pos);
  const batchLength = int32At(buf, pos + OFFSET_BATCH_LENGTH);
  return {
    baseOffset: int64At(buf, pos + OFFSET_BASE_OFFSET, 'baseOffset', pos),
    batchLength,
    sizeBytes: batchLength + BATCH_OVERHEAD_BYTES,
    partitionLeaderEpoch: int32At(buf, pos + OFFSET_PARTITION_LEADER_EPOCH),
    magic: int8At(buf, pos + OFFSET_MAGIC),
    crc: uint32At(buf, pos + OFFSET_CRC),
    attributes: int16At(buf, pos + OFFSET_ATTRIBUTES),
    lastOffsetDelta: int32At(buf, pos + OFFSET_LAST_OFFSET_DELTA),
    baseTimestamp: int64At(buf, pos + OFFSET_BASE_TIMESTAMP, 'baseTimestamp', pos),
    maxTimestamp: int64At(buf, pos + OFFSET_MAX_TIMESTAMP, 'maxTimestamp', pos),
    producerId: int64At(buf, pos + OFFSET_PRODUCER_ID, 'producerId', pos),
    producerEpoch: int16At(buf, pos + OFFSET_PRODUCER_EPOCH),
    baseSequence: int32At(buf, pos + OFFSET_BASE_SEQUENCE),
    recordCount: int32At(buf, pos + OFFSET_RECORD_COUNT),
  };
}

export function lastOffsetOf(header: BatchHeader): number {
  return header.baseOffset + header.lastOffsetDelta;
}

function checkHeaderBytes(pos: number, available: number): void {
  if (available < BATCH_HEADER_BYTES) {
    throw corrupt(pos, `${Math.max(available, 0)} bytes is too short for a ${BATCH_HEADER_BYTES}-byte batch header`);
  }
}

/** Refuses a produced batch with more records than RECORDS_PER_BATCH_MAX. */
export function checkRecordsPerBatch(header: BatchHeader, pos: number): void {
  if (header.recordCount > RECORDS_PER_BATCH_MAX) {
    throw new DriftwoodError('RECORD_LIST_TOO_LARGE', `batch at byte ${pos}: ${header.recordCount} records is over the limit of ${RECORDS_PER_BATCH_MAX}`);
  }
}

// Reads magic and batchLength straight from the bytes, before the header is parsed, so a
// corrupt batch is reported as a CRC mismatch rather than as whichever field it garbled.
// Magic first: with another magic the rest of the header means something else.
// Returns the batch's size in bytes.
function checkFraming(buf: Buffer, pos: number, available: number): number {
  const magic = int8At(buf, pos + OFFSET_MAGIC);
  if (magic !== MAGIC_V2) {
    throw corrupt(pos, `magic ${magic} is not ${MAGIC_V2} (only RecordBatch v2 is supported)`);
  }
  const batchLength = int32At(buf, pos + OFFSET_BATCH_LENGTH);
  if (batchLength < BATCH_LENGTH_MIN) {
    throw corrupt(pos, `batchLength ${batchLength} is less than the ${BATCH_LENGTH_MIN} header bytes it covers`);
  }
  const sizeBytes = batchLength + BATCH_OVERHEAD_BYTES;
  if (sizeBytes > available) {
    throw corrupt(pos, `batchLength ${batchLength} makes the batch ${sizeBytes} bytes but only ${available} bytes are there`);
  }
  return sizeBytes;
}

function computeCrc(buf: Buffer, pos: number, sizeBytes: number): number {
  return crc32c(buf.subarray(pos + OFFSET_ATTRIBUTES, pos + sizeBytes));
}

function checkCrc(buf: Buffer, pos: number, sizeBytes: number): void {
  const stored = uint32At(buf, pos + OFFSET_CRC);
  const computed = computeCrc(buf, pos, sizeBytes);
  if (computed !== stored) {
    throw corrupt(pos, `CRC-32C ${hex32(computed)} of the batch does not match ${hex32(stored)} in its header`);
  }
}

function checkUncompressed(header: BatchHeader, pos: number): void {
  const codec = header.attributes & COMPRESSION_CODEC_MASK;
  if (codec !== 0) {
    const name = CODEC_NAMES[codec] ?? 'unknown';
    throw corrupt(pos, `compression codec ${codec} (${name}): compression is not supported yet`);
  }
}

// Produced batches: at least one record, offsets dense (uncompressed and not compacted),
// and a record count the body can hold, so a batch cannot reserve offsets it lacks.
function checkRecordCount(header: BatchHeader, pos: number): void {
  const { recordCount, lastOffsetDelta } = header;
  if (recordCount < 1) throw corrupt(pos, `recordCount ${recordCount}: a produced batch holds at least one record`);
  if (lastOffsetDelta < 0) throw corrupt(pos, `lastOffsetDelta ${lastOffsetDelta} is negative`);
  if (lastOffsetDelta !== recordCount - 1) {
    throw corrupt(pos, `lastOffsetDelta ${lastOffsetDelta} does not match recordCount ${recordCount} of an uncompressed batch`);
  }
  const recordsBytes = header.batchLength - BATCH_LENGTH_MIN;
  if (recordCount > recordsBytes / RECORD_BYTES_MIN) {
    throw corrupt(pos, `recordCount ${recordCount} records cannot fit in ${recordsBytes} bytes`);
  }
}

/**
 * Validates the one batch at `pos`, of which `available` bytes are input. The hot path of
 * produce: reads the header and checksums the body, never decodes records.
 * Throws CORRUPT_MESSAGE or MESSAGE_TOO_LARGE.
 */
export function validateBatch(buf: Buffer, pos: number, available: number, messageBytesMax: number): BatchHeader {
  assert(Number.isInteger(pos), 'batch position is not an integer');
  assert(pos >= 0, 'batch position is negative');
  assert(Number.isInteger(available), 'available is not an integer');
  assert(available >= 0, 'available is negative');
  assert(pos + available <= buf.length, 'available runs past the end of the buffer');
  assert(messageBytesMax > 0, 'messageBytesMax must be positive');
  checkHeaderBytes(pos, available);
  const sizeBytes = checkFraming(buf, pos, available);
  // Size before CRC: an oversized batch is refused without reading it.
  if (sizeBytes > messageBytesMax) {
    throw new DriftwoodError('MESSAGE_TOO_LARGE', `batch at byte ${pos}: ${sizeBytes} bytes is over the limit of ${messageBytesMax}`);
  }
  // CRC before parsing and checking fields, so a flipped bit reads as corruption.
  checkCrc(buf, pos, sizeBytes);
  const header = readBatchHeader(buf, pos);
  checkUncompressed(header, pos);
  checkRecordCount(header, pos);
  return header;
}

/**
 * Validates a buffer of whole batches back to back (a produce request body) and returns
 * their headers in order; batch i starts at the sum of the sizeBytes before it.
 */
export function splitBatches(buf: Buffer, messageBytesMax: number): BatchHeader[] {
  if (buf.length === 0) throw new DriftwoodError('CORRUPT_MESSAGE', 'the input holds no record batch');
  const headers: BatchHeader[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const remaining = buf.length - pos;
    if (headers.length > 0 && remaining < BATCH_HEADER_BYTES) {
      throw corrupt(pos, `${remaining} trailing bytes after the last batch are not a batch`);
    }
    const header = validateBatch(buf, pos, remaining, messageBytesMax);
    headers.push(header);
    pos += header.sizeBytes;
  }
  assert.equal(pos, buf.length);
  return headers;
}

// The setters run on batches validated already; a batch that is not there is a bug.
function assertBatchAt(buf: Buffer, pos: number): number {
  assert(pos >= 0, 'batch position is negative');
  assert(buf.length - pos >= BATCH_HEADER_BYTES, 'no batch header at this position');
  assert.equal(buf.readInt8(pos + OFFSET_MAGIC), MAGIC_V2, 'not a v2 batch');
  const sizeBytes = buf.readInt32BE(pos + OFFSET_BATCH_LENGTH) + BATCH_OVERHEAD_BYTES;
  assert(sizeBytes >= BATCH_HEADER_BYTES, 'batchLength is too small');
  assert(pos + sizeBytes <= buf.length, 'batch runs past the buffer');
  return sizeBytes;
}

/** Stamps the offset the log assigns; outside the CRC, so the CRC stays valid. */
export function setBaseOffset(buf: Buffer, pos: number, offset: number): void {
  assertBatchAt(buf, pos);
  assert(offset >= 0, `base offset ${offset} is negative`);
  writeInt64(buf, pos + OFFSET_BASE_OFFSET, offset);
}

/** Stamps the leader's epoch; outside the CRC, so the CRC stays valid. */
export function setPartitionLeaderEpoch(buf: Buffer, pos: number, epoch: number): void {
  assertBatchAt(buf, pos);
  assert(isInt32(epoch), `leader epoch ${epoch} is not an int32`);
  buf.writeInt32BE(epoch, pos + OFFSET_PARTITION_LEADER_EPOCH);
}

/**
 * For message.timestamp.type=LogAppendTime: marks the batch's timestamps as the broker's
 * and sets maxTimestamp to the append time, as Kafka does. Both are inside the CRC, so it
 * is recomputed. Record timestamp deltas are left alone: readers ignore them for such batches.
 */
export function setLogAppendTime(buf: Buffer, pos: number, timestampMs: number): void {
  const sizeBytes = assertBatchAt(buf, pos);
  assert(Number.isSafeInteger(timestampMs), `timestamp ${timestampMs} is not a safe integer`);
  const attributes = buf.readInt16BE(pos + OFFSET_ATTRIBUTES);
  const flagged = attributes | TIMESTAMP_TYPE_LOG_APPEND_TIME_FLAG;
  const maxTimestamp = buf.readBigInt64BE(pos + OFFSET_MAX_TIMESTAMP);
  // Skip the CRC pass when nothing changes, as Kafka's setMaxTimestamp does.
  if (flagged === attributes && maxTimestamp === BigInt(timestampMs)) return;
  buf.writeInt16BE(flagged, pos + OFFSET_ATTRIBUTES);
  writeInt64(buf, pos + OFFSET_MAX_TIMESTAMP, timestampMs);
  buf.writeUInt32BE(computeCrc(buf, pos, sizeBytes), pos + OFFSET_CRC);
}

// ---------------------------------------------------------------------------------------
// Encoding

function assertInt(value: number, min: number, max: number, name: string): void {
  assert(Number.isInteger(value), `${name} ${value} is not an integer`);
  assert(value >= min && value <= max, `${name} ${value} is out of range`);
}

function assertBatchFields(fields: BatchFields): void {
  for (const name of ['baseOffset', 'baseTimestamp', 'maxTimestamp', 'producerId'] as const) {
    assert(Number.isSafeInteger(fields[name]), `${name} ${fields[name]} is not a safe integer`);
  }
  assert(isInt32(fields.partitionLeaderEpoch), 'partitionLeaderEpoch is not an int32');
  assert(isInt32(fields.lastOffsetDelta), 'lastOffsetDelta is not an int32');
  assert(isInt32(fields.baseSequence), 'baseSequence is not an int32');
  assertInt(fields.producerEpoch, INT16_MIN, INT16_MAX, 'producerEpoch');
  assertInt(fields.attributes, INT16_MIN, INT16_MAX, 'attributes');
  // The encoder writes records as they are; compressed bodies are not supported yet.
  assert.equal(fields.attributes & COMPRESSION_CODEC_MASK, 0, 'encodeBatch cannot compress');
}

// Bytes of a nullable byte field: its length varint (-1 for null) and the bytes.
function bytesFieldSize(bytes: Buffer | null): number {
  return bytes === null ? varintSize(-1) : varintSize(bytes.length) + bytes.length;
}

function recordBodySize(record: Record): number {
  assertInt(record.attributes ?? 0, INT8_MIN, INT8_MAX, 'record attributes');
  let size = 1 + varlongSize(record.timestampDelta) + varintSize(record.offsetDelta);
  size += bytesFieldSize(record.key) + bytesFieldSize(record.value);
  size += varintSize(record.headers.length);
  for (const header of record.headers) {
    const keyBytes = Buffer.byteLength(header.key, 'utf8');
    size += varintSize(keyBytes) + keyBytes + bytesFieldSize(header.value);
  }
  return size;
}

function writeBytesField(buf: Buffer, pos: number, bytes: Buffer | null): number {
  if (bytes === null) return writeVarint(buf, pos, -1);
  const next = writeVarint(buf, pos, bytes.length);
  return next + bytes.copy(buf, next);
}

function writeRecord(buf: Buffer, pos: number, record: Record, bodySize: number): number {
  let next = writeVarint(buf, pos, bodySize);
  const bodyStart = next;
  next = buf.writeInt8(record.attributes ?? 0, next);
  next = writeVarlong(buf, next, record.timestampDelta);
  next = writeVarint(buf, next, record.offsetDelta);
  next = writeBytesField(buf, next, record.key);
  next = writeBytesField(buf, next, record.value);
  next = writeVarint(buf, next, record.headers.length);
  for (const header of record.headers) {
    const keyBytes = Buffer.byteLength(header.key, 'utf8');
    next = writeVarint(buf, next, keyBytes);
    next += buf.write(header.key, next, keyBytes, 'utf8');
    next = writeBytesField(buf, next, header.value);
  }
  // Pair check: the body written is exactly the size its length prefix announced.
  assert.equal(next - bodyStart, bodySize, 'record size mismatch');
  return next;
}

function writeHeader(buf: Buffer, fields: BatchFields): void {
  writeInt64(buf, OFFSET_BASE_OFFSET, fields.baseOffset);
  buf.writeInt32BE(buf.length - BATCH_OVERHEAD_BYTES, OFFSET_BATCH_LENGTH);
  buf.writeInt32BE(fields.partitionLeaderEpoch, OFFSET_PARTITION_LEADER_EPOCH);
  buf.writeInt8(MAGIC_V2, OFFSET_MAGIC);
  buf.writeInt16BE(fields.attributes, OFFSET_ATTRIBUTES);
  buf.writeInt32BE(fields.lastOffsetDelta, OFFSET_LAST_OFFSET_DELTA);
  writeInt64(buf, OFFSET_BASE_TIMESTAMP, fields.baseTimestamp);
  writeInt64(buf, OFFSET_MAX_TIMESTAMP, fields.maxTimestamp);
  writeInt64(buf, OFFSET_PRODUCER_ID, fields.producerId);
  buf.writeInt16BE(fields.producerEpoch, OFFSET_PRODUCER_EPOCH);
  buf.writeInt32BE(fields.baseSequence, OFFSET_BASE_SEQUENCE);
  buf.writeInt32BE(fields.records.length, OFFSET_RECORD_COUNT);
}

/**
 * Encodes a batch with exactly these fields and records (uncompressed); batchLength,
 * recordCount and the CRC are computed.
 */
export function encodeBatch(fields: BatchFields): Buffer {
  assertBatchFields(fields);
  const sized = fields.records.map((record) => ({ record, bodySize: recordBodySize(record) }));
  let sizeBytes = BATCH_HEADER_BYTES;
  for (const { bodySize } of sized) sizeBytes += varintSize(bodySize) + bodySize;
  assert(sizeBytes - BATCH_OVERHEAD_BYTES <= 0x7fffffff, 'batch is too large for batchLength');
  const buf = Buffer.allocUnsafe(sizeBytes);
  writeHeader(buf, fields);
  let pos = BATCH_HEADER_BYTES;
  for (const { record, bodySize } of sized) pos = writeRecord(buf, pos, record, bodySize);
  // Every byte of the unsafe allocation is written: the records end exactly at the end.
  assert.equal(pos, sizeBytes, 'batch size mismatch');
  buf.writeUInt32BE(computeCrc(buf, 0, sizeBytes), OFFSET_CRC);
  return buf;
}

/**
 * How a producer makes a batch: offset deltas 0..n-1, base timestamp from the first record,
 * maxTimestamp the largest, and no idempotence (producer id, epoch, sequence -1) by default.
 */
export function buildBatch(records: readonly ProducerRecord[], options: BuildBatchOptions = {}): Buffer {
  const first = records[0];
  assert(first !== undefined, 'a batch holds at least one record');
  const baseTimestamp = first.timestampMs;
  let maxTimestamp = baseTimestamp;
  for (const record of records) maxTimestamp = Math.max(maxTimestamp, record.timestampMs);
  return encodeBatch({
    baseOffset: options.baseOffset ?? 0,
    partitionLeaderEpoch: options.partitionLeaderEpoch ?? NO_PARTITION_LEADER_EPOCH,
    attributes: 0,
    lastOffsetDelta: records.length - 1,
    baseTimestamp,
    maxTimestamp,
    producerId: options.producerId ?? NO_PRODUCER_ID,
    producerEpoch: options.producerEpoch ?? NO_PRODUCER_EPOCH,
    baseSequence: options.baseSequence ?? NO_SEQUENCE,
    records: records.map((record, index) => ({
      offsetDelta: index,
      timestampDelta: record.timestampMs - baseTimestamp,
      key: record.key ?? null,
      value: record.value,
      headers: record.headers ?? [],
    })),
  });
}

// ---------------------------------------------------------------------------------------
// Decoding. Every length comes from the input, so each is checked against the bytes left
// in its record before use; all failures are CORRUPT_MESSAGE, never a RangeError.

function corruptAt(at: number, detail: string): DriftwoodError {
  return new DriftwoodError('CORRUPT_MESSAGE', `${detail} at byte ${at}`);
}

// A nullable byte field; the result is a view into the input buffer, not a copy.
function takeBytes(cursor: ByteCursor, what: string): Buffer | null {
  const at = cursor.pos;
  const length = takeVarint(cursor);
  if (length === -1) return null;
  if (length < -1) throw corruptAt(at, `${what} length ${length} is negative`);
  if (length > cursor.end - cursor.pos) {
    throw corruptAt(at, `${what} length ${length} runs past its record's end`);
  }
  const bytes = cursor.buf.subarray(cursor.pos, cursor.pos + length);
  cursor.pos += length;
  return bytes;
}

function takeHeader(cursor: ByteCursor): Header {
  const at = cursor.pos;
  const keyLength = takeVarint(cursor);
  if (keyLength < 0) throw corruptAt(at, `header key length ${keyLength} is negative`);
  if (keyLength > cursor.end - cursor.pos) {
    throw corruptAt(at, `header key length ${keyLength} runs past its record's end`);
  }
  const key = cursor.buf.toString('utf8', cursor.pos, cursor.pos + keyLength);
  cursor.pos += keyLength;
  return { key, value: takeBytes(cursor, 'header value') };
}

function takeHeaders(cursor: ByteCursor): Header[] {
  const at = cursor.pos;
  const count = takeVarint(cursor);
  if (count < 0) throw corruptAt(at, `header count ${count} is negative`);
  if (count * HEADER_BYTES_MIN > cursor.end - cursor.pos) {
    throw corruptAt(at, `header count ${count} cannot fit in the rest of its record`);
  }
  const headers: Header[] = [];
  for (let i = 0; i < count; i++) headers.push(takeHeader(cursor));
  return headers;
}

function takeRecord(batchCursor: ByteCursor): Record {
  const at = batchCursor.pos;
  const length = takeVarint(batchCursor);
  const start = batchCursor.pos;
  if (length < RECORD_BODY_BYTES_MIN || length > batchCursor.end - start) {
    throw corruptAt(at, `record length ${length} does not fit in the ${batchCursor.end - start} bytes left in the batch`);
  }
  const cursor: ByteCursor = { buf: batchCursor.buf, pos: start, end: start + length };
  const attributes = int8At(cursor.buf, cursor.pos++);
  const timestampDelta = takeVarlong(cursor);
  const offsetDelta = takeVarint(cursor);
  const key = takeBytes(cursor, 'key');
  const value = takeBytes(cursor, 'value');
  const headers = takeHeaders(cursor);
  if (cursor.pos !== cursor.end) {
    throw corruptAt(at, `record length ${length} leaves ${cursor.end - cursor.pos} bytes unread after its fields`);
  }
  batchCursor.pos = cursor.end;
  return { offsetDelta, timestampDelta, key, value, headers, attributes };
}

function takeRecords(cursor: ByteCursor, header: BatchHeader, batchPos: number): Record[] {
  const count = header.recordCount;
  const recordsBytes = cursor.end - cursor.pos;
  if (count < 0 || count * RECORD_BYTES_MIN > recordsBytes) {
    throw corrupt(batchPos, `recordCount ${count} records cannot fit in ${recordsBytes} bytes`);
  }
  const records: Record[] = [];
  for (let i = 0; i < count; i++) records.push(takeRecord(cursor));
  if (cursor.pos !== cursor.end) {
    throw corrupt(batchPos, `${cursor.end - cursor.pos} bytes follow the last of its ${count} records`);
  }
  return records;
}

/**
 * Decodes the batch at `pos` into its header and records, checking the CRC (unless told not
 * to) and every length on the way. Keys, values and header values are views into `buf`.
 * Throws CORRUPT_MESSAGE on any inconsistency.
 */
export function decodeBatch(buf: Buffer, pos = 0, options: DecodeOptions = {}): DecodedBatch {
  assert(Number.isInteger(pos), 'batch position is not an integer');
  assert(pos >= 0, 'batch position is negative');
  checkHeaderBytes(pos, buf.length - pos);
  const sizeBytes = checkFraming(buf, pos, buf.length - pos);
  if (options.verifyCrc ?? true) checkCrc(buf, pos, sizeBytes);
  const header = readBatchHeader(buf, pos);
  checkUncompressed(header, pos);
  const cursor: ByteCursor = { buf, pos: pos + BATCH_HEADER_BYTES, end: pos + header.sizeBytes };
  const records = takeRecords(cursor, header, pos);
  return { header, records };
}
