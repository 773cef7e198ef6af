// Kafka's default key partitioner: murmur2 of the key bytes (Utils.murmur2, seed 0x9747b28c),
// made non-negative by masking the sign bit, modulo the partition count. Matching it bit for
// bit means a key lands on the same partition whichever Kafka client produced it.
import assert from 'node:assert';

const SEED = 0x9747b28c;
const M = 0x5bd1e995;
const R = 24;

// Little-endian 32-bit word at `at`, as Kafka assembles it from the byte array. Callers
// stay within the key, so every index is defined.
function wordAt(data: Uint8Array, at: number): number {
  return (
    (data[at] as number) |
    ((data[at + 1] as number) << 8) |
    ((data[at + 2] as number) << 16) |
    ((data[at + 3] as number) << 24)
  );
}

/** Kafka's murmur2 as a signed 32-bit integer (Java int arithmetic via Math.imul and |0). */
export function murmur2(key: Uint8Array): number {
  const length = key.length;
  let h = SEED ^ length;
  const tail = length & ~3;
  for (let at = 0; at < tail; at += 4) {
    let k = Math.imul(wordAt(key, at), M);
    k ^= k >>> R;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  // Java's fall-through switch over length % 4, unrolled.
  const rest = length & 3;
  if (rest === 3) h ^= (key[tail + 2] as number) << 16;
  if (rest >= 2) h ^= (key[tail + 1] as number) << 8;
  if (rest >= 1) {
    h ^= key[tail] as number;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** Kafka's Utils.toPositive: drops the sign bit (not Math.abs, which fails on MIN_VALUE). */
export function toPositive(n: number): number {
  return n & 0x7fffffff;
}

/** The partition Kafka's default partitioner picks for a keyed record. */
export function partitionForKey(key: Uint8Array, partitionCount: number): number {
  assert(Number.isInteger(partitionCount), 'partition count is not an integer');
  assert(partitionCount > 0, 'partition count must be positive');
  const partition = toPositive(murmur2(key)) % partitionCount;
  assert(partition >= 0 && partition < partitionCount);
  return partition;
}
