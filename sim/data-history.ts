// What clients of the data topic did and saw, and the anomalies that history shows against
// the logs the cluster holds at the end, in the terms of Jepsen's Kafka checker:
//   - lost-write: an acknowledged acks=all record is not in the final log (an acks=1 record
//     may be lost when its leader dies before replicating it: counted, not a violation);
//   - inconsistent-offsets: one offset read with two values, a record acknowledged at one
//     offset and found at another, or a read the final log does not hold there (a read above
//     the true high watermark that later disappeared);
//   - duplicate: a record at two offsets although its batch was sent once, or was sent by an
//     idempotent producer (with retries and no idempotence, a batch whose answer was lost may
//     land twice: counted; an idempotent one carries a producer id and sequence the leader
//     drops a retry by, so never);
//   - inversion: a batch first sent after an acks=all batch was acknowledged lands before it;
//   - nonmonotonic-hw: a consumer saw a partition's high watermark go back.
// Values are unique per batch record, so a value names one record.

export type DataAnomaly = 'lost-write' | 'inconsistent-offsets' | 'duplicate' | 'inversion' | 'nonmonotonic-hw';

export interface StoredRecord {
  readonly partition: number;
  readonly offset: number;
  readonly value: string;
}

interface SentBatch {
  readonly partition: number;
  readonly acks: 1 | -1;
  /** The highest acks=all offset acknowledged in this partition before the batch was first sent. */
  readonly ackedOffsetBefore: number;
  /** Sent with a producer id and sequence: its retries must never be stored twice. */
  readonly idempotent: boolean;
  attempts: number;
}

export interface DataCounts {
  /** Records acknowledged, by acks. */
  acknowledgedAll: number;
  acknowledgedOne: number;
  /** acks=all records acknowledged and not in the final log (each a lost-write violation). */
  lost: number;
  /** acks=1 records acknowledged and not in the final log at their acknowledged offset (allowed). */
  lostUnguaranteed: number;
  /** Extra copies of records whose batch was retried (allowed without idempotence). */
  duplicates: number;
  /** Idempotent batches sent more than once (retries the leaders had to recognise). */
  idempotentRetried: number;
  /** Distinct (partition, offset) consumers read. */
  consumed: number;
}

export class DataHistory {
  private readonly batches = new Map<string, SentBatch>();
  private readonly batchOf = new Map<string, string>();
  /** Acknowledged records: value -> where the leader said it went. */
  private readonly acked = new Map<string, { partition: number; offset: number; acks: 1 | -1; batchId: string }>();
  private readonly ackedOffsetMax = new Map<number, number>();
  /** What consumers read: "partition:offset" -> value. */
  private readonly reads = new Map<string, string>();
  private readonly highWatermarks = new Map<string, number>();

  constructor(private readonly report: (kind: DataAnomaly, text: string) => void) {}

  /** A producer sends (or resends) a batch of these values; `idempotent` with a producer id and sequence. */
  sent(batchId: string, partition: number, values: readonly string[], acks: 1 | -1, idempotent = false): void {
    const known = this.batches.get(batchId);
    if (known !== undefined) {
      known.attempts += 1;
      return;
    }
    this.batches.set(batchId, { partition, acks, ackedOffsetBefore: this.ackedOffsetMax.get(partition) ?? -1, idempotent, attempts: 1 });
    for (const value of values) this.batchOf.set(value, batchId);
  }

  /** The leader acknowledged the batch at baseOffset. */
  acknowledged(batchId: string, values: readonly string[], baseOffset: number): void {
    const batch = this.batches.get(batchId);
    if (batch === undefined) throw new Error(`batch ${batchId} acknowledged but never sent`);
    values.forEach((value, i) => { this.acked.set(value, { partition: batch.partition, offset: baseOffset + i, acks: batch.acks, batchId }); });
    // Only acks=all offsets are fixed for good: an acks=1 record may be lost and its offset reused.
    if (batch.acks !== -1) return;
    const last = baseOffset + values.length - 1;
    this.ackedOffsetMax.set(batch.partition, Math.max(this.ackedOffsetMax.get(batch.partition) ?? -1, last));
  }

  /** A consumer read `value` at this offset; two reads of one offset must agree. */
  read(partition: number, offset: number, value: string): void {
    const key = `${partition}:${offset}`;
    const earlier = this.reads.get(key);
    if (earlier !== undefined && earlier !== value) this.report('inconsistent-offsets', `data-${partition}@${offset} read as ${earlier}, then as ${value}`);
    this.reads.set(key, value);
  }

  /** A consumer's view of a partition's high watermark (`consumer` names whose view). */
  highWatermark(consumer: string, partition: number, highWatermark: number, from: string): void {
    const key = `${consumer}/${partition}`;
    const before = this.highWatermarks.get(key) ?? 0;
    if (highWatermark < before) this.report('nonmonotonic-hw', `${consumer} saw data-${partition}'s high watermark go back from ${before} to ${highWatermark} (answer from ${from})`);
    this.highWatermarks.set(key, Math.max(before, highWatermark));
  }

  /** Checks the history against every record the final logs hold below their high watermarks. */
  check(stored: Iterable<StoredRecord>, violationsMax: number): DataCounts {
    const found = new Map<string, Array<{ partition: number; offset: number }>>();
    for (const record of stored) {
      const places = found.get(record.value) ?? [];
      places.push({ partition: record.partition, offset: record.offset });
      found.set(record.value, places);
    }
    let reported = 0;
    const report = (kind: DataAnomaly, text: string): void => {
      if (reported++ < violationsMax) this.report(kind, text);
    };
    const counts: DataCounts = { acknowledgedAll: 0, acknowledgedOne: 0, lost: 0, lostUnguaranteed: 0, duplicates: 0, idempotentRetried: 0, consumed: this.reads.size };
    for (const batch of this.batches.values()) if (batch.idempotent && batch.attempts > 1) counts.idempotentRetried += 1;
    for (const [value, places] of found) {
      if (places.length === 1) continue;
      const batchId = this.batchOf.get(value);
      const batch = batchId === undefined ? undefined : this.batches.get(batchId);
      const where = places.map((p) => `data-${p.partition}@${p.offset}`).join(' and ');
      if (batch?.idempotent === true) report('duplicate', `record ${value} is at ${where}, and its batch was sent by an idempotent producer (${batch.attempts} attempts)`);
      else if ((batch?.attempts ?? 0) > 1) counts.duplicates += places.length - 1;
      else report('duplicate', `record ${value} is at ${where}, and its batch was sent once`);
    }
    for (const [key, value] of this.reads) {
      const [partition, offset] = key.split(':').map(Number);
      const places = found.get(value) ?? [];
      if (!places.some((p) => p.partition === partition && p.offset === offset)) {
        report('inconsistent-offsets', `a consumer read ${value} at data-${partition}@${offset}, which the final log does not hold there (${places.length === 0 ? 'nowhere' : places.map((p) => `${p.partition}@${p.offset}`).join(', ')})`);
      }
    }
    for (const [value, at] of this.acked) {
      if (at.acks === -1) counts.acknowledgedAll += 1;
      else counts.acknowledgedOne += 1;
      const places = found.get(value);
      const kept = places?.some((p) => p.partition === at.partition && p.offset === at.offset) === true;
      if (at.acks === 1 && !kept) {
        // acks=1 promises nothing past the leader: its copy may be gone, while earlier attempts
        // of the batch (answers lost, then retried) may have landed elsewhere (sim seed 75).
        counts.lostUnguaranteed += 1;
      } else if (places === undefined) {
        counts.lost += 1;
        report('lost-write', `acknowledged (acks=all) record ${value} at data-${at.partition}@${at.offset} is lost`);
      } else if (!kept) {
        report('inconsistent-offsets', `record ${value} was acknowledged at data-${at.partition}@${at.offset} but is at ${places.map((p) => `${p.partition}@${p.offset}`).join(', ')}`);
      } else {
        // Checked on what was kept: an acks=1 write to a deposed leader may land anywhere, and is lost.
        const before = this.batches.get(at.batchId)?.ackedOffsetBefore ?? -1;
        if (at.offset <= before) report('inversion', `record ${value} (batch ${at.batchId}) is at data-${at.partition}@${at.offset}, below offset ${before} acknowledged (acks=all) before its batch was sent`);
      }
    }
    return counts;
  }
}
