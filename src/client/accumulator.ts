// The producer's memory: records waiting to be sent, grouped per partition into batches (as
// Kafka's RecordAccumulator), and the pool of buffer bytes they hold (as its BufferPool).
import assert from 'node:assert/strict';
import { DriftwoodError } from '../../storage/errors.js';
import { BATCH_HEADER_BYTES, RECORDS_PER_BATCH_MAX, type Header, type ProducerRecord } from '../../storage/record-batch.js';
import { VARINT_BYTES_MAX, VARLONG_BYTES_MAX } from '../../storage/varint.js';
import type { Timers } from './retry.js';

export interface RecordMetadata {
  readonly topic: string;
  readonly partition: number;
  /** The record's offset in its partition; -1 with acks=0, where the broker answers before writing. */
  readonly offset: number;
}

interface PendingRecord {
  readonly record: ProducerRecord;
  readonly sizeBytes: number;
  readonly resolve: (metadata: RecordMetadata) => void;
  readonly reject: (error: DriftwoodError) => void;
}

/**
 * The most a record can take in a batch besides its key, value and headers: its length,
 * attributes, timestamp delta, offset delta, key length, value length and header count.
 */
const RECORD_OVERHEAD_BYTES_MAX = VARINT_BYTES_MAX + 1 + VARLONG_BYTES_MAX + VARINT_BYTES_MAX * 4;
const HEADER_OVERHEAD_BYTES_MAX = VARINT_BYTES_MAX * 2;

/** An upper bound on the bytes a record takes in a RecordBatch v2 (the estimate batches and the buffer count). */
export function recordSizeBytes(record: ProducerRecord): number {
  let size = RECORD_OVERHEAD_BYTES_MAX + (record.key?.length ?? 0) + (record.value?.length ?? 0);
  for (const header of record.headers ?? []) size += HEADER_OVERHEAD_BYTES_MAX + Buffer.byteLength(header.key, 'utf8') + (header.value?.length ?? 0);
  return size;
}

/** One batch of one partition: open for records until it is full or sent, then frozen as bytes. */
export class ProducerBatch {
  readonly records: PendingRecord[] = [];
  /** The estimated encoded size (header plus record upper bounds). */
  sizeBytes = BATCH_HEADER_BYTES;
  /** Closed to new records: it is being sent (its bytes may still be on their way). */
  sealed = false;
  /** The bytes sent, built once at the first send so that every retry resends the same bytes. */
  bytes: Buffer | null = null;
  /** Whether the bytes carry a producer id and sequence (idempotence). */
  sequenced = false;
  attempts = 0;
  retryAtMs = 0;
  /** Resolves when every record of the batch has its answer (success or failure). */
  readonly settled: Promise<void>;
  private settle: () => void = () => undefined;

  constructor(readonly topic: string, readonly partition: number, readonly createdMs: number) {
    this.settled = new Promise((resolve) => { this.settle = resolve; });
  }

  get recordCount(): number {
    return this.records.length;
  }

  get bufferBytes(): number {
    let bytes = 0;
    for (const pending of this.records) bytes += pending.sizeBytes;
    return bytes;
  }

  /** Whether a record of `sizeBytes` may still join (an empty batch takes any one record; brokers take at most RECORDS_PER_BATCH_MAX). */
  accepts(sizeBytes: number, batchBytesMax: number): boolean {
    if (this.sealed || this.records.length >= RECORDS_PER_BATCH_MAX) return false;
    return this.records.length === 0 || this.sizeBytes + sizeBytes <= batchBytesMax;
  }

  add(pending: PendingRecord): void {
    assert(!this.sealed, 'a sealed batch takes no records');
    this.records.push(pending);
    this.sizeBytes += pending.sizeBytes;
  }

  complete(baseOffset: number): void {
    assert(this.sealed && this.bytes !== null, 'only a sent batch is answered');
    this.records.forEach((pending, index) => {
      pending.resolve({ topic: this.topic, partition: this.partition, offset: baseOffset < 0 ? -1 : baseOffset + index });
    });
    this.settle();
  }

  fail(error: DriftwoodError): void {
    for (const pending of this.records) pending.reject(error);
    this.settle();
  }
}

/**
 * The batches of one partition, oldest first. The first `requestBatches` of them are one
 * request (in flight, or waiting to be retried with the same bytes); only one request per
 * partition is in flight, so retries cannot reorder records.
 */
export class PartitionQueue {
  readonly batches: ProducerBatch[] = [];
  inFlight = false;
  /** How many of the first batches the current request carries (0: none formed). */
  requestBatches = 0;
  /** The next batch's baseSequence under the producer id of generation `sequenceGeneration`. */
  nextSequence = 0;
  sequenceGeneration = -1;

  constructor(readonly topic: string, readonly partition: number) {}

  /** The batch a new record of `sizeBytes` goes into, opening one when the last cannot take it. */
  batchFor(sizeBytes: number, batchBytesMax: number, nowMs: number): ProducerBatch {
    const last = this.batches.at(-1);
    if (last?.accepts(sizeBytes, batchBytesMax) === true) return last;
    const batch = new ProducerBatch(this.topic, this.partition, nowMs);
    this.batches.push(batch);
    return batch;
  }
}

/** Kafka's RecordBatch sequence arithmetic: int32, wrapping to 0 past its maximum. */
export function nextSequence(baseSequence: number, recordCount: number): number {
  assert(Number.isInteger(baseSequence) && baseSequence >= 0 && baseSequence <= 0x7fffffff, 'a sequence is a non-negative int32');
  assert(Number.isInteger(recordCount) && recordCount > 0);
  return (baseSequence + recordCount) % 0x80000000;
}

interface Waiter {
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (error: DriftwoodError) => void;
  cancel: () => void;
}

/**
 * The bytes of records not yet answered, bounded by bufferBytesMax. A send that does not fit
 * waits, first come first served, until enough is answered or its deadline passes.
 */
export class BufferPool {
  private usedBytes = 0;
  private readonly waiters: Waiter[] = [];

  constructor(readonly bytesMax: number, private readonly timers: Timers) {
    assert(bytesMax > 0);
  }

  get used(): number {
    return this.usedBytes;
  }

  /** Whether sends are waiting for room (then every batch is worth sending at once). */
  get exhausted(): boolean {
    return this.waiters.length > 0;
  }

  /** Takes `bytes` now if they fit and nobody waits before us. */
  tryReserve(bytes: number): boolean {
    assert(bytes > 0 && bytes <= this.bytesMax);
    if (this.waiters.length > 0 || this.usedBytes + bytes > this.bytesMax) return false;
    this.usedBytes += bytes;
    return true;
  }

  /** Takes `bytes`, waiting until `deadlineMs` (monotonic) at most; BUFFER_EXHAUSTED after. */
  reserve(bytes: number, waitMs: number): Promise<void> {
    if (this.tryReserve(bytes)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { bytes, resolve, reject, cancel: () => undefined };
      waiter.cancel = this.timers.after(waitMs, () => {
        this.remove(waiter);
        reject(new DriftwoodError('BUFFER_EXHAUSTED', `${bytes} bytes did not fit in ${this.bytesMax - this.usedBytes} free of ${this.bytesMax} within ${Math.round(waitMs)} ms`, { bufferBytesMax: this.bytesMax }));
        this.serve();
      });
      this.waiters.push(waiter);
    });
  }

  release(bytes: number): void {
    assert(bytes >= 0 && bytes <= this.usedBytes, 'released more buffer than was reserved');
    this.usedBytes -= bytes;
    this.serve();
  }

  /** Fails every waiting send (the producer is closing). */
  close(error: DriftwoodError): void {
    for (const waiter of this.waiters.splice(0)) {
      waiter.cancel();
      waiter.reject(error);
    }
  }

  private serve(): void {
    for (let first = this.waiters[0]; first !== undefined && this.usedBytes + first.bytes <= this.bytesMax; first = this.waiters[0]) {
      this.waiters.shift();
      first.cancel();
      this.usedBytes += first.bytes;
      first.resolve();
    }
  }

  private remove(waiter: Waiter): void {
    const index = this.waiters.indexOf(waiter);
    if (index >= 0) this.waiters.splice(index, 1);
  }
}

/** Headers as the batch codec takes them, from a map or a list. */
export function normalizeHeaders(headers: Readonly<Record<string, Buffer | string | null>> | ReadonlyArray<{ key: string; value: Buffer | string | null }> | undefined): Header[] {
  if (headers === undefined) return [];
  const entries = Array.isArray(headers)
    ? (headers as ReadonlyArray<{ key: string; value: Buffer | string | null }>).map((h) => [h.key, h.value] as const)
    : Object.entries(headers as Readonly<Record<string, Buffer | string | null>>);
  return entries.map(([key, value]) => {
    if (typeof key !== 'string') throw new DriftwoodError('INVALID_REQUEST', 'a header key is a string');
    return { key, value: toBytes(value, `header ${key}`) };
  });
}

/** A key, value or header value as bytes (strings as UTF-8). */
export function toBytes(value: Buffer | Uint8Array | string | null | undefined, what: string): Buffer | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new DriftwoodError('INVALID_REQUEST', `${what} is a Buffer, a string or null`);
}
