// The chaos run's verdict, from what the workload recorded and what the replicas hold on disk
// after the cluster stopped. Pure: the same inputs give the same report.
//   - replicas: every replica of a partition holds the same bytes below the high watermark;
//   - lost: an acknowledged record is not in the log at the offset it was acknowledged with;
//   - duplicates: an acknowledged value is in the log more than once (idempotence);
//   - order: one producer's records in one partition are in the order it sent them;
//   - consumed: every record a member consumed is in the log at its offset, and every
//     acknowledged record was consumed by some member;
//   - commits: the committed offset of a partition, as read back by the members, never goes
//     backwards (an answer that came after another one ended is not lower) and never passes
//     the high watermark.
import assert from 'node:assert/strict';
import type { ReplicaPrefix } from './replica-log.js';
import { parseRecordValue, recordValue, type AckedRecord, type CommitObservation, type ConsumedRecord } from './workload.js';

export interface PartitionReplicas {
  readonly partition: number;
  readonly highWatermark: number;
  readonly replicas: ReadonlyArray<{ readonly node: number; readonly prefix: ReplicaPrefix }>;
}

export interface ChaosRecordings {
  readonly acked: readonly AckedRecord[];
  readonly consumed: readonly ConsumedRecord[];
  readonly observations: readonly CommitObservation[];
}

export interface CheckReport {
  violations: string[];
  /** Violations found in all (the list above keeps the first VIOLATIONS_LISTED_MAX). */
  violationCount: number;
  recordsAcknowledged: number;
  recordsInLog: number;
  lost: number;
  duplicates: number;
  /** Values in the log more than once that were never acknowledged (reported, not a violation). */
  duplicatesUnacknowledged: number;
  outOfOrder: number;
  recordsConsumed: number;
  /** Records a member got again (after a rebalance: at-least-once, reported, not a violation). */
  consumedAgain: number;
  consumedNotInLog: number;
  acknowledgedNotConsumed: number;
  commitsChecked: number;
  commitsBackwards: number;
  replicasCompared: number;
  replicasDiverged: number;
}

const VIOLATIONS_LISTED_MAX = 50;

class Findings {
  readonly listed: string[] = [];
  count = 0;

  add(text: string): void {
    this.count += 1;
    if (this.listed.length < VIOLATIONS_LISTED_MAX) this.listed.push(text);
  }
}

export function checkRun(partitions: readonly PartitionReplicas[], recorded: ChaosRecordings): CheckReport {
  const findings = new Findings();
  const replicas = compareReplicas(partitions, findings);
  const logs = referenceLogs(partitions);
  const written = checkWritten(logs, recorded.acked, findings);
  const consumed = checkConsumed(logs, recorded, findings);
  const highWatermarks = new Map(partitions.map((p) => [p.partition, p.highWatermark]));
  const commitsBackwards = checkCommits(recorded.observations, highWatermarks, findings);
  return {
    violations: findings.listed,
    violationCount: findings.count,
    recordsAcknowledged: recorded.acked.length,
    ...written,
    ...consumed,
    commitsChecked: recorded.observations.length,
    commitsBackwards,
    ...replicas,
  };
}

function compareReplicas(partitions: readonly PartitionReplicas[], findings: Findings): { replicasCompared: number; replicasDiverged: number } {
  let replicasCompared = 0;
  let replicasDiverged = 0;
  for (const { partition, highWatermark, replicas } of partitions) {
    const reference = replicas.find((r) => r.prefix.problem === null);
    if (reference === undefined) {
      findings.add(`partition ${partition}: no replica holds the log up to the high watermark ${highWatermark}`);
    }
    for (const replica of replicas) {
      replicasCompared += 1;
      if (replica.prefix.problem !== null) {
        replicasDiverged += 1;
        findings.add(`partition ${partition} on node ${replica.node}: ${replica.prefix.problem}`);
      } else if (reference !== undefined && !replica.prefix.bytes.equals(reference.prefix.bytes)) {
        replicasDiverged += 1;
        findings.add(`partition ${partition}: node ${replica.node} differs from node ${reference.node} below the high watermark ${highWatermark}, first at byte ${firstDifference(replica.prefix.bytes, reference.prefix.bytes)}`);
      }
    }
  }
  return { replicasCompared, replicasDiverged };
}

function firstDifference(a: Buffer, b: Buffer): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i += 1) if (a[i] !== b[i]) return i;
  return length;
}

/** Per partition: offset -> value, from the first replica that holds the whole prefix. */
function referenceLogs(partitions: readonly PartitionReplicas[]): Map<number, Map<number, string>> {
  const logs = new Map<number, Map<number, string>>();
  for (const { partition, replicas } of partitions) {
    const reference = replicas.find((r) => r.prefix.problem === null) ?? replicas[0];
    logs.set(partition, new Map((reference?.prefix.records ?? []).map((record) => [record.offset, record.value])));
  }
  return logs;
}

function checkWritten(logs: ReadonlyMap<number, ReadonlyMap<number, string>>, acked: readonly AckedRecord[], findings: Findings): Pick<CheckReport, 'recordsInLog' | 'lost' | 'duplicates' | 'duplicatesUnacknowledged' | 'outOfOrder'> {
  let lost = 0;
  for (const record of acked) {
    const value = recordValue(record.producer, record.sequence);
    const found = logs.get(record.partition)?.get(record.offset);
    if (found === value) continue;
    lost += 1;
    findings.add(`lost: ${value} was acknowledged at partition ${record.partition} offset ${record.offset}, the log has ${found === undefined ? 'nothing' : found} there`);
  }
  const ackedValues = new Set(acked.map((record) => recordValue(record.producer, record.sequence)));
  const copies = new Map<string, number>();
  let recordsInLog = 0;
  let outOfOrder = 0;
  for (const [partition, log] of logs) {
    const lastSequence = new Map<number, number>();
    for (const offset of [...log.keys()].sort((a, b) => a - b)) {
      const value = log.get(offset) ?? '';
      recordsInLog += 1;
      copies.set(value, (copies.get(value) ?? 0) + 1);
      const parsed = parseRecordValue(value);
      if (parsed === null) {
        findings.add(`partition ${partition} offset ${offset}: '${value.slice(0, 40)}' is not a value the workload sent`);
        continue;
      }
      const previous = lastSequence.get(parsed.producer) ?? -1;
      if (parsed.sequence <= previous) {
        outOfOrder += 1;
        findings.add(`order: partition ${partition} offset ${offset} has producer ${parsed.producer}'s record ${parsed.sequence} after its record ${previous}`);
      }
      lastSequence.set(parsed.producer, Math.max(previous, parsed.sequence));
    }
  }
  let duplicates = 0;
  let duplicatesUnacknowledged = 0;
  for (const [value, count] of copies) {
    if (count < 2) continue;
    if (!ackedValues.has(value)) {
      duplicatesUnacknowledged += count - 1;
      continue;
    }
    duplicates += count - 1;
    findings.add(`duplicate: the acknowledged record ${value} is in the log ${count} times`);
  }
  return { recordsInLog, lost, duplicates, duplicatesUnacknowledged, outOfOrder };
}

function checkConsumed(logs: ReadonlyMap<number, ReadonlyMap<number, string>>, recorded: ChaosRecordings, findings: Findings): Pick<CheckReport, 'recordsConsumed' | 'consumedAgain' | 'consumedNotInLog' | 'acknowledgedNotConsumed'> {
  const seen = new Set<string>();
  let consumedAgain = 0;
  let consumedNotInLog = 0;
  for (const record of recorded.consumed) {
    const key = `${record.partition}@${record.offset}`;
    if (seen.has(key)) consumedAgain += 1;
    seen.add(key);
    const found = logs.get(record.partition)?.get(record.offset);
    if (found === record.value) continue;
    consumedNotInLog += 1;
    findings.add(`consumed: member ${record.member} read '${record.value}' at partition ${record.partition} offset ${record.offset}; the log has ${found === undefined ? 'nothing' : `'${found}'`} there below the high watermark`);
  }
  let acknowledgedNotConsumed = 0;
  for (const record of recorded.acked) {
    if (seen.has(`${record.partition}@${record.offset}`)) continue;
    acknowledgedNotConsumed += 1;
    findings.add(`not consumed: ${recordValue(record.producer, record.sequence)} (partition ${record.partition} offset ${record.offset}) was acknowledged but no member read it`);
  }
  return { recordsConsumed: recorded.consumed.length, consumedAgain, consumedNotInLog, acknowledgedNotConsumed };
}

/**
 * An answer that began after another answer for the same partition had ended must not be
 * lower: the committed offset is one register the coordinator moves forward. Answers that
 * overlap in time may come in either order, so they are not compared.
 */
function checkCommits(observations: readonly CommitObservation[], highWatermarks: ReadonlyMap<number, number>, findings: Findings): number {
  let backwards = 0;
  const byPartition = new Map<number, CommitObservation[]>();
  for (const o of observations) {
    const list = byPartition.get(o.partition);
    if (list === undefined) byPartition.set(o.partition, [o]);
    else list.push(o);
  }
  for (const [partition, list] of byPartition) {
    const hw = highWatermarks.get(partition);
    const byEnd = [...list].sort((a, b) => a.endMs - b.endMs);
    const byStart = [...list].sort((a, b) => a.startMs - b.startMs);
    let ended = 0;
    let highest: CommitObservation | null = null;
    for (const o of byStart) {
      assert.ok(o.startMs <= o.endMs, 'an observation ends after it starts');
      for (; ended < byEnd.length && (byEnd[ended] as CommitObservation).endMs < o.startMs; ended += 1) {
        const done = byEnd[ended] as CommitObservation;
        if (highest === null || done.offset > highest.offset) highest = done;
      }
      if (highest !== null && o.offset < highest.offset) {
        backwards += 1;
        findings.add(`commits: partition ${partition}'s committed offset read ${o.offset} by member ${o.member} after member ${highest.member} had read ${highest.offset}`);
      }
      if (hw !== undefined && o.offset > hw) findings.add(`commits: partition ${partition}'s committed offset ${o.offset} is past its high watermark ${hw}`);
    }
  }
  return backwards;
}
