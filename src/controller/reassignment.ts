// Partition reassignment (KIP-455): moving a partition's replicas to a new set without
// losing a record or dropping below its in-sync replicas. A reassignment starts by listing
// the target replicas followed by the ones to remove; the added replicas open their logs and
// catch up by fetching from the leader like any follower, the leader takes them into the ISR
// when they reach its high watermark, and once every target replica is in the ISR the
// controller completes it in one change: the replicas become the target, the removed ones
// leave the ISR, and leadership moves to a target replica if the leader was being removed.
// Removed replicas then delete their logs (their broker no longer finds them in the image).
// A cancellation returns to the original set, dropping the replicas being added.
import assert from 'node:assert/strict';
import { DriftwoodError } from '../../storage/errors.js';
import { effectiveTopicConfig } from './topic-config.js';
import { changeTo, elect, type PartitionFields } from './partition-change.js';
import type { MetadataImage, PartitionState } from './image.js';
import { NO_LEADER, type MetadataRecord, type PartitionChangeRecord } from './records.js';

/** Partitions one reassignment request may name (it becomes one Raft entry). */
export const REASSIGNMENTS_PER_REQUEST_MAX = 1000;
/** Replicas a partition may be given (Kafka has no lower bound; a bound on everything). */
export const REPLICAS_PER_PARTITION_MAX = 64;

/** One partition's new replica list, or null to cancel its reassignment. */
export interface ReassignmentItem {
  readonly topicId: string;
  readonly partition: number;
  readonly replicas: readonly number[] | null;
}

/** The replicas a partition will have when its reassignment completes (all of them when there is none). */
export function targetReplicas(p: PartitionState): readonly number[] {
  const removing = p.removingReplicas ?? [];
  return p.replicas.filter((id) => !removing.includes(id));
}

/** The replicas a partition had before its reassignment started. */
export function originalReplicas(p: PartitionState): readonly number[] {
  const adding = p.addingReplicas ?? [];
  return p.replicas.filter((id) => !adding.includes(id));
}

/** `p` with other replicas and ISR and no reassignment: the state an election is judged on. */
function settled(p: PartitionState, replicas: readonly number[], isr: readonly number[], adding: readonly number[] = []): PartitionState {
  const { addingReplicas: _adding, removingReplicas: _removing, ...rest } = p;
  return { ...rest, replicas, isr, ...(adding.length === 0 ? {} : { addingReplicas: adding }) };
}

export function isReassigning(p: PartitionState): boolean {
  return p.addingReplicas !== undefined || p.removingReplicas !== undefined;
}

/**
 * Starts, replaces or cancels the reassignments of several partitions, decided against the
 * same image and committed as one entry. The whole request is refused if any item is
 * invalid, so a plan never half starts.
 */
export function alterReassignments(items: readonly ReassignmentItem[], image: MetadataImage, completeEarly = false): MetadataRecord[] {
  if (items.length > REASSIGNMENTS_PER_REQUEST_MAX) {
    throw new DriftwoodError('INVALID_REQUEST', `${items.length} partitions in one reassignment, over ${REASSIGNMENTS_PER_REQUEST_MAX}`);
  }
  if (new Set(items.map((item) => `${item.topicId}:${item.partition}`)).size !== items.length) {
    throw new DriftwoodError('INVALID_REQUEST', 'a partition appears twice in one reassignment');
  }
  const records: MetadataRecord[] = [];
  for (const item of items) {
    const p = image.partition(item.topicId, item.partition);
    const name = `${image.topicById(item.topicId)?.name ?? item.topicId}-${item.partition}`;
    if (p === undefined) throw new DriftwoodError('UNKNOWN_TOPIC_OR_PARTITION', `no partition ${name}`);
    const record = item.replicas === null ? cancel(p, name, image) : start(p, name, item.replicas, image, completeEarly);
    if (record !== null) records.push(record);
  }
  return records;
}

function start(p: PartitionState, name: string, target: readonly number[], image: MetadataImage, completeEarly: boolean): PartitionChangeRecord | null {
  checkTarget(name, target, image);
  const original = originalReplicas(p);
  const adding = target.filter((id) => !original.includes(id));
  const removing = original.filter((id) => !target.includes(id));
  const replicas = [...target, ...removing];
  const isr = p.isr.filter((id) => replicas.includes(id));
  if (isr.length === 0) {
    throw new DriftwoodError('INVALID_REPLICA_ASSIGNMENT', `${name}: the new replicas would leave no in-sync replica (ISR [${p.isr.join(', ')}])`);
  }
  checkInsyncKept(p, name, replicas, isr, image, 'replacing the reassignment in flight');
  const live = new Set(image.unfencedBrokerIds());
  const offlineReplicas = (p.offlineReplicas ?? []).filter((id) => replicas.includes(id));
  const leader = replicas.includes(p.leader) ? p.leader : elect(settled(p, replicas, isr, adding), isr, live, image, offlineReplicas).leader;
  const started = { leader, isr, replicas, offlineReplicas, addingReplicas: adding, removingReplicas: removing };
  if (completeEarly) return changeTo(p, earlyCompletion(started, target, image, p));
  return changeTo(p, completion(p, started, image) ?? started);
}

function cancel(p: PartitionState, name: string, image: MetadataImage): PartitionChangeRecord | null {
  if (!isReassigning(p)) throw new DriftwoodError('NO_REASSIGNMENT_IN_PROGRESS', `${name} is not being reassigned`);
  const replicas = originalReplicas(p);
  const isr = p.isr.filter((id) => replicas.includes(id));
  if (isr.length === 0) {
    throw new DriftwoodError('INVALID_REPLICA_ASSIGNMENT', `${name}: none of the original replicas [${replicas.join(', ')}] is in sync; the reassignment cannot be cancelled now`);
  }
  checkInsyncKept(p, name, replicas, isr, image, 'cancelling the reassignment');
  const offlineReplicas = (p.offlineReplicas ?? []).filter((id) => replicas.includes(id));
  const leader = replicas.includes(p.leader) ? p.leader : elect(settled(p, replicas, isr), isr, new Set(image.unfencedBrokerIds()), image, offlineReplicas).leader;
  return changeTo(p, { leader, isr, replicas, offlineReplicas, addingReplicas: [], removingReplicas: [] });
}

/**
 * A step that drops replicas being added (a cancellation, or a new target replacing one in
 * flight) drops them from the ISR too; refused when that takes the ISR below
 * min.insync.replicas (or the new replica count, if smaller) while it was not, as acks=all
 * would then fail until the replicas left catch up (sim seed 15: a cancellation left one
 * in-sync replica of a partition whose added replica was in sync and original one was not).
 */
function checkInsyncKept(p: PartitionState, name: string, replicas: readonly number[], isr: readonly number[], image: MetadataImage, what: string): void {
  const topic = image.topicById(p.topicId);
  assert(topic !== undefined, `partition ${name} of an unknown topic`);
  const floor = Math.min(effectiveTopicConfig(topic.configs)['min.insync.replicas'], replicas.length);
  if (isr.length >= floor || p.isr.length < floor) return;
  throw new DriftwoodError('NOT_ENOUGH_REPLICAS', `${name}: ${what} now would leave the ISR [${isr.join(', ')}] below min.insync.replicas ${floor}; wait for [${replicas.filter((id) => !isr.includes(id)).join(', ')}] to catch up`);
}

function checkTarget(name: string, target: readonly number[], image: MetadataImage): void {
  if (target.length === 0 || target.length > REPLICAS_PER_PARTITION_MAX) {
    throw new DriftwoodError('INVALID_REPLICA_ASSIGNMENT', `${name}: ${target.length} replicas; give 1 to ${REPLICAS_PER_PARTITION_MAX}`);
  }
  if (new Set(target).size !== target.length) throw new DriftwoodError('INVALID_REPLICA_ASSIGNMENT', `${name}: replicas [${target.join(', ')}] repeat a broker`);
  for (const id of target) {
    const broker = image.broker(id);
    if (broker === undefined) throw new DriftwoodError('INVALID_REPLICA_ASSIGNMENT', `${name}: broker ${id} is not registered`);
    if (broker.decommissioned === true) throw new DriftwoodError('INVALID_REPLICA_ASSIGNMENT', `${name}: broker ${id} is decommissioned`);
  }
}

type Fields = Partial<PartitionFields>;

/**
 * The deliberate defect 'complete-early' (simulator only): the move completes as it starts,
 * the target taken as the ISR whether its new replicas hold anything or not.
 */
function earlyCompletion(started: PartitionFields, target: readonly number[], image: MetadataImage, p: PartitionState): Fields {
  const offlineReplicas = started.offlineReplicas.filter((id) => target.includes(id));
  const leader = target.includes(started.leader) ? started.leader : elect(settled(p, target, target), target, new Set(image.unfencedBrokerIds()), image, offlineReplicas).leader;
  return { leader, isr: target, replicas: target, offlineReplicas, addingReplicas: [], removingReplicas: [] };
}

/**
 * The fields that complete a reassignment whose state would be `next`, or null while some
 * target replica is not in the ISR yet (or no target replica could lead). Shared by the
 * start (a shrink completes at once) and every ISR change the leader asks for.
 */
export function completion(p: PartitionState, next: Fields, image: MetadataImage): Fields | null {
  const replicas = next.replicas ?? p.replicas;
  const removing = next.removingReplicas ?? p.removingReplicas ?? [];
  const adding = next.addingReplicas ?? p.addingReplicas ?? [];
  if (removing.length === 0 && adding.length === 0) return null;
  const isr = next.isr ?? p.isr;
  const target = replicas.filter((id) => !removing.includes(id));
  if (!target.every((id) => isr.includes(id))) return null;
  const offlineReplicas = (next.offlineReplicas ?? p.offlineReplicas ?? []).filter((id) => target.includes(id));
  const leaderNow = next.leader ?? p.leader;
  const leader = target.includes(leaderNow) ? leaderNow : elect(settled(p, target, target), target, new Set(image.unfencedBrokerIds()), image, offlineReplicas).leader;
  if (leader === NO_LEADER && leaderNow !== NO_LEADER) return null; // wait for a target replica that can lead
  return { leader, isr: target, replicas: target, offlineReplicas, addingReplicas: [], removingReplicas: [] };
}
