// CRC-32C (Castagnoli), the checksum of Kafka's RecordBatch v2. The native SIMD
// implementation is an order of magnitude faster than a table in JavaScript, and the CRC
// is the only pass the broker makes over a produced batch's body.
import { crc32c as nativeCrc32c } from '@node-rs/crc32';

/**
 * CRC-32C of `data` as an unsigned 32-bit number. `initial` is the CRC of the bytes that
 * came before, so a checksum can be computed over several chunks.
 */
export function crc32c(data: Uint8Array, initial = 0): number {
  // The native function takes a u32; normalise so a signed value read elsewhere works.
  return nativeCrc32c(data, initial >>> 0) >>> 0;
}
