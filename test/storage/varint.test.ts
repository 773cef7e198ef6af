import t from 'tap';
import fc from 'fast-check';
import { DriftwoodError } from '../../storage/errors.js';
import {
  readVarint,
  readVarlong,
  varintSize,
  varlongSize,
  writeVarint,
  writeVarlong,
} from '../../storage/varint.js';

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;

// An independent reference: protobuf/Kafka zigzag varint with BigInt, no shortcuts.
function referenceVarlongBig(value: bigint): Buffer {
  let zz = BigInt.asUintN(64, (value << 1n) ^ (value >> 63n));
  const bytes: number[] = [];
  while (zz >= 0x80n) {
    bytes.push(Number(zz & 0x7fn) | 0x80);
    zz >>= 7n;
  }
  bytes.push(Number(zz));
  return Buffer.from(bytes);
}

function referenceVarlong(value: number): Buffer {
  return referenceVarlongBig(BigInt(value));
}

function encodeVarint(value: number): Buffer {
  const buf = Buffer.alloc(5);
  return buf.subarray(0, writeVarint(buf, 0, value));
}

function encodeVarlong(value: number): Buffer {
  const buf = Buffer.alloc(10);
  return buf.subarray(0, writeVarlong(buf, 0, value));
}

const corrupt = { code: 'CORRUPT_MESSAGE', constructor: DriftwoodError };

void t.test('varint encodings match Kafka for boundary values', (t) => {
  const cases: Array<[number, string]> = [
    [0, '00'],
    [-1, '01'],
    [1, '02'],
    [63, '7e'],
    [-64, '7f'],
    [64, '8001'],
    [-65, '8101'],
    [8191, 'fe7f'],
    [-8192, 'ff7f'],
    [8192, '808001'],
    [INT32_MAX, 'feffffff0f'],
    [INT32_MIN, 'ffffffff0f'],
  ];
  for (const [value, hex] of cases) {
    const bytes = encodeVarint(value);
    t.equal(bytes.toString('hex'), hex, `encode ${value}`);
    t.equal(varintSize(value), bytes.length, `size of ${value}`);
    t.strictSame(readVarint(bytes, 0), { value, next: bytes.length }, `decode ${value}`);
  }
  t.end();
});

void t.test('varint round trips every int32 it is given, at any position', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: INT32_MIN, max: INT32_MAX }), fc.nat({ max: 8 }), (value, pos) => {
      const buf = Buffer.alloc(pos + 5, 0xaa);
      const next = writeVarint(buf, pos, value);
      const read = readVarint(buf, pos);
      return (
        next - pos === varintSize(value) &&
        buf.subarray(pos, next).equals(referenceVarlong(value)) &&
        read.value === value &&
        read.next === next
      );
    }),
    { numRuns: 2000 },
  );
  t.pass('property held');
  t.end();
});

void t.test('varlong encodings for timestamps and the safe integer limits', (t) => {
  const values = [
    0, -1, 1, INT32_MAX, INT32_MIN, INT32_MAX + 1, INT32_MIN - 1, 1700946069955, -1700946069955,
    2 ** 48, -(2 ** 48), 2 ** 49 - 1, 2 ** 52, -(2 ** 52), 2 ** 52 + 1, -(2 ** 52) - 1,
    Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER,
  ];
  for (const value of values) {
    const bytes = encodeVarlong(value);
    t.equal(bytes.toString('hex'), referenceVarlong(value).toString('hex'), `encode ${value}`);
    t.equal(varlongSize(value), bytes.length, `size of ${value}`);
    t.strictSame(readVarlong(bytes, 0), { value, next: bytes.length }, `decode ${value}`);
  }
  t.equal(encodeVarlong(Number.MIN_SAFE_INTEGER).length, 8);
  t.end();
});

void t.test('varlong round trips every safe integer it is given', (t) => {
  const safe = fc.oneof(
    fc.integer({ min: -100000, max: 100000 }),
    fc.maxSafeInteger(),
    fc.integer({ min: -(2 ** 50), max: 2 ** 50 }),
  );
  fc.assert(
    fc.property(safe, (value) => {
      const bytes = encodeVarlong(value);
      const read = readVarlong(bytes, 0);
      return (
        bytes.equals(referenceVarlong(value)) &&
        varlongSize(value) === bytes.length &&
        read.value === value &&
        read.next === bytes.length
      );
    }),
    { numRuns: 2000 },
  );
  t.pass('property held');
  t.end();
});

void t.test('Kafka accepts non-minimal encodings up to the length limit, so do we', (t) => {
  t.strictSame(readVarint(Buffer.from('8000', 'hex'), 0), { value: 0, next: 2 });
  t.strictSame(readVarint(Buffer.from('8180808000', 'hex'), 0), { value: -1, next: 5 });
  t.strictSame(readVarlong(Buffer.from('80808080808080808000', 'hex'), 0), { value: 0, next: 10 });
  t.end();
});

void t.test('truncated varints are CORRUPT_MESSAGE', (t) => {
  t.throws(() => readVarint(Buffer.alloc(0), 0), corrupt);
  t.throws(() => readVarint(Buffer.from('80', 'hex'), 0), corrupt);
  t.throws(() => readVarint(Buffer.from('ffffffff', 'hex'), 0), { ...corrupt, message: /truncated/ });
  t.throws(() => readVarint(Buffer.from('0080', 'hex'), 1), corrupt);
  t.throws(() => readVarint(Buffer.from('00', 'hex'), 1), corrupt);
  t.throws(() => readVarlong(Buffer.alloc(0), 0), corrupt);
  t.throws(() => readVarlong(Buffer.from('808080808080', 'hex'), 0), corrupt);
  t.throws(() => readVarlong(Buffer.from('808080808080808080', 'hex'), 0), { ...corrupt, message: /truncated/ });
  // Every proper prefix of a long encoding is truncated.
  const long = encodeVarlong(Number.MIN_SAFE_INTEGER);
  for (let length = 0; length < long.length; length++) {
    t.throws(() => readVarlong(long.subarray(0, length), 0), corrupt, `prefix of ${length} bytes`);
  }
  t.end();
});

void t.test('overlong and overflowing varints are CORRUPT_MESSAGE', (t) => {
  t.throws(() => readVarint(Buffer.from('808080808000', 'hex'), 0), { ...corrupt, message: /longer than 5 bytes/ });
  t.throws(() => readVarint(Buffer.from('8080808080', 'hex'), 0), { ...corrupt, message: /longer than 5 bytes/ });
  t.throws(() => readVarint(Buffer.from('ffffffff1f', 'hex'), 0), { ...corrupt, message: /32 bits/ });
  t.throws(() => readVarlong(Buffer.from('8080808080808080808000', 'hex'), 0), {
    ...corrupt,
    message: /longer than 10 bytes/,
  });
  t.throws(() => readVarlong(Buffer.from('ffffffffffffffffff03', 'hex'), 0), { ...corrupt, message: /64 bits/ });
  // Int64 values past the safe integers cannot be numbers: Long.MIN_VALUE, MAX_SAFE + 1.
  t.throws(() => readVarlong(Buffer.from('ffffffffffffffffff01', 'hex'), 0), { ...corrupt, message: /safe integer/ });
  t.throws(() => readVarlong(referenceVarlongBig(2n ** 53n), 0), { ...corrupt, message: /safe integer/ });
  t.end();
});

void t.test('reading arbitrary bytes returns a value or throws DriftwoodError', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 12 }), (bytes) => {
      const buf = Buffer.from(bytes);
      for (const read of [readVarint, readVarlong]) {
        try {
          const { value, next } = read(buf, 0);
          if (!Number.isSafeInteger(value) || next < 1 || next > buf.length) return false;
        } catch (error) {
          if (!(error instanceof DriftwoodError) || error.code !== 'CORRUPT_MESSAGE') throw error;
        }
      }
      return true;
    }),
    { numRuns: 5000 },
  );
  t.pass('property held');
  t.end();
});

void t.test('encoding a value out of range is a programmer error', (t) => {
  t.throws(() => writeVarint(Buffer.alloc(5), 0, INT32_MAX + 1), { code: 'ERR_ASSERTION' });
  t.throws(() => writeVarint(Buffer.alloc(5), 0, 1.5), { code: 'ERR_ASSERTION' });
  t.throws(() => writeVarlong(Buffer.alloc(10), 0, 2 ** 53), { code: 'ERR_ASSERTION' });
  t.throws(() => writeVarint(Buffer.alloc(1), 0, 64), { code: 'ERR_ASSERTION' });
  t.throws(() => writeVarlong(Buffer.alloc(4), 0, 2 ** 40), { code: 'ERR_ASSERTION' });
  t.end();
});
