// What a partition knows of its idempotent producers (KIP-98), as Kafka's ProducerStateManager:
// for each producer id, its epoch and the last PRODUCER_BATCHES_CACHED_MAX batches written
// (sequence range, offsets, timestamp). A leader judges each produced batch against it: a
// batch matching a cached one is a retry whose original is in the log (answered with the
// original's offsets, not written again), a batch that does not follow the last sequence is
// refused, and an older epoch is a fenced zombie. Followers and a log scan replay the batch
// headers of the log into the same state, so whichever replica leads next judges alike.
//
// Pure logic over batch headers: no I/O, no clock (callers pass nowMs). The caller keeps it
// equal to its log: replay() for every batch the log gains by replication or a scan, and for
// its own appends admit() (which reserves the batches as pending, synchronously, so a retry
// arriving while the original is written is recognised), then complete() or abandon().
import assert from 'node:assert/strict';
import { DriftwoodError } from './errors.js';
import { NO_PRODUCER_ID, type BatchHeader } from './record-batch.js';

/** Batches remembered per producer (Kafka's NUM_BATCHES_TO_RETAIN, and max.in.flight's bound). */
export const PRODUCER_BATCHES_CACHED_MAX = 5;
/** Kafka's producer.id.expiration.ms default: a producer silent this long is forgotten. */
export const PRODUCER_ID_EXPIRATION_MS_DEFAULT = 86_400_000;
/** Sequences are int32 and wrap to 0 after this. */
export const SEQUENCE_MAX = 0x7fff_ffff;

/** One batch a producer wrote (Kafka's BatchMetadata). */
export interface ProducerBatch {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly firstOffset: number;
  readonly lastOffset: number;
  /** The batch's maxTimestamp (the append time under LogAppendTime). */
  readonly timestampMs: number;
}

/** A batch admitted by this leader whose write has not completed: no offsets yet. */
export interface PendingBatch {
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly timestampMs: number;
}

export interface ProducerEntry {
  readonly producerId: number;
  readonly producerEpoch: number;
  /** Oldest first, at most PRODUCER_BATCHES_CACHED_MAX, all of producerEpoch. */
  readonly batches: readonly ProducerBatch[];
  /**
   * When the producer was last active, what expiry measures idleness from: this broker's clock
   * at its last append here (as leader or follower); when the state was read back from the log
   * (a restart), the last batch's own timestamp, the only time the log keeps.
   */
  readonly lastActiveMs: number;
}

/**
 * admit()'s answer: the batches are reserved ('append', one PendingBatch per batch with a
 * producer id, in order), or every batch of the request is a retry of one already written or
 * being written ('duplicate', the originals in order).
 */
export type Admission =
  | { readonly kind: 'append'; readonly pending: readonly PendingBatch[] }
  | { readonly kind: 'duplicate'; readonly originals: ReadonlyArray<ProducerBatch | PendingBatch> };

/** A sequence after `sequence` by `delta` (Kafka's DefaultRecordBatch.incrementSequence). */
export function incrementSequence(sequence: number, delta: number): number {
  assert(sequence >= 0 && sequence <= SEQUENCE_MAX, `sequence ${sequence} is not a non-negative int32`);
  assert(delta >= 0 && delta <= SEQUENCE_MAX, `sequence delta ${delta} is not a non-negative int32`);
  return sequence > SEQUENCE_MAX - delta ? delta - (SEQUENCE_MAX - sequence) - 1 : sequence + delta;
}

/** The sequence of a batch's last record. */
export function lastSequenceOf(header: BatchHeader): number {
  return incrementSequence(header.baseSequence, header.lastOffsetDelta);
}

/** Whether `next` directly follows `last` (wrapping from SEQUENCE_MAX to 0). */
export function inSequence(last: number, next: number): boolean {
  return next === last + 1 || (next === 0 && last === SEQUENCE_MAX);
}

export function hasProducerId(header: BatchHeader): boolean {
  return header.producerId !== NO_PRODUCER_ID;
}

/** A producer as one admission sees it: the log's state with the pending batches and the request's earlier batches on top. */
interface View {
  epoch: number;
  /** The newest batches of `epoch`, oldest first; written ones and pending ones. */
  batches: Array<ProducerBatch | PendingBatch>;
}

/** Whether an original found by admit() is still being written. */
export function isPending(batch: ProducerBatch | PendingBatch): batch is PendingBatch {
  return 'producerId' in batch;
}

export class ProducerStateManager {
  private readonly entries = new Map<number, ProducerEntry>();
  /** This leader's admitted batches not yet written, per producer, in log order. */
  private readonly pending = new Map<number, PendingBatch[]>();

  constructor(readonly producerIdExpirationMs: number = PRODUCER_ID_EXPIRATION_MS_DEFAULT) {
    assert(Number.isSafeInteger(producerIdExpirationMs) && producerIdExpirationMs > 0, 'producerIdExpirationMs must be a positive integer');
  }

  get producerCount(): number {
    return this.entries.size;
  }

  get pendingCount(): number {
    let count = 0;
    for (const batches of this.pending.values()) count += batches.length;
    return count;
  }

  entry(producerId: number): ProducerEntry | undefined {
    return this.entries.get(producerId);
  }

  producerIds(): number[] {
    return [...this.entries.keys()].sort((a, b) => a - b);
  }

  /**
   * A leader's produce request: judges every batch with a producer id, in order, each
   * against the state plus the request's earlier batches. Refuses the whole request (a
   * DriftwoodError, nothing reserved) when one batch is refused; answers 'duplicate' when
   * every batch is one already written or being written; otherwise reserves them all as
   * pending. Synchronous, so no other admission sees the state between check and reservation.
   */
  admit(headers: readonly BatchHeader[], nowMs: number): Admission {
    assert(headers.length > 0, 'a produce request carries at least one batch');
    const views = new Map<number, View | null>();
    const originals: Array<ProducerBatch | PendingBatch> = [];
    const admitted: PendingBatch[] = [];
    let plain = 0;
    headers.forEach((header, index) => {
      if (!hasProducerId(header)) {
        plain += 1;
        return;
      }
      checkIdempotentHeader(header, index);
      let view = views.get(header.producerId);
      if (view === undefined) {
        view = this.viewOf(header.producerId, nowMs);
        views.set(header.producerId, view);
      }
      const duplicate = findDuplicate(view, header);
      if (duplicate !== undefined) {
        originals.push(duplicate);
        return;
      }
      checkSequence(view, header, index);
      const batch: PendingBatch = { producerId: header.producerId, producerEpoch: header.producerEpoch, firstSeq: header.baseSequence, lastSeq: lastSequenceOf(header), timestampMs: header.maxTimestamp };
      views.set(header.producerId, follow(view, batch));
      admitted.push(batch);
    });
    if (originals.length > 0) {
      if (originals.length === headers.length) return { kind: 'duplicate', originals };
      // Only a multi-batch request can be partly written (a failover kept its first batches):
      // writing the rest would split one answer over two places, so the client is told.
      throw new DriftwoodError('OUT_OF_ORDER_SEQUENCE_NUMBER', `${originals.length} of the ${headers.length} batches of this request are written already, ${plain + admitted.length} are not; send the others alone`);
    }
    for (const batch of admitted) {
      const queue = this.pending.get(batch.producerId) ?? [];
      queue.push(batch);
      this.pending.set(batch.producerId, queue);
    }
    return { kind: 'append', pending: admitted };
  }

  /**
   * A pending batch was written at these offsets, at `nowMs` (under LogAppendTime, stamped
   * with `timestampMs`). Call in log order.
   */
  complete(batch: PendingBatch, firstOffset: number, lastOffset: number, nowMs: number, timestampMs = batch.timestampMs): ProducerBatch {
    const queue = this.pending.get(batch.producerId);
    assert(queue !== undefined && queue[0] === batch, `producer ${batch.producerId}: a pending batch completed out of log order`);
    assert(firstOffset >= 0 && lastOffset >= firstOffset, `bad offsets ${firstOffset}..${lastOffset}`);
    queue.shift();
    if (queue.length === 0) this.pending.delete(batch.producerId);
    const written: ProducerBatch = { firstSeq: batch.firstSeq, lastSeq: batch.lastSeq, firstOffset, lastOffset, timestampMs };
    this.record(batch.producerId, batch.producerEpoch, written, nowMs);
    return written;
  }

  /** A pending batch's write failed: it is not in the log. */
  abandon(batch: PendingBatch): void {
    const queue = this.pending.get(batch.producerId);
    const index = queue?.indexOf(batch) ?? -1;
    assert(queue !== undefined && index >= 0, `producer ${batch.producerId}: abandoning a batch that is not pending`);
    queue.splice(index, 1);
    if (queue.length === 0) this.pending.delete(batch.producerId);
  }

  /**
   * A batch now in the log that this leader did not admit: replicated from the leader (pass
   * the clock's nowMs), or read back by a scan (its own timestamp, the default). Nothing is
   * checked (the leader did), as Kafka's replication origin.
   */
  replay(header: BatchHeader, activeMs = header.maxTimestamp): void {
    if (!hasProducerId(header)) return;
    assert(header.baseOffset >= 0, 'a replayed batch has its offset');
    const lastOffset = header.baseOffset + header.lastOffsetDelta;
    this.record(header.producerId, header.producerEpoch, { firstSeq: header.baseSequence, lastSeq: lastSequenceOf(header), firstOffset: header.baseOffset, lastOffset, timestampMs: header.maxTimestamp }, activeMs);
  }

  /**
   * The log was cut to end before `endOffset`: batches from there on are forgotten. Returns
   * false when some producer had no cached batch left below the cut: its earlier batches (and
   * maybe its earlier epoch) are known only to the log, which must then be scanned again.
   */
  truncateTo(endOffset: number): boolean {
    assert.equal(this.pending.size, 0, 'truncating the producer state under a pending write');
    let complete = true;
    for (const entry of [...this.entries.values()]) {
      const kept = entry.batches.filter((batch) => batch.lastOffset < endOffset);
      if (kept.length === entry.batches.length) continue;
      if (kept.length === 0) {
        this.entries.delete(entry.producerId);
        complete = false;
        continue;
      }
      this.entries.set(entry.producerId, { ...entry, batches: kept });
    }
    return complete;
  }

  /** Forgets producers idle for producerIdExpirationMs (none with a batch being written). Returns how many. */
  removeExpired(nowMs: number): number {
    let removed = 0;
    for (const entry of [...this.entries.values()]) {
      if (!this.isExpired(entry, nowMs)) continue;
      this.entries.delete(entry.producerId);
      removed += 1;
    }
    return removed;
  }

  private isExpired(entry: ProducerEntry, nowMs: number): boolean {
    return !this.pending.has(entry.producerId) && nowMs - entry.lastActiveMs >= this.producerIdExpirationMs;
  }

  /** A new epoch starts the cache afresh (Kafka's maybeUpdateProducerEpoch); the window keeps the newest batches. */
  private record(producerId: number, producerEpoch: number, batch: ProducerBatch, activeMs: number): void {
    const entry = this.entries.get(producerId);
    const kept = entry === undefined || entry.producerEpoch !== producerEpoch ? [] : entry.batches.slice(-(PRODUCER_BATCHES_CACHED_MAX - 1));
    kept.push(batch);
    assert(kept.length <= PRODUCER_BATCHES_CACHED_MAX);
    // Never back: a replayed batch may carry an older timestamp than the clock's last append.
    const lastActiveMs = Math.max(activeMs, entry?.lastActiveMs ?? activeMs);
    this.entries.set(producerId, { producerId, producerEpoch, batches: kept, lastActiveMs });
  }

  /** The producer as an admission sees it; null when unknown (or expired, which is forgotten here). */
  private viewOf(producerId: number, nowMs: number): View | null {
    let entry = this.entries.get(producerId);
    if (entry !== undefined && this.isExpired(entry, nowMs)) {
      this.entries.delete(producerId);
      entry = undefined;
    }
    let view: View | null = entry === undefined ? null : { epoch: entry.producerEpoch, batches: [...entry.batches] };
    for (const batch of this.pending.get(producerId) ?? []) view = follow(view, batch);
    return view;
  }
}

function follow(view: View | null, batch: PendingBatch): View {
  if (view === null || view.epoch !== batch.producerEpoch) return { epoch: batch.producerEpoch, batches: [batch] };
  return { epoch: view.epoch, batches: [...view.batches.slice(-(PRODUCER_BATCHES_CACHED_MAX - 1)), batch] };
}

/** Kafka matches a retry by epoch and exact sequence range against the cached batches. */
function findDuplicate(view: View | null, header: BatchHeader): ProducerBatch | PendingBatch | undefined {
  if (view === null || view.epoch !== header.producerEpoch) return undefined;
  const lastSeq = lastSequenceOf(header);
  return view.batches.find((batch) => batch.firstSeq === header.baseSequence && batch.lastSeq === lastSeq);
}

/** Kafka's checkProducerEpoch and checkSequence for a client's batch that is not a retry. */
function checkSequence(view: View | null, header: BatchHeader, index: number): void {
  const where = `batch ${index} (producer ${header.producerId}, epoch ${header.producerEpoch}, sequence ${header.baseSequence})`;
  if (view === null) {
    if (header.baseSequence !== 0) throw new DriftwoodError('UNKNOWN_PRODUCER_ID', `${where}: this partition has no state for the producer, so its first batch must have sequence 0`);
    return;
  }
  if (header.producerEpoch < view.epoch) throw new DriftwoodError('INVALID_PRODUCER_EPOCH', `${where}: the partition has epoch ${view.epoch}`, { producerEpoch: view.epoch });
  if (header.producerEpoch > view.epoch) {
    if (header.baseSequence !== 0) throw new DriftwoodError('OUT_OF_ORDER_SEQUENCE_NUMBER', `${where}: a new epoch starts at sequence 0`);
    return;
  }
  const last = view.batches.at(-1);
  const expected = last === undefined ? 0 : incrementSequence(last.lastSeq, 1);
  if (last === undefined ? header.baseSequence !== 0 : !inSequence(last.lastSeq, header.baseSequence)) {
    throw new DriftwoodError('OUT_OF_ORDER_SEQUENCE_NUMBER', `${where}: expected sequence ${expected}`, { expectedSequence: expected });
  }
}

/** An idempotent batch names its epoch and sequence (Kafka's LogValidator refuses it otherwise). */
function checkIdempotentHeader(header: BatchHeader, index: number): void {
  if (header.producerId < 0 || header.producerEpoch < 0 || header.baseSequence < 0) {
    throw new DriftwoodError('INVALID_REQUEST', `batch ${index}: producer id ${header.producerId} needs a non-negative epoch and sequence, got ${header.producerEpoch} and ${header.baseSequence}`);
  }
  if (header.lastOffsetDelta < 0) throw new DriftwoodError('CORRUPT_MESSAGE', `batch ${index}: lastOffsetDelta ${header.lastOffsetDelta} is negative`);
}
