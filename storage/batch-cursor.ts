// Walks the record batches of a segment file front to back with large reads, so recovery
// and index rebuilds touch the disk once per chunk rather than once per batch.
import assert from 'node:assert/strict';
import type { DiskFile } from './disk.js';
import { BATCH_HEADER_BYTES, readBatchHeader, type BatchHeader } from './record-batch.js';

export interface CursorBatch {
  /** Byte position of the batch in the file. */
  readonly position: number;
  readonly header: BatchHeader;
  /** The buffer holding the batch, and where in it the batch starts. */
  readonly buffer: Buffer;
  readonly bufferOffset: number;
}

/** 'end': no more bytes. 'torn': the bytes left do not hold a whole batch with a sane header. */
export type CursorStep = CursorBatch | 'end' | 'torn';

export class BatchCursor {
  private buffer: Buffer = Buffer.alloc(0);
  private bufferPosition = 0;

  constructor(
    private readonly file: DiskFile,
    private position: number,
    private readonly endPosition: number,
    private readonly chunkBytes: number,
  ) {
    assert.ok(position >= 0 && position <= endPosition);
    assert.ok(chunkBytes >= BATCH_HEADER_BYTES);
  }

  /** Position of the next batch (after the last one returned). */
  get nextPosition(): number {
    return this.position;
  }

  /** The next batch; with `whole`, its bytes are all in the returned buffer (to check a CRC). */
  async next(whole: boolean): Promise<CursorStep> {
    if (this.position === this.endPosition) return 'end';
    if (this.endPosition - this.position < BATCH_HEADER_BYTES) return 'torn';
    await this.ensure(BATCH_HEADER_BYTES);
    let header: BatchHeader;
    try {
      header = readBatchHeader(this.buffer, this.position - this.bufferPosition);
    } catch {
      return 'torn';
    }
    if (header.sizeBytes < BATCH_HEADER_BYTES || this.position + header.sizeBytes > this.endPosition) return 'torn';
    if (whole) await this.ensure(header.sizeBytes);
    const step = { position: this.position, header, buffer: this.buffer, bufferOffset: this.position - this.bufferPosition };
    this.position += header.sizeBytes;
    return step;
  }

  /** Makes sure `length` bytes from the current position are in the buffer. */
  private async ensure(length: number): Promise<void> {
    const start = this.position - this.bufferPosition;
    if (start >= 0 && start + length <= this.buffer.length) return;
    const readBytes = Math.min(Math.max(length, this.chunkBytes), this.endPosition - this.position);
    this.buffer = await this.file.read(this.position, readBytes);
    this.bufferPosition = this.position;
    assert.ok(this.buffer.length >= length, `short read at ${this.position}: ${this.buffer.length} < ${length}`);
  }
}
