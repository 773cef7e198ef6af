import t from 'tap';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { murmur2, partitionForKey, toPositive } from '../src/partitioner.js';

// The independent vectors, as they are (shared/vectors/README.md).
interface MurmurVector {
  keyHex: string;
  murmur2: number;
  partition: Record<string, number>;
}
interface MurmurReference {
  key: string;
  murmur2: number;
}

const vectorUrl = new URL('../../shared/vectors/kafka-record-batches-and-murmur2.json', import.meta.url);
const vectors = JSON.parse(readFileSync(vectorUrl, 'utf8')) as {
  murmur2: MurmurVector[];
  murmur2Reference: MurmurReference[];
};

void t.test('murmur2 and the partition of every vector key', (t) => {
  t.equal(vectors.murmur2.length, 150);
  let partitionsChecked = 0;
  for (const vector of vectors.murmur2) {
    const key = Buffer.from(vector.keyHex, 'hex');
    t.equal(murmur2(key), vector.murmur2, `murmur2 of ${vector.keyHex}`);
    for (const [count, partition] of Object.entries(vector.partition)) {
      t.equal(partitionForKey(key, Number(count)), partition, `${vector.keyHex} over ${count} partitions`);
      partitionsChecked++;
    }
  }
  t.equal(partitionsChecked, 150 * 6, 'six partition counts per key');
  t.end();
});

void t.test("the reference hashes from Kafka's own tests (UTF-8 keys)", (t) => {
  t.equal(vectors.murmur2Reference.length, 6);
  for (const reference of vectors.murmur2Reference) {
    t.equal(murmur2(Buffer.from(reference.key, 'utf8')), reference.murmur2, reference.key);
  }
  t.end();
});

void t.test('murmur2 reads a plain Uint8Array and a view at an offset', (t) => {
  const vector = vectors.murmur2[0]!;
  const key = Buffer.from(vector.keyHex, 'hex');
  t.equal(murmur2(new Uint8Array(key)), vector.murmur2);
  const padded = Buffer.concat([Buffer.from('xyz'), key, Buffer.from('!')]);
  t.equal(murmur2(padded.subarray(3, 3 + key.length)), vector.murmur2);
  t.end();
});

void t.test('toPositive masks the sign bit as Kafka does', (t) => {
  t.equal(toPositive(0), 0);
  t.equal(toPositive(-1), 0x7fffffff);
  t.equal(toPositive(-0x80000000), 0);
  t.equal(toPositive(0x7fffffff), 0x7fffffff);
  t.equal(toPositive(-973932308), 1173551340);
  t.end();
});

void t.test('partitions are always in range and murmur2 is a signed int32 (property)', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: 10_000 }), (key, count) => {
      const hash = murmur2(key);
      const partition = partitionForKey(key, count);
      return (hash | 0) === hash && Number.isInteger(partition) && partition >= 0 && partition < count;
    }),
    { numRuns: 2000 },
  );
  t.pass('property held');
  t.end();
});

void t.test('a partition count that is not positive is a programmer error', (t) => {
  t.throws(() => partitionForKey(Buffer.from('k'), 0), { code: 'ERR_ASSERTION' });
  t.throws(() => partitionForKey(Buffer.from('k'), 1.5), { code: 'ERR_ASSERTION' });
  t.end();
});
