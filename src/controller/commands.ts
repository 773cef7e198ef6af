// The active controller's decisions: each turns a request into the records to propose,
// judged against the current image, or refuses it with a DriftwoodError. Pure: the caller
// brings the random start, the new topic id and the set of live brokers.
//
// The records are checked by assertions when applied, so the caller must decide every
// command against an image that already includes its own earlier proposals (KRaft applies
// its records to the controller's in-memory state as it writes them), or propose one batch
// at a time and wait for it to apply. Two decisions against the same stale image (two
// fences of one broker) would break an assertion on every node.
import assert from 'node:assert/strict';
import { DriftwoodError, isDriftwoodError } from '../../storage/errors.js';
import { applyPartitionChange, offlineReplicasOf, type MetadataImage, type PartitionState } from './image.js';
import { change, changeTo, elect, electable } from './partition-change.js';
import { completion } from './reassignment.js';
import { placeReplicas } from './placement.js';
import { NO_LEADER, type MetadataRecord } from './records.js';
import { validateTopicConfigs, validateTopicName } from './topic-config.js';

/** A bound on one preferred-leader election round, so one Raft entry stays small. */
export const PREFERRED_ELECTIONS_PER_BATCH_MAX = 1_000;
/** Producer ids per block (Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE). */
export const PRODUCER_ID_BLOCK_SIZE = 1000;

export interface CreateTopicRequest {
  readonly name: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly configs: Readonly<Record<string, unknown>>;
}

/**
 * A Topic record and its Partition records, one batch. `liveBrokerIds` is filtered to the
 * image's registered unfenced brokers; the first replica of each partition leads it.
 */
export function createTopic(request: CreateTopicRequest, image: MetadataImage, liveBrokerIds: readonly number[], startIndex: number, topicId: string): MetadataRecord[] {
  validateTopicName(request.name);
  if (image.topic(request.name) !== undefined) throw new DriftwoodError('TOPIC_ALREADY_EXISTS', `topic ${request.name} exists`);
  const colliding = image.collidingTopic(request.name);
  if (colliding !== undefined) {
    throw new DriftwoodError('INVALID_TOPIC_EXCEPTION', `topic ${request.name} collides with ${colliding.name} ('.' and '_' collide)`);
  }
  const configs = validateTopicConfigs(request.configs);
  assert(topicId.length > 0 && image.topicById(topicId) === undefined, 'the new topic id is fresh');
  const unfenced = new Set(image.unfencedBrokerIds());
  // A decommissioned broker takes no new replicas.
  const brokers = [...new Set(liveBrokerIds)].filter((id) => unfenced.has(id) && image.broker(id)?.decommissioned !== true).sort((a, b) => a - b);
  const placement = placeReplicas(brokers, request.partitions, request.replicationFactor, startIndex);
  const records: MetadataRecord[] = [{ type: 'Topic', name: request.name, topicId, configs }];
  placement.forEach((replicas, partition) => {
    const leader = replicas[0];
    assert(leader !== undefined);
    records.push({ type: 'Partition', topicId, partition, replicas, isr: replicas, leader, leaderEpoch: 0, partitionEpoch: 0 });
  });
  assert.equal(records.length, request.partitions + 1);
  return records;
}

export function deleteTopic(name: string, image: MetadataImage): MetadataRecord[] {
  const topic = image.topic(name);
  if (topic === undefined) throw new DriftwoodError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${name} does not exist`);
  return [{ type: 'RemoveTopic', topicId: topic.topicId }];
}

/** Replaces a topic's config overrides with validated ones. */
export function alterTopicConfigs(name: string, configs: Readonly<Record<string, unknown>>, image: MetadataImage): MetadataRecord[] {
  const topic = image.topic(name);
  if (topic === undefined) throw new DriftwoodError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${name} does not exist`);
  return [{ type: 'TopicConfig', topicId: topic.topicId, configs: validateTopicConfigs(configs) }];
}

export interface RegisterBrokerRequest {
  readonly brokerId: number;
  readonly address: string;
  /** host:port of the broker's Kafka-protocol listener (absent: it has none). */
  readonly kafkaAddress?: string;
  /** Fresh on every process start: tells a retried registration from a restarted broker. */
  readonly incarnationId: string;
}

export interface Registration {
  readonly records: MetadataRecord[];
  readonly brokerEpoch: number;
}

/**
 * A retry by the same incarnation gets its epoch back and no records. A new incarnation gets
 * a new epoch above both its previous one and the last applied index (so epochs are unique
 * in the cluster, as KRaft's record offsets are), and starts fenced; if the old incarnation
 * was unfenced it is fenced first, moving its leaderships away.
 */
export function registerBroker(request: RegisterBrokerRequest, image: MetadataImage): Registration {
  if (!Number.isSafeInteger(request.brokerId) || request.brokerId < 0) {
    throw new DriftwoodError('INVALID_REQUEST', `broker id must be a non-negative integer, got ${request.brokerId}`);
  }
  if (request.address.length === 0 || request.incarnationId.length === 0) {
    throw new DriftwoodError('INVALID_REQUEST', 'address and incarnation id must not be empty');
  }
  const previous = image.broker(request.brokerId);
  if (request.kafkaAddress?.length === 0) throw new DriftwoodError('INVALID_REQUEST', 'the Kafka address must not be empty');
  // A changed address (HTTP or Kafka) is a new registration, as a restart is: peers and
  // clients must learn it from the log.
  if (previous?.incarnationId === request.incarnationId && previous.address === request.address && previous.kafkaAddress === request.kafkaAddress) {
    return { records: [], brokerEpoch: previous.brokerEpoch };
  }
  const brokerEpoch = Math.max((previous?.brokerEpoch ?? 0) + 1, image.lastAppliedIndex + 1);
  const records = previous === undefined ? [] : fenceBroker(request.brokerId, image);
  const kafkaAddress = request.kafkaAddress === undefined ? {} : { kafkaAddress: request.kafkaAddress };
  records.push({ type: 'RegisterBroker', brokerId: request.brokerId, address: request.address, ...kafkaAddress, brokerEpoch, incarnationId: request.incarnationId });
  return { records, brokerEpoch };
}

function forEachPartition(image: MetadataImage, visit: (p: PartitionState) => void): void {
  for (const topic of image.topics()) {
    for (const p of image.partitions(topic.topicId) ?? []) visit(p);
  }
}

/**
 * Fences a broker (its session expired, or it restarted): a BrokerFence, then for every
 * partition whose ISR holds it, a change removing it from the ISR and, if it led, electing
 * another live ISR member. As KRaft without ELR, the ISR shrinks but never to empty: the
 * last ISR member stays in it and the partition goes leaderless (unless the topic allows an
 * unclean election). Nothing for an unknown or already fenced broker.
 */
export function fenceBroker(brokerId: number, image: MetadataImage, electOutsideIsr = false): MetadataRecord[] {
  const broker = image.broker(brokerId);
  if (broker === undefined || broker.fenced) return [];
  const live = new Set(image.unfencedBrokerIds());
  live.delete(brokerId);
  const records: MetadataRecord[] = [{ type: 'BrokerFence', brokerId, brokerEpoch: broker.brokerEpoch }];
  forEachPartition(image, (p) => {
    if (!p.isr.includes(brokerId) && p.leader !== brokerId) return;
    const shrunk = p.isr.filter((id) => id !== brokerId);
    const isr = shrunk.length === 0 ? p.isr : shrunk;
    const outside = electOutsideIsr ? p.replicas.find((id) => live.has(id) && !isr.includes(id)) : undefined;
    const elected = p.leader !== brokerId && p.leader !== NO_LEADER
      ? { leader: p.leader, isr }
      : outside !== undefined
        ? { leader: outside, isr: [outside] } // the simulator's elect-outside-isr defect
        : elect(p, isr, live, image);
    const record = change(p, elected.leader, elected.isr);
    if (record !== null) records.push(record);
  });
  return records;
}

/**
 * A heartbeat from a caught-up broker unfences it; leaderless partitions it can now lead
 * (it is in their ISR, or a replica where unclean election is on) elect a leader.
 */
export function unfenceBroker(brokerId: number, brokerEpoch: number, image: MetadataImage): MetadataRecord[] {
  const broker = image.broker(brokerId);
  if (broker === undefined) throw new DriftwoodError('BROKER_ID_NOT_REGISTERED', `broker ${brokerId} is not registered`);
  if (broker.brokerEpoch !== brokerEpoch) {
    throw new DriftwoodError('STALE_BROKER_EPOCH', `broker ${brokerId} is at epoch ${broker.brokerEpoch}, not ${brokerEpoch}`);
  }
  if (!broker.fenced) return [];
  const live = new Set(image.unfencedBrokerIds());
  live.add(brokerId);
  const records: MetadataRecord[] = [{ type: 'BrokerUnfence', brokerId, brokerEpoch }];
  forEachPartition(image, (p) => {
    if (p.leader !== NO_LEADER || !p.replicas.includes(brokerId)) return;
    const elected = elect(p, p.isr, live, image);
    const record = change(p, elected.leader, elected.isr);
    if (record !== null) records.push(record);
  });
  return records;
}

/** Fences the broker if needed, then removes its registration. */
export function unregisterBroker(brokerId: number, image: MetadataImage): MetadataRecord[] {
  const broker = image.broker(brokerId);
  if (broker === undefined) throw new DriftwoodError('BROKER_ID_NOT_REGISTERED', `broker ${brokerId} is not registered`);
  const records = fenceBroker(brokerId, image);
  records.push({ type: 'UnregisterBroker', brokerId, brokerEpoch: broker.brokerEpoch });
  return records;
}

export interface AlterPartitionRequest {
  readonly brokerId: number;
  readonly brokerEpoch: number;
  readonly topicId: string;
  readonly partition: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  readonly newIsr: readonly number[];
}

export interface AlterPartitionResult {
  /** Empty when the ISR is already the requested one. */
  readonly records: MetadataRecord[];
  /** The partition as it will be once the records apply (the leader's new partition epoch). */
  readonly partition: PartitionState;
}

function checkAlterPartitionSender(request: AlterPartitionRequest, image: MetadataImage): PartitionState {
  const broker = image.broker(request.brokerId);
  if (broker?.brokerEpoch !== request.brokerEpoch) {
    throw new DriftwoodError('STALE_BROKER_EPOCH', `broker ${request.brokerId} is not registered at epoch ${request.brokerEpoch}`);
  }
  const p = image.partition(request.topicId, request.partition);
  if (p === undefined) throw new DriftwoodError('UNKNOWN_TOPIC_OR_PARTITION', `no partition ${request.topicId}-${request.partition}`);
  if (p.leader !== request.brokerId) {
    throw new DriftwoodError('NOT_LEADER_OR_FOLLOWER', `broker ${request.brokerId} does not lead ${request.topicId}-${request.partition}`, { leader: p.leader });
  }
  if (request.leaderEpoch !== p.leaderEpoch) {
    throw new DriftwoodError('FENCED_LEADER_EPOCH', `leader epoch ${request.leaderEpoch} is not the current ${p.leaderEpoch}`, { leaderEpoch: p.leaderEpoch });
  }
  if (request.partitionEpoch !== p.partitionEpoch) {
    throw new DriftwoodError('INVALID_UPDATE_VERSION', `partition epoch ${request.partitionEpoch} is not the current ${p.partitionEpoch}`, { partitionEpoch: p.partitionEpoch });
  }
  return p;
}

/**
 * The partition leader's ISR shrink or expand (AlterPartition). Refuses a stale broker
 * epoch, a sender that is not the leader, a stale leader or partition epoch, an ISR that is
 * not a set of replicas holding the leader, and new members that are fenced or unknown.
 */
export function alterPartition(request: AlterPartitionRequest, image: MetadataImage): AlterPartitionResult {
  const p = checkAlterPartitionSender(request, image);
  const isr = request.newIsr;
  if (isr.length === 0 || new Set(isr).size !== isr.length || !isr.every((id) => p.replicas.includes(id))) {
    throw new DriftwoodError('INVALID_REQUEST', `ISR [${isr.join(', ')}] is not a set of the replicas [${p.replicas.join(', ')}]`);
  }
  if (!isr.includes(p.leader)) throw new DriftwoodError('INVALID_REQUEST', `ISR [${isr.join(', ')}] lacks the leader ${p.leader}`);
  for (const id of isr) {
    if (p.isr.includes(id)) continue;
    const broker = image.broker(id);
    if (broker === undefined || broker.fenced) throw new DriftwoodError('INELIGIBLE_REPLICA', `broker ${id} is fenced or unknown`);
    if (offlineReplicasOf(p).includes(id)) throw new DriftwoodError('INELIGIBLE_REPLICA', `broker ${id} reported its replica offline`);
  }
  // The last target replica of a reassignment joining the ISR completes it in the same change.
  const record = changeTo(p, completion(p, { isr }, image) ?? { isr });
  if (record === null) return { records: [], partition: p };
  return { records: [record], partition: applyPartitionChange(p, record) };
}

/** One partition of an AlterPartitions: the change its leader asks for. */
export type AlterPartitionItem = Omit<AlterPartitionRequest, 'brokerId' | 'brokerEpoch'>;

/** A leader's ISR changes for many partitions at once (Kafka's AlterPartition is per broker, not per partition). */
export interface AlterPartitionsRequest {
  readonly brokerId: number;
  readonly brokerEpoch: number;
  readonly partitions: readonly AlterPartitionItem[];
}

/** One partition's answer: its state after the request, or why it was refused (a DriftwoodError as JSON). */
export type AlterPartitionAnswer = { readonly state: PartitionState } | { readonly refused: Readonly<Record<string, unknown>> };

/** Partitions one AlterPartitions may carry (it becomes one Raft entry). */
export const ALTER_PARTITIONS_PER_REQUEST_MAX = 1000;

/**
 * Every partition's change decided against the same image, so that they commit as one entry
 * instead of one Raft round each: a broker that opens or moves thousands of partitions would
 * otherwise queue its heartbeats behind thousands of proposals. Each partition is refused or
 * changed on its own; the partitions must be distinct.
 */
export function alterPartitions(request: AlterPartitionsRequest, image: MetadataImage): { records: MetadataRecord[]; answers: AlterPartitionAnswer[] } {
  if (request.partitions.length > ALTER_PARTITIONS_PER_REQUEST_MAX) {
    throw new DriftwoodError('INVALID_REQUEST', `${request.partitions.length} partitions in one AlterPartitions, over ${ALTER_PARTITIONS_PER_REQUEST_MAX}`);
  }
  const seen = new Set(request.partitions.map((item) => `${item.topicId}:${item.partition}`));
  if (seen.size !== request.partitions.length) throw new DriftwoodError('INVALID_REQUEST', 'a partition appears twice in one AlterPartitions');
  const records: MetadataRecord[] = [];
  const answers = request.partitions.map((item): AlterPartitionAnswer => {
    try {
      const outcome = alterPartition({ ...item, brokerId: request.brokerId, brokerEpoch: request.brokerEpoch }, image);
      records.push(...outcome.records);
      return { state: outcome.partition };
    } catch (error) {
      if (!isDriftwoodError(error)) throw error;
      return { refused: error.toJSON() };
    }
  });
  return { records, answers };
}

/**
 * Moves leadership back to preferred replicas (the first of each list) that are live and in
 * the ISR, at most PREFERRED_ELECTIONS_PER_BATCH_MAX partitions per call.
 */
export function electPreferredLeaders(image: MetadataImage): MetadataRecord[] {
  const live = new Set(image.unfencedBrokerIds());
  const records: MetadataRecord[] = [];
  forEachPartition(image, (p) => {
    const preferred = p.replicas[0];
    assert(preferred !== undefined);
    if (records.length >= PREFERRED_ELECTIONS_PER_BATCH_MAX) return;
    if (p.leader === preferred || !electable(p, live).has(preferred) || !p.isr.includes(preferred)) return;
    const record = change(p, preferred, p.isr);
    if (record !== null) records.push(record);
  });
  return records;
}

/** One partition named by a broker's report. */
export interface PartitionRef {
  readonly topicId: string;
  readonly partition: number;
}

/** A broker's report of hosted replicas whose log failed, or opened again after a failure. */
export interface ReplicaStatusRequest {
  readonly brokerId: number;
  readonly brokerEpoch: number;
  readonly offline: readonly PartitionRef[];
  readonly online: readonly PartitionRef[];
}

/**
 * Marks replicas offline or online again (Kafka moves leadership off a failed log directory
 * the same way). An offline replica leaves the ISR unless it is the last member (the ISR
 * never empties, as in fenceBroker), its partition elects another leader if it led, and it
 * is not elected or taken back into the ISR until reported online; then a partition left
 * without a leader elects one. Partitions that are gone, or that the broker does not host,
 * are skipped: the report may cross a topic deletion.
 */
export function alterReplicaStatus(request: ReplicaStatusRequest, image: MetadataImage): MetadataRecord[] {
  const broker = image.broker(request.brokerId);
  if (broker?.brokerEpoch !== request.brokerEpoch) {
    throw new DriftwoodError('STALE_BROKER_EPOCH', `broker ${request.brokerId} is not registered at epoch ${request.brokerEpoch}`);
  }
  const items = [...request.offline, ...request.online];
  if (items.length > ALTER_PARTITIONS_PER_REQUEST_MAX) {
    throw new DriftwoodError('INVALID_REQUEST', `${items.length} partitions in one replica status report, over ${ALTER_PARTITIONS_PER_REQUEST_MAX}`);
  }
  if (new Set(items.map((item) => `${item.topicId}:${item.partition}`)).size !== items.length) {
    throw new DriftwoodError('INVALID_REQUEST', 'a partition appears twice in one replica status report');
  }
  const id = request.brokerId;
  const live = new Set(image.unfencedBrokerIds());
  const records: MetadataRecord[] = [];
  const hosted = (ref: PartitionRef): PartitionState | undefined => {
    const p = image.partition(ref.topicId, ref.partition);
    return p?.replicas.includes(id) === true ? p : undefined;
  };
  for (const p of request.offline.map(hosted)) {
    if (p === undefined || offlineReplicasOf(p).includes(id)) continue;
    const offline = [...offlineReplicasOf(p), id];
    const shrunk = p.isr.filter((member) => member !== id);
    const isr = shrunk.length === 0 ? p.isr : shrunk;
    const elected = p.leader === id ? elect(p, isr, live, image, offline) : { leader: p.leader, isr };
    const record = change(p, elected.leader, elected.isr, offline);
    if (record !== null) records.push(record);
  }
  for (const p of request.online.map(hosted)) {
    if (p === undefined || !offlineReplicasOf(p).includes(id)) continue;
    const offline = offlineReplicasOf(p).filter((member) => member !== id);
    const elected = p.leader === NO_LEADER ? elect(p, p.isr, live, image, offline) : { leader: p.leader, isr: p.isr };
    const record = change(p, elected.leader, elected.isr, offline);
    if (record !== null) records.push(record);
  }
  return records;
}

export interface ProducerIdBlock {
  readonly firstProducerId: number;
  readonly count: number;
}

/**
 * The next block of producer ids for a registered broker (KIP-730's AllocateProducerIds),
 * checked by its broker epoch as Kafka does, so a fenced-off incarnation gets none.
 */
export function allocateProducerIds(request: { brokerId: number; brokerEpoch: number }, image: MetadataImage): { records: MetadataRecord[]; block: ProducerIdBlock } {
  const broker = image.broker(request.brokerId);
  if (broker === undefined) throw new DriftwoodError('BROKER_ID_NOT_REGISTERED', `broker ${request.brokerId} is not registered`);
  if (broker.brokerEpoch !== request.brokerEpoch) {
    throw new DriftwoodError('STALE_BROKER_EPOCH', `broker ${request.brokerId} is at epoch ${broker.brokerEpoch}, not ${request.brokerEpoch}`);
  }
  const firstProducerId = image.nextProducerId;
  const nextProducerId = firstProducerId + PRODUCER_ID_BLOCK_SIZE;
  assert(Number.isSafeInteger(nextProducerId), 'producer ids ran out of safe integers');
  return {
    records: [{ type: 'ProducerIds', brokerId: request.brokerId, brokerEpoch: request.brokerEpoch, nextProducerId }],
    block: { firstProducerId, count: PRODUCER_ID_BLOCK_SIZE },
  };
}
