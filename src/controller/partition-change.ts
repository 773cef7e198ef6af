// Building a partition's changes: the one function that turns wanted field values into a
// PartitionChange record (or none), and the one leader election every command uses.
import { applyPartitionChange, assertPartitionInvariants, offlineReplicasOf, type MetadataImage, type PartitionState } from './image.js';
import { electLeader, uncleanElectionAllowed } from './placement.js';
import type { PartitionChangeRecord } from './records.js';

export function sameMembers(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id, i) => b[i] === id);
}

/** A partition's fields a change may set, each as a whole. */
export interface PartitionFields {
  readonly leader: number;
  readonly isr: readonly number[];
  readonly replicas: readonly number[];
  readonly offlineReplicas: readonly number[];
  readonly addingReplicas: readonly number[];
  readonly removingReplicas: readonly number[];
}

export function fieldsOf(p: PartitionState): PartitionFields {
  return { leader: p.leader, isr: p.isr, replicas: p.replicas, offlineReplicas: offlineReplicasOf(p), addingReplicas: p.addingReplicas ?? [], removingReplicas: p.removingReplicas ?? [] };
}

/** The record that takes `p` to `next` (fields left out stay), or null when nothing changes; the result's invariants are asserted. */
export function changeTo(p: PartitionState, next: Partial<PartitionFields>): PartitionChangeRecord | null {
  const now = fieldsOf(p);
  const record: { -readonly [K in keyof PartitionChangeRecord]: PartitionChangeRecord[K] } = { type: 'PartitionChange', topicId: p.topicId, partition: p.partition };
  if (next.leader !== undefined && next.leader !== now.leader) record.leader = next.leader;
  for (const field of ['isr', 'replicas', 'offlineReplicas', 'addingReplicas', 'removingReplicas'] as const) {
    const wanted = next[field];
    if (wanted !== undefined && !sameMembers(wanted, now[field])) record[field] = [...wanted];
  }
  if (Object.keys(record).length === 3) return null;
  assertPartitionInvariants(applyPartitionChange(p, record));
  return record;
}

/** A leader, ISR and offline-set change (the common case). */
export function change(p: PartitionState, leader: number, isr: readonly number[], offline: readonly number[] = offlineReplicasOf(p)): PartitionChangeRecord | null {
  return changeTo(p, { leader, isr, offlineReplicas: offline });
}

/** The brokers that may lead `p`: live ones whose replica of it is not offline. */
export function electable(p: PartitionState, live: ReadonlySet<number>, offline: readonly number[] = offlineReplicasOf(p)): Set<number> {
  return new Set([...live].filter((id) => !offline.includes(id)));
}

/**
 * A leader for `p` with ISR `isr`: an electable ISR member in replica order, or (unclean
 * election) any electable replica but one still being added, which may hold nothing yet.
 */
export function elect(p: PartitionState, isr: readonly number[], live: ReadonlySet<number>, image: MetadataImage, offline: readonly number[] = offlineReplicasOf(p)): { leader: number; isr: readonly number[] } {
  const adding = p.addingReplicas ?? [];
  const candidates = p.replicas.filter((id) => isr.includes(id) || !adding.includes(id));
  return electLeader(candidates, isr, electable(p, live, offline), uncleanElectionAllowed(image, p.topicId));
}

