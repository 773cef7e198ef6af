import t from 'tap';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { crc32c } from '../../storage/crc32c.js';
import { DriftwoodError } from '../../storage/errors.js';
import {
  BATCH_HEADER_BYTES,
  BATCH_OVERHEAD_BYTES,
  MAGIC_V2,
  OFFSET_ATTRIBUTES,
  OFFSET_BATCH_LENGTH,
  OFFSET_CRC,
  OFFSET_LAST_OFFSET_DELTA,
  OFFSET_MAGIC,
  OFFSET_MAX_TIMESTAMP,
  OFFSET_RECORD_COUNT,
  TIMESTAMP_TYPE_LOG_APPEND_TIME_FLAG,
  buildBatch,
  decodeBatch,
  encodeBatch,
  lastOffsetOf,
  readBatchHeader,
  setBaseOffset,
  setLogAppendTime,
  setPartitionLeaderEpoch,
  splitBatches,
  validateBatch,
  type BatchFields,
  type BatchHeader,
  type Header,
  type Record as BatchRecord,
} from '../../storage/record-batch.js';

// ---------------------------------------------------------------------------------------
// The independent vectors, as they are (shared/vectors/README.md).

interface VectorHeader {
  key: string;
  valueHex: string | null;
}
interface VectorRecord {
  offsetDelta: number;
  timestampDelta: number;
  keyHex: string | null;
  valueHex: string | null;
  headers: VectorHeader[];
}
interface VectorBatch {
  baseOffset: number;
  partitionLeaderEpoch: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  transactional: boolean;
  lastOffsetDelta: number;
  attributes: number;
  recordCount: number;
  records: VectorRecord[];
  hex: string;
}

const vectorUrl = new URL('../../../shared/vectors/kafka-record-batches-and-murmur2.json', import.meta.url);
const vectors = (JSON.parse(readFileSync(vectorUrl, 'utf8')) as { batches: VectorBatch[] }).batches;
const MESSAGE_BYTES_MAX = 1024 * 1024;

const corrupt = { code: 'CORRUPT_MESSAGE', constructor: DriftwoodError };

function fromHex(hex: string | null): Buffer | null {
  return hex === null ? null : Buffer.from(hex, 'hex');
}

function toHex(bytes: Buffer | null): string | null {
  return bytes === null ? null : bytes.toString('hex');
}

function vectorFields(vector: VectorBatch): BatchFields {
  return {
    baseOffset: vector.baseOffset,
    partitionLeaderEpoch: vector.partitionLeaderEpoch,
    attributes: vector.attributes,
    lastOffsetDelta: vector.lastOffsetDelta,
    baseTimestamp: vector.baseTimestamp,
    maxTimestamp: vector.maxTimestamp,
    producerId: vector.producerId,
    producerEpoch: vector.producerEpoch,
    baseSequence: vector.baseSequence,
    records: vector.records.map((record) => ({
      offsetDelta: record.offsetDelta,
      timestampDelta: record.timestampDelta,
      key: fromHex(record.keyHex),
      value: fromHex(record.valueHex),
      headers: record.headers.map((header) => ({ key: header.key, value: fromHex(header.valueHex) })),
    })),
  };
}

// Decoded records in the vectors' form, so a mismatch shows readable hex.
function asVectorRecord(record: BatchRecord): VectorRecord {
  return {
    offsetDelta: record.offsetDelta,
    timestampDelta: record.timestampDelta,
    keyHex: toHex(record.key),
    valueHex: toHex(record.value),
    headers: record.headers.map((header: Header) => ({ key: header.key, valueHex: toHex(header.value) })),
  };
}

function vectorBytes(vector: VectorBatch): Buffer {
  return Buffer.from(vector.hex, 'hex');
}

function expectedHeader(vector: VectorBatch): BatchHeader {
  const bytes = vectorBytes(vector);
  return {
    baseOffset: vector.baseOffset,
    batchLength: bytes.length - BATCH_OVERHEAD_BYTES,
    sizeBytes: bytes.length,
    partitionLeaderEpoch: vector.partitionLeaderEpoch,
    magic: MAGIC_V2,
    crc: bytes.readUInt32BE(OFFSET_CRC),
    attributes: vector.attributes,
    lastOffsetDelta: vector.lastOffsetDelta,
    baseTimestamp: vector.baseTimestamp,
    maxTimestamp: vector.maxTimestamp,
    producerId: vector.producerId,
    producerEpoch: vector.producerEpoch,
    baseSequence: vector.baseSequence,
    recordCount: vector.recordCount,
  };
}

// Rewrites the CRC after a test changes bytes it covers, to reach the checks behind it.
function fixCrc(buf: Buffer): Buffer {
  buf.writeUInt32BE(crc32c(buf.subarray(OFFSET_ATTRIBUTES)), OFFSET_CRC);
  return buf;
}

function smallBatch(): Buffer {
  return buildBatch([
    { key: Buffer.from('k1'), value: Buffer.from('v1'), timestampMs: 1_700_000_000_000 },
    { value: null, headers: [{ key: 'h', value: Buffer.from('x') }], timestampMs: 1_700_000_000_005 },
  ]);
}

// Only DriftwoodError may escape decodeBatch on bad input; anything else fails the property.
function decodesOrCorrupt(buf: Buffer, verifyCrc = true): boolean {
  try {
    decodeBatch(buf, 0, { verifyCrc });
    return true;
  } catch (error) {
    if (error instanceof DriftwoodError && error.code === 'CORRUPT_MESSAGE') return false;
    throw error;
  }
}

// ---------------------------------------------------------------------------------------

void t.test('CRC-32C check value and chaining', (t) => {
  t.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  t.equal(crc32c(Buffer.from('56789'), crc32c(Buffer.from('1234'))), 0xe3069283);
  t.equal(crc32c(new Uint8Array(0)), 0);
  t.ok(crc32c(Buffer.from('a')) > 0x7fffffff, 'unsigned even with the top bit set');
  t.end();
});

void t.test('the vectors are what the README says', (t) => {
  t.equal(vectors.length, 30);
  for (const vector of vectors) {
    t.equal(vector.records.length, vector.recordCount);
  }
  t.end();
});

void t.test('every vector batch decodes to exactly its fields and records', (t) => {
  for (const [index, vector] of vectors.entries()) {
    const { header, records } = decodeBatch(vectorBytes(vector));
    t.strictSame(header, expectedHeader(vector), `batch ${index} header`);
    t.strictSame(records.map(asVectorRecord), vector.records, `batch ${index} records`);
    t.ok(records.every((record) => record.attributes === 0), `batch ${index} record attributes`);
    t.equal((header.attributes & 0x10) !== 0, vector.transactional, `batch ${index} transactional`);
    t.equal(lastOffsetOf(header), vector.baseOffset + vector.recordCount - 1, `batch ${index} last offset`);
  }
  t.end();
});

void t.test('encodeBatch of every vector batch gives exactly its bytes', (t) => {
  for (const [index, vector] of vectors.entries()) {
    t.equal(encodeBatch(vectorFields(vector)).toString('hex'), vector.hex, `batch ${index}`);
  }
  t.end();
});

void t.test('readBatchHeader and validateBatch accept every vector batch', (t) => {
  for (const [index, vector] of vectors.entries()) {
    const bytes = vectorBytes(vector);
    t.strictSame(readBatchHeader(bytes, 0), expectedHeader(vector), `batch ${index} header`);
    t.strictSame(validateBatch(bytes, 0, bytes.length, MESSAGE_BYTES_MAX), expectedHeader(vector), `batch ${index}`);
  }
  t.end();
});

void t.test('splitBatches of all 30 vector batches back to back', (t) => {
  const all = Buffer.concat(vectors.map(vectorBytes));
  const headers = splitBatches(all, MESSAGE_BYTES_MAX);
  t.strictSame(headers, vectors.map(expectedHeader));
  // Positions are the running sum of sizes; each batch also validates and decodes in place.
  let pos = 0;
  for (const [index, header] of headers.entries()) {
    const vector = vectors[index]!;
    t.strictSame(validateBatch(all, pos, all.length - pos, MESSAGE_BYTES_MAX), header);
    t.strictSame(decodeBatch(all, pos).records.map(asVectorRecord), vector.records);
    pos += header.sizeBytes;
  }
  t.equal(pos, all.length);
  t.end();
});

void t.test('validateBatch rejects a bit flip anywhere in the CRC and the bytes it covers', (t) => {
  const original = vectorBytes(vectors[3]!);
  let rejected = 0;
  for (let bit = OFFSET_CRC * 8; bit < original.length * 8; bit++) {
    const bytes = Buffer.from(original);
    bytes[bit >> 3]! ^= 1 << (bit & 7);
    try {
      validateBatch(bytes, 0, bytes.length, MESSAGE_BYTES_MAX);
    } catch (error) {
      if (error instanceof DriftwoodError && error.code === 'CORRUPT_MESSAGE' && /CRC-32C/.test(error.message)) {
        rejected++;
      }
    }
  }
  t.equal(rejected, (original.length - OFFSET_CRC) * 8, 'every flip is a CRC mismatch');
  const bytes = Buffer.from(original);
  bytes[100]! ^= 0x10;
  t.throws(() => validateBatch(bytes, 0, bytes.length, MESSAGE_BYTES_MAX), {
    ...corrupt,
    message: /batch at byte 0: CRC-32C 0x[0-9a-f]{8} .*does not match 0x[0-9a-f]{8}/,
  });
  t.throws(() => decodeBatch(bytes), { ...corrupt, message: /CRC-32C/ });
  t.end();
});

void t.test('validateBatch rejects bit flips in any vector batch (property)', (t) => {
  fc.assert(
    fc.property(fc.nat({ max: vectors.length - 1 }), fc.nat(), (index, seed) => {
      const bytes = vectorBytes(vectors[index]!);
      const bit = OFFSET_CRC * 8 + (seed % ((bytes.length - OFFSET_CRC) * 8));
      bytes[bit >> 3]! ^= 1 << (bit & 7);
      try {
        validateBatch(bytes, 0, bytes.length, MESSAGE_BYTES_MAX);
        return false;
      } catch (error) {
        return error instanceof DriftwoodError && error.code === 'CORRUPT_MESSAGE';
      }
    }),
    { numRuns: 500 },
  );
  t.pass('property held');
  t.end();
});

void t.test('validateBatch rejects malformed framing', (t) => {
  const good = smallBatch();
  const check = (bytes: Buffer, message: RegExp, available = bytes.length): void => {
    t.throws(() => validateBatch(bytes, 0, available, MESSAGE_BYTES_MAX), { ...corrupt, message }, message.source);
  };

  const badMagic = Buffer.from(good);
  badMagic.writeInt8(1, OFFSET_MAGIC);
  check(badMagic, /magic 1 is not 2/);
  t.throws(() => decodeBatch(badMagic), { ...corrupt, message: /magic/ });

  const overrun = Buffer.from(good);
  overrun.writeInt32BE(good.length - BATCH_OVERHEAD_BYTES + 1, OFFSET_BATCH_LENGTH);
  check(overrun, /only \d+ bytes are there/);
  check(good, /only \d+ bytes are there/, good.length - 1);
  t.throws(() => decodeBatch(overrun), corrupt);

  for (const length of [48, 0, -12, -1, -0x80000000]) {
    const tooSmall = Buffer.from(good);
    tooSmall.writeInt32BE(length, OFFSET_BATCH_LENGTH);
    check(tooSmall, /is less than the 49 header bytes/);
    t.throws(() => decodeBatch(tooSmall), corrupt);
  }

  for (const length of [0, 1, 12, 60]) {
    check(good.subarray(0, length), /too short for a 61-byte batch header/);
    t.throws(() => readBatchHeader(good.subarray(0, length), 0), corrupt);
    t.throws(() => decodeBatch(good.subarray(0, length)), corrupt);
  }
  t.throws(() => readBatchHeader(good, good.length - 10), corrupt);
  t.throws(() => readBatchHeader(good, good.length + 10), corrupt);
  t.end();
});

void t.test('validateBatch enforces messageBytesMax before reading the body', (t) => {
  const good = smallBatch();
  t.strictSame(validateBatch(good, 0, good.length, good.length).sizeBytes, good.length);
  t.throws(() => validateBatch(good, 0, good.length, good.length - 1), {
    code: 'MESSAGE_TOO_LARGE',
    message: new RegExp(`${good.length} bytes is over the limit of ${good.length - 1}`),
  });
  // A bad CRC is not even looked at when the batch is too large.
  const badCrc = Buffer.from(good);
  badCrc[good.length - 1]! ^= 1;
  t.throws(() => validateBatch(badCrc, 0, good.length, 70), { code: 'MESSAGE_TOO_LARGE' });
  t.throws(() => splitBatches(Buffer.concat([good, good]), good.length - 1), { code: 'MESSAGE_TOO_LARGE' });
  t.end();
});

void t.test('validateBatch rejects compression, empty batches and offset gaps', (t) => {
  const good = smallBatch();
  for (const codec of [1, 2, 3, 4, 5, 7]) {
    const compressed = Buffer.from(good);
    compressed.writeInt16BE(codec, OFFSET_ATTRIBUTES);
    fixCrc(compressed);
    t.throws(() => validateBatch(compressed, 0, compressed.length, MESSAGE_BYTES_MAX), {
      ...corrupt,
      message: new RegExp(`codec ${codec} .*compression is not supported yet`),
    });
    t.throws(() => decodeBatch(compressed), { ...corrupt, message: /compression is not supported yet/ });
  }

  const empty = fixCrc(Buffer.from(good).fill(0, BATCH_HEADER_BYTES));
  empty.writeInt32BE(0, OFFSET_RECORD_COUNT);
  empty.writeInt32BE(-1, OFFSET_LAST_OFFSET_DELTA);
  fixCrc(empty);
  t.throws(() => validateBatch(empty, 0, empty.length, MESSAGE_BYTES_MAX), { ...corrupt, message: /recordCount 0/ });

  const gap = Buffer.from(good);
  gap.writeInt32BE(5, OFFSET_LAST_OFFSET_DELTA);
  fixCrc(gap);
  t.throws(() => validateBatch(gap, 0, gap.length, MESSAGE_BYTES_MAX), { ...corrupt, message: /lastOffsetDelta 5/ });

  const negative = Buffer.from(good);
  negative.writeInt32BE(-3, OFFSET_LAST_OFFSET_DELTA);
  fixCrc(negative);
  t.throws(() => validateBatch(negative, 0, negative.length, MESSAGE_BYTES_MAX), { ...corrupt, message: /negative/ });

  // A count the body cannot hold would reserve offsets the batch does not have.
  const inflated = Buffer.from(good);
  inflated.writeInt32BE(1000, OFFSET_RECORD_COUNT);
  inflated.writeInt32BE(999, OFFSET_LAST_OFFSET_DELTA);
  fixCrc(inflated);
  t.throws(() => validateBatch(inflated, 0, inflated.length, MESSAGE_BYTES_MAX), { ...corrupt, message: /cannot fit/ });
  t.end();
});

void t.test('validateBatch allows the transactional and control bits', (t) => {
  const flagged = Buffer.from(smallBatch());
  flagged.writeInt16BE(0x30, OFFSET_ATTRIBUTES);
  fixCrc(flagged);
  t.equal(validateBatch(flagged, 0, flagged.length, MESSAGE_BYTES_MAX).attributes, 0x30);
  t.equal(decodeBatch(flagged).records.length, 2);
  t.end();
});

void t.test('splitBatches rejects empty input and trailing garbage', (t) => {
  const good = smallBatch();
  t.throws(() => splitBatches(Buffer.alloc(0), MESSAGE_BYTES_MAX), { ...corrupt, message: /no record batch/ });
  t.throws(() => splitBatches(Buffer.concat([good, Buffer.from([0])]), MESSAGE_BYTES_MAX), {
    ...corrupt,
    message: new RegExp(`batch at byte ${good.length}: 1 trailing bytes`),
  });
  t.throws(() => splitBatches(Buffer.concat([good, Buffer.alloc(100, 0xab)]), MESSAGE_BYTES_MAX), corrupt);
  // A truncated second batch.
  t.throws(() => splitBatches(Buffer.concat([good, good.subarray(0, good.length - 1)]), MESSAGE_BYTES_MAX), corrupt);
  t.throws(() => splitBatches(good.subarray(0, 30), MESSAGE_BYTES_MAX), { ...corrupt, message: /too short/ });
  t.equal(splitBatches(Buffer.concat([good, good, good]), MESSAGE_BYTES_MAX).length, 3);
  t.end();
});

void t.test('setBaseOffset and setPartitionLeaderEpoch keep the batch valid', (t) => {
  for (const [index, vector] of vectors.entries()) {
    const bytes = vectorBytes(vector);
    const offset = 2 ** 40 + index;
    setBaseOffset(bytes, 0, offset);
    setPartitionLeaderEpoch(bytes, 0, 7 + index);
    const header = validateBatch(bytes, 0, bytes.length, MESSAGE_BYTES_MAX);
    t.equal(header.baseOffset, offset);
    t.equal(header.partitionLeaderEpoch, 7 + index);
    t.equal(lastOffsetOf(header), offset + vector.lastOffsetDelta);
    t.equal(header.crc, expectedHeader(vector).crc, 'the CRC does not cover them');
  }
  const bytes = smallBatch();
  setBaseOffset(bytes, 0, Number.MAX_SAFE_INTEGER);
  t.equal(readBatchHeader(bytes, 0).baseOffset, Number.MAX_SAFE_INTEGER);
  t.throws(() => { setBaseOffset(bytes, 0, -1); }, { code: 'ERR_ASSERTION' });
  t.throws(() => { setPartitionLeaderEpoch(bytes, 0, 2 ** 31); }, { code: 'ERR_ASSERTION' });
  t.end();
});

void t.test('setBaseOffset works on a batch in the middle of a buffer', (t) => {
  const one = smallBatch();
  const all = Buffer.concat([one, one, one]);
  setBaseOffset(all, one.length, 1234);
  const headers = splitBatches(all, MESSAGE_BYTES_MAX);
  t.strictSame(headers.map((header) => header.baseOffset), [0, 1234, 0]);
  t.end();
});

void t.test('setLogAppendTime sets the flag and maxTimestamp and keeps the CRC valid', (t) => {
  for (const [index, vector] of vectors.entries()) {
    const bytes = vectorBytes(vector);
    const appendTime = 1_800_000_000_000 + index;
    setLogAppendTime(bytes, 0, appendTime);
    const header = validateBatch(bytes, 0, bytes.length, MESSAGE_BYTES_MAX);
    t.equal(header.attributes & TIMESTAMP_TYPE_LOG_APPEND_TIME_FLAG, TIMESTAMP_TYPE_LOG_APPEND_TIME_FLAG);
    t.equal(header.maxTimestamp, appendTime);
    t.equal(header.baseTimestamp, vector.baseTimestamp);
    t.equal(bytes.readBigInt64BE(OFFSET_MAX_TIMESTAMP), BigInt(appendTime));
    t.strictSame(decodeBatch(bytes).records.map(asVectorRecord), vector.records);
  }
  // Setting it again to the same time changes nothing.
  const bytes = smallBatch();
  setLogAppendTime(bytes, 0, 5);
  const once = Buffer.from(bytes);
  setLogAppendTime(bytes, 0, 5);
  t.ok(bytes.equals(once));
  t.end();
});

void t.test('int64 header fields outside the safe integers are CORRUPT_MESSAGE', (t) => {
  const bytes = smallBatch();
  bytes.writeBigInt64BE(2n ** 53n, 0);
  t.throws(() => readBatchHeader(bytes, 0), { ...corrupt, message: /baseOffset 9007199254740992/ });
  bytes.writeBigInt64BE(-(2n ** 53n), 0);
  t.throws(() => readBatchHeader(bytes, 0), corrupt);
  bytes.writeBigInt64BE(-(2n ** 53n) + 1n, 0);
  t.equal(readBatchHeader(bytes, 0).baseOffset, Number.MIN_SAFE_INTEGER);
  bytes.writeBigInt64BE(-1n, 0);
  t.equal(readBatchHeader(bytes, 0).baseOffset, -1);
  t.end();
});

void t.test('buildBatch makes a batch the way a producer does', (t) => {
  const bytes = buildBatch([
    { key: Buffer.from('a'), value: Buffer.from('one'), timestampMs: 1000 },
    { value: Buffer.from('two'), timestampMs: 1500, headers: [{ key: 'trace', value: null }] },
    { key: null, value: null, timestampMs: 900 },
  ]);
  const { header, records } = decodeBatch(bytes);
  t.match(header, {
    baseOffset: 0,
    partitionLeaderEpoch: -1,
    attributes: 0,
    lastOffsetDelta: 2,
    baseTimestamp: 1000,
    maxTimestamp: 1500,
    producerId: -1,
    producerEpoch: -1,
    baseSequence: -1,
    recordCount: 3,
  });
  t.strictSame(records.map(asVectorRecord), [
    { offsetDelta: 0, timestampDelta: 0, keyHex: '61', valueHex: '6f6e65', headers: [] },
    { offsetDelta: 1, timestampDelta: 500, keyHex: null, valueHex: '74776f', headers: [{ key: 'trace', valueHex: null }] },
    { offsetDelta: 2, timestampDelta: -100, keyHex: null, valueHex: null, headers: [] },
  ]);
  const idempotent = buildBatch([{ value: Buffer.alloc(0), timestampMs: 1 }], {
    producerId: 42,
    producerEpoch: 3,
    baseSequence: 17,
    partitionLeaderEpoch: 9,
    baseOffset: 100,
  });
  t.match(validateBatch(idempotent, 0, idempotent.length, MESSAGE_BYTES_MAX), {
    producerId: 42,
    producerEpoch: 3,
    baseSequence: 17,
    partitionLeaderEpoch: 9,
    baseOffset: 100,
  });
  t.equal(decodeBatch(idempotent).records[0]!.value!.length, 0, 'an empty value is not null');
  t.throws(() => buildBatch([]), { code: 'ERR_ASSERTION' });
  t.end();
});

// ---------------------------------------------------------------------------------------
// Hand-made bodies for the structural checks of decodeBatch.

function rawBatch(body: Buffer, recordCount: number): Buffer {
  const bytes = Buffer.concat([encodeBatch({ ...vectorFields(vectors[0]!), records: [] }), body]);
  bytes.writeInt32BE(bytes.length - BATCH_OVERHEAD_BYTES, OFFSET_BATCH_LENGTH);
  bytes.writeInt32BE(recordCount, OFFSET_RECORD_COUNT);
  bytes.writeInt32BE(recordCount - 1, OFFSET_LAST_OFFSET_DELTA);
  return fixCrc(bytes);
}

void t.test('decodeBatch checks every length inside the records', (t) => {
  // A record: length 7 (zigzag 0e), attributes 00, timestampDelta 00, offsetDelta 00,
  // key null (01), value of 1 byte (02) "x" (78), no headers (00).
  const record = '0e' + '000000' + '01' + '02' + '78' + '00';
  t.strictSame(decodeBatch(rawBatch(Buffer.from(record, 'hex'), 1)).records.map(asVectorRecord), [
    { offsetDelta: 0, timestampDelta: 0, keyHex: null, valueHex: '78', headers: [] },
  ]);
  const cases: Array<[string, number, RegExp]> = [
    ['0e' + '000000' + '01' + '02' + '78', 1, /record length 7 does not fit in the 6 bytes/],
    ['10' + '000000' + '01' + '02' + '78' + '00' + '00', 1, /record length 8 leaves 1 bytes unread/],
    ['0c' + '000000' + '01' + '02' + '78' + '00', 1, /truncated/], // header count outside the record
    ['0e' + '000000' + '14' + '02' + '78' + '00', 1, /key length 10 runs past/],
    ['0e' + '000000' + '03' + '02' + '78' + '00', 1, /key length -2 is negative/],
    ['0e' + '000000' + '01' + '0a' + '78' + '00', 1, /value length 5 runs past/],
    ['0e' + '000000' + '01' + '02' + '78' + '02', 1, /header count 1 cannot fit/],
    ['0e' + '000000' + '01' + '02' + '78' + '01', 1, /header count -1 is negative/],
    ['12' + '000000' + '01' + '02' + '78' + '02' + '03' + '00', 1, /header key length -2 is negative/],
    ['12' + '000000' + '01' + '02' + '78' + '02' + '06' + '00', 1, /header key length 3 runs past/],
    ['14' + '000000' + '01' + '02' + '78' + '02' + '00' + '06' + '00', 1, /header value length 3 runs past/],
    [record, 2, /recordCount 2 records cannot fit in 8 bytes/],
    [record + '00000000000000', 1, /7 bytes follow the last of its 1 records/],
    [record + record, -1, /recordCount -1/],
    // timestampDelta = Long.MIN_VALUE, a valid int64 but not a safe integer.
    ['20' + '00' + 'ffffffffffffffffff01' + '00' + '01' + '02' + '78' + '00', 1, /safe integer/],
    ['20' + '00' + '80808080808080808080' + '00' + '01' + '02' + '78' + '00', 1, /longer than 10 bytes/],
    // The offsetDelta varint stops at the record's end, not at the batch's.
    ['0c' + '0000' + '80808080' + '00', 1, /varint at byte 64 is truncated/],
    ['ffffffff0f' + '0000', 1, /record length -2147483648 does not fit/],
    ['feffffff0f' + '0000', 1, /record length 2147483647 does not fit/],
    ['01', 1, /cannot fit/],
  ];
  for (const [hex, count, message] of cases) {
    const bytes = rawBatch(Buffer.from(hex, 'hex'), count);
    t.throws(() => decodeBatch(bytes), { ...corrupt, message }, `${hex} (${count} records)`);
  }
  t.end();
});

void t.test('decodeBatch reads header keys as UTF-8 and tells empty from null', (t) => {
  const fields: BatchFields = {
    ...vectorFields(vectors[0]!),
    lastOffsetDelta: 0,
    records: [
      {
        offsetDelta: 0,
        timestampDelta: 0,
        key: Buffer.alloc(0),
        value: null,
        headers: [
          { key: 'ключ 🔑', value: Buffer.alloc(0) },
          { key: '', value: null },
        ],
      },
    ],
  };
  const { records } = decodeBatch(encodeBatch(fields));
  t.strictSame(records.map(asVectorRecord), [
    {
      offsetDelta: 0,
      timestampDelta: 0,
      keyHex: '',
      valueHex: null,
      headers: [
        { key: 'ключ 🔑', valueHex: '' },
        { key: '', valueHex: null },
      ],
    },
  ]);
  t.end();
});

// ---------------------------------------------------------------------------------------
// Properties.

const bytesOrNull = fc.option(
  fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
  { nil: null },
);
const headerArb = fc.record({ key: fc.string({ unit: 'binary', maxLength: 20 }), value: bytesOrNull });
const recordArb = fc.record({
  offsetDelta: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
  timestampDelta: fc.oneof(fc.integer({ min: -100_000, max: 100_000 }), fc.maxSafeInteger()),
  key: bytesOrNull,
  value: bytesOrNull,
  headers: fc.array(headerArb, { maxLength: 4 }),
  attributes: fc.integer({ min: -128, max: 127 }),
});
const int16 = fc.integer({ min: -0x8000, max: 0x7fff });
const int32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const fieldsArb = fc.record({
  baseOffset: fc.maxSafeInteger(),
  partitionLeaderEpoch: int32,
  attributes: int16.map((attributes) => attributes & ~0x07),
  lastOffsetDelta: int32,
  baseTimestamp: fc.maxSafeInteger(),
  maxTimestamp: fc.maxSafeInteger(),
  producerId: fc.maxSafeInteger(),
  producerEpoch: int16,
  baseSequence: int32,
  records: fc.array(recordArb, { maxLength: 8 }),
});

function normalisedRecords(records: BatchRecord[]): Array<VectorRecord & { attributes: number }> {
  return records.map((record) => ({ ...asVectorRecord(record), attributes: record.attributes ?? 0 }));
}

void t.test('encodeBatch then decodeBatch gives back the fields and the bytes (property)', (t) => {
  fc.assert(
    fc.property(fieldsArb, (fields) => {
      const bytes = encodeBatch(fields);
      const { header, records } = decodeBatch(bytes);
      const expected: BatchHeader = {
        baseOffset: fields.baseOffset,
        batchLength: bytes.length - BATCH_OVERHEAD_BYTES,
        sizeBytes: bytes.length,
        partitionLeaderEpoch: fields.partitionLeaderEpoch,
        magic: MAGIC_V2,
        crc: bytes.readUInt32BE(OFFSET_CRC),
        attributes: fields.attributes,
        lastOffsetDelta: fields.lastOffsetDelta,
        baseTimestamp: fields.baseTimestamp,
        maxTimestamp: fields.maxTimestamp,
        producerId: fields.producerId,
        producerEpoch: fields.producerEpoch,
        baseSequence: fields.baseSequence,
        recordCount: fields.records.length,
      };
      return (
        isDeepStrictEqual(header, expected) &&
        isDeepStrictEqual(normalisedRecords(records), normalisedRecords(fields.records)) &&
        encodeBatch({ ...fields, records }).equals(bytes)
      );
    }),
    { numRuns: 200 },
  );
  t.pass('property held');
  t.end();
});

void t.test('buildBatch output always passes validateBatch (property)', (t) => {
  const producerRecord = fc.record({
    key: bytesOrNull,
    value: bytesOrNull,
    headers: fc.array(headerArb, { maxLength: 3 }),
    timestampMs: fc.integer({ min: 0, max: 2 ** 45 }),
  });
  fc.assert(
    fc.property(fc.array(producerRecord, { minLength: 1, maxLength: 10 }), (records) => {
      const bytes = buildBatch(records);
      const header = validateBatch(bytes, 0, bytes.length, MESSAGE_BYTES_MAX);
      const decoded = decodeBatch(bytes).records;
      return (
        header.recordCount === records.length &&
        header.maxTimestamp === Math.max(...records.map((record) => record.timestampMs)) &&
        decoded.every((record, index) => header.baseTimestamp + record.timestampDelta === records[index]!.timestampMs)
      );
    }),
    { numRuns: 200 },
  );
  t.pass('property held');
  t.end();
});

void t.test('decodeBatch on random bytes throws only DriftwoodError (property)', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      decodesOrCorrupt(Buffer.from(bytes));
      return true;
    }),
    { numRuns: 1000 },
  );
  // Random bodies behind a well-formed header, with the CRC skipped, reach the record parser.
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: -2, max: 40 }), (body, count) => {
      decodesOrCorrupt(rawBatch(Buffer.from(body), count), false);
      return true;
    }),
    { numRuns: 2000 },
  );
  t.pass('property held');
  t.end();
});

void t.test('decodeBatch on truncated or bit-flipped batches throws only DriftwoodError (property)', (t) => {
  const batchArb = fc.oneof(
    fc.nat({ max: vectors.length - 1 }).map((index) => vectorBytes(vectors[index]!)),
    fieldsArb.map((fields) => encodeBatch(fields)),
  );
  fc.assert(
    fc.property(batchArb, fc.nat(), (bytes, cut) => {
      // Every truncation is corrupt: the batch claims more bytes than are there.
      return !decodesOrCorrupt(bytes.subarray(0, cut % bytes.length));
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(batchArb, fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), fc.boolean(), (bytes, flips, refreshCrc) => {
      const mutated = Buffer.from(bytes);
      for (const flip of flips) {
        const bit = flip % (mutated.length * 8);
        mutated[bit >> 3]! ^= 1 << (bit & 7);
      }
      // With the CRC refreshed the flip reaches the record parser, which must hold too.
      if (refreshCrc) fixCrc(mutated);
      decodesOrCorrupt(mutated, !refreshCrc);
      return true;
    }),
    { numRuns: 2000 },
  );
  t.pass('property held');
  t.end();
});

void t.test('encoding bad fields is a programmer error', (t) => {
  const fields = vectorFields(vectors[0]!);
  t.throws(() => encodeBatch({ ...fields, attributes: 1 }), { code: 'ERR_ASSERTION' });
  t.throws(() => encodeBatch({ ...fields, baseOffset: 2 ** 53 }), { code: 'ERR_ASSERTION' });
  t.throws(() => encodeBatch({ ...fields, producerEpoch: 0x8000 }), { code: 'ERR_ASSERTION' });
  t.throws(() => encodeBatch({ ...fields, records: [{ ...fields.records[0]!, attributes: 128 }] }), {
    code: 'ERR_ASSERTION',
  });
  t.throws(() => encodeBatch({ ...fields, records: [{ ...fields.records[0]!, offsetDelta: 2 ** 31 }] }), {
    code: 'ERR_ASSERTION',
  });
  t.end();
});
