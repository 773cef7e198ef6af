// Chunked snapshot transfer. The leader sends one chunk at a time (progress.ts keeps the
// offsets) and the follower assembles them here. Chunks must arrive in order: a chunk whose
// offset is not exactly the number of bytes held is rejected, and the rejection carries the
// offset the follower expects, so the leader resumes from there. A chunk at offset 0 starts
// over: the leader restarted the transfer (it may have a newer snapshot by now).
import assert from 'node:assert/strict';
import type { Snapshot, SnapshotMeta } from './types.js';

export function sameSnapshot(a: SnapshotMeta, b: SnapshotMeta): boolean {
  return a.index === b.index && a.term === b.term;
}

/** The chunk of `snapshot` starting at offset, at most chunkBytes long. */
export function snapshotChunk(snapshot: Snapshot, offset: number, chunkBytes: number): { chunk: Uint8Array; end: number; done: boolean } {
  const size = snapshot.data.byteLength;
  assert(offset >= 0 && offset <= size, `snapshot offset ${offset} outside [0, ${size}]`);
  assert(chunkBytes > 0);
  const end = Math.min(offset + chunkBytes, size);
  return { chunk: snapshot.data.subarray(offset, end), end, done: end === size };
}

export class SnapshotAssembly {
  private readonly chunks: Uint8Array[] = [];
  private bytes = 0;

  constructor(readonly meta: SnapshotMeta) {}

  /** How many bytes are held: the offset of the next chunk expected. */
  get offset(): number {
    return this.bytes;
  }

  accepts(meta: SnapshotMeta, offset: number): boolean {
    return sameSnapshot(this.meta, meta) && offset === this.bytes;
  }

  add(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.bytes += chunk.byteLength;
  }

  /** The assembled snapshot: the chunks concatenated, checked against the held byte count. */
  snapshot(): Snapshot {
    const data = new Uint8Array(this.bytes);
    let at = 0;
    for (const chunk of this.chunks) {
      data.set(chunk, at);
      at += chunk.byteLength;
    }
    assert.equal(at, this.bytes);
    return { meta: { ...this.meta, voters: [...this.meta.voters], observers: [...this.meta.observers] }, data };
  }
}
