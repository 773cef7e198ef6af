// The chaos checks on hand-made logs and recordings: a clean run passes, and each kind of
// failure the chaos run exists to find (lost, duplicated, reordered, diverged, consumed
// from nowhere, committed backwards) is reported as a violation with its count.
import t from 'tap';
import { buildBatch } from '../../storage/record-batch.js';
import { checkRun, type ChaosRecordings, type PartitionReplicas } from '../../src/chaos/checks.js';
import { prefixBelow } from '../../src/chaos/replica-log.js';
import { recordValue, type AckedRecord, type CommitObservation, type ConsumedRecord } from '../../src/chaos/workload.js';

/** A log of batches of `perBatch` records with these values, offsets from 0. */
function log(values: readonly string[], perBatch = 2, epoch = 1): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < values.length; i += perBatch) {
    parts.push(buildBatch(values.slice(i, i + perBatch).map((value) => ({ value: Buffer.from(value), timestampMs: 1_700_000_000_000 })), { baseOffset: i, partitionLeaderEpoch: epoch }));
  }
  return Buffer.concat(parts);
}

function partition(values: readonly string[], replicaLogs: readonly Buffer[] = [log(values), log(values), log(values)]): PartitionReplicas {
  return { partition: 0, highWatermark: values.length, replicas: replicaLogs.map((bytes, i) => ({ node: i + 1, prefix: prefixBelow(bytes, values.length) })) };
}

const VALUES = ['0:0', '1:0', '0:1', '1:1', '0:2', '1:2'];
const ACKED: AckedRecord[] = VALUES.map((value, offset) => {
  const [producer, sequence] = value.split(':').map(Number) as [number, number];
  return { producer, sequence, partition: 0, offset };
});
const CONSUMED: ConsumedRecord[] = VALUES.map((value, offset) => ({ member: offset % 2, partition: 0, offset, value }));
const OBSERVED: CommitObservation[] = [
  { member: 0, partition: 0, offset: 2, startMs: 0, endMs: 10 },
  { member: 1, partition: 0, offset: 4, startMs: 20, endMs: 30 },
  { member: 0, partition: 0, offset: 6, startMs: 40, endMs: 50 },
];
const CLEAN: ChaosRecordings = { acked: ACKED, consumed: CONSUMED, observations: OBSERVED };

void t.test('a clean run passes with every count filled in', (t) => {
  const report = checkRun([partition(VALUES)], CLEAN);
  t.same(report.violations, []);
  t.equal(report.violationCount, 0);
  t.match(report, { recordsAcknowledged: 6, recordsInLog: 6, lost: 0, duplicates: 0, outOfOrder: 0, recordsConsumed: 6, consumedAgain: 0, commitsChecked: 3, commitsBackwards: 0, replicasCompared: 3, replicasDiverged: 0 });
  t.end();
});

void t.test('an acknowledged record missing from the log is lost', (t) => {
  const shorter = VALUES.filter((v) => v !== '1:2');
  const report = checkRun([partition(shorter)], { ...CLEAN, consumed: CONSUMED.slice(0, 5) });
  t.equal(report.lost, 1);
  t.match(report.violations.join('\n'), /lost: 1:2 was acknowledged at partition 0 offset 5, the log has nothing there/);
  t.end();
});

void t.test('an acknowledged value written twice is a duplicate; an unacknowledged one is only counted', (t) => {
  const twice = [...VALUES, '0:2', '1:9', '1:9'];
  const consumed = twice.map((value, offset) => ({ member: 0, partition: 0, offset, value }));
  const report = checkRun([partition(twice)], { ...CLEAN, consumed });
  t.equal(report.duplicates, 1);
  t.equal(report.duplicatesUnacknowledged, 1);
  t.match(report.violations.join('\n'), /duplicate: the acknowledged record 0:2 is in the log 2 times/);
  t.end();
});

void t.test("a producer's records out of order in a partition are reported", (t) => {
  const swapped = ['0:0', '1:0', '0:2', '1:1', '0:1', '1:2'];
  const acked = swapped.map((value, offset) => {
    const [producer, sequence] = value.split(':').map(Number) as [number, number];
    return { producer, sequence, partition: 0, offset };
  });
  const consumed = swapped.map((value, offset) => ({ member: 0, partition: 0, offset, value }));
  const report = checkRun([partition(swapped)], { acked, consumed, observations: [] });
  t.equal(report.outOfOrder, 1);
  t.match(report.violations.join('\n'), /order: partition 0 offset 4 has producer 0's record 1 after its record 2/);
  t.end();
});

void t.test('replicas that differ below the high watermark are reported, bytes or length', (t) => {
  // Same values, another leader epoch in the batch header: the bytes differ.
  const report = checkRun([partition(VALUES, [log(VALUES), log(VALUES, 2, 2), log(VALUES.slice(0, 4))])], CLEAN);
  t.equal(report.replicasDiverged, 2);
  t.match(report.violations.join('\n'), /node 2 differs from node 1 below the high watermark 6, first at byte \d+/);
  t.match(report.violations.join('\n'), /partition 0 on node 3: the log ends at offset 4, below the high watermark 6/);
  t.end();
});

void t.test('a record consumed that the log does not hold, and an acknowledged record nobody consumed', (t) => {
  const consumed = [...CONSUMED.slice(1), { member: 1, partition: 0, offset: 9, value: '0:7' }];
  const report = checkRun([partition(VALUES)], { ...CLEAN, consumed });
  t.equal(report.consumedNotInLog, 1);
  t.equal(report.acknowledgedNotConsumed, 1);
  t.match(report.violations.join('\n'), /not consumed: 0:0 \(partition 0 offset 0\)/);
  t.match(report.violations.join('\n'), /member 1 read '0:7' at partition 0 offset 9/);
  t.end();
});

void t.test('committed offsets: lower after an earlier answer ended is backwards; overlapping answers are not compared', (t) => {
  const overlapping = [...OBSERVED, { member: 1, partition: 0, offset: 3, startMs: 25, endMs: 35 }];
  t.equal(checkRun([partition(VALUES)], { ...CLEAN, observations: overlapping }).commitsBackwards, 0, 'overlaps the answer of 4');
  const backwards = [...OBSERVED, { member: 1, partition: 0, offset: 3, startMs: 60, endMs: 70 }];
  const report = checkRun([partition(VALUES)], { ...CLEAN, observations: backwards });
  t.equal(report.commitsBackwards, 1);
  t.match(report.violations.join('\n'), /committed offset read 3 by member 1 after member 0 had read 6/);
  const past = checkRun([partition(VALUES)], { ...CLEAN, observations: [{ member: 0, partition: 0, offset: 7, startMs: 0, endMs: 1 }] });
  t.match(past.violations.join('\n'), /committed offset 7 is past its high watermark 6/);
  t.end();
});

void t.test('prefixBelow stops at the high watermark and refuses a batch across it', (t) => {
  const bytes = log(VALUES);
  const four = prefixBelow(bytes, 4);
  t.equal(four.problem, null);
  t.equal(four.endOffset, 4);
  t.same(four.records.map((r) => r.value), VALUES.slice(0, 4));
  t.ok(four.bytes.equals(log(VALUES.slice(0, 4))), 'the bytes of the first two batches');
  t.match(prefixBelow(bytes, 3).problem, /the batch 2\.\.3 straddles the high watermark 3/);
  const corrupt = Buffer.from(bytes);
  corrupt[bytes.length - 1] = (corrupt[bytes.length - 1] ?? 0) ^ 0xff;
  t.match(prefixBelow(corrupt, 6).problem, /a bad batch at byte \d+ \(offset 4\)/);
  t.equal(recordValue(3, 14), '3:14');
  t.end();
});
