// MetadataImage: the cluster metadata every node builds by applying the committed Raft log
// (KRaft's MetadataImage, but one mutable state machine here). Records are applied in log
// order; each record's local invariants are asserted as it is applied, because the active
// controller only writes records it decided against this same image: a record that breaks
// an invariant means the controller (or the log) is wrong, and the node must stop.
//
// State objects (brokers, topics, partitions) are never mutated in place: a change replaces
// the object, so a reader holding a reference sees a consistent older value.
//
// The snapshot is itself a batch of records (as KRaft's snapshots are) with sorted keys, so
// restore() reuses the decoder's checks and the apply path's assertions, and two nodes at
// the same index produce identical bytes.
import assert from 'node:assert/strict';
import type { Entry } from '../../raft/index.js';
import type { StateMachine } from '../quorum/raft-node.js';
import {
  decodeRecord,
  decodeRecords,
  NO_LEADER,
  RECORD_VERSION,
  type MetadataRecord,
  type PartitionChangeRecord,
  type PartitionRecord,
  type ProducerIdsRecord,
  type RegisterBrokerRecord,
  type TopicRecord,
} from './records.js';
import { topicNameCollisionKey, validateTopicName, type ConfigValue, type TopicConfigs } from './topic-config.js';

export interface BrokerState {
  readonly brokerId: number;
  readonly address: string;
  /** host:port of the broker's Kafka-protocol listener (absent: it has none). */
  readonly kafkaAddress?: string;
  readonly brokerEpoch: number;
  readonly incarnationId: string;
  /** A fenced broker leads nothing and is not offered as a leader; new registrations start fenced. */
  readonly fenced: boolean;
  /** Being emptied for removal: no new replicas are placed on it (absent when not). */
  readonly decommissioned?: true;
}

export interface TopicState {
  readonly name: string;
  readonly topicId: string;
  readonly configs: TopicConfigs;
}

/** A partition as the image holds it: its Partition record, with every change applied. */
export type PartitionState = Omit<PartitionRecord, 'type'>;

export interface ImageChange {
  /** The Raft index applied or restored. */
  readonly index: number;
  /** The records applied, or null when the image was replaced by restore(). */
  readonly records: readonly MetadataRecord[] | null;
}
export type ImageListener = (change: ImageChange) => void;

/** Snapshot layout version; the records inside carry their own. */
const SNAPSHOT_VERSION = 1;
const LISTENERS_MAX = 64;

/** Local invariants of one partition: leader ∈ isr ⊆ replicas (unless no leader), no duplicates. */
export function assertPartitionInvariants(p: PartitionState): void {
  const where = `partition ${p.topicId}-${p.partition}`;
  assert(p.replicas.length > 0, `${where} has no replicas`);
  assert.equal(new Set(p.replicas).size, p.replicas.length, `${where} has duplicate replicas`);
  assert(p.isr.length > 0, `${where} has an empty ISR`);
  assert.equal(new Set(p.isr).size, p.isr.length, `${where} has duplicate ISR members`);
  assert(p.isr.every((id) => p.replicas.includes(id)), `${where} has an ISR member that is not a replica`);
  if (p.leader !== NO_LEADER) assert(p.isr.includes(p.leader), `${where} has a leader outside the ISR`);
  const offline = offlineReplicasOf(p);
  assert(p.offlineReplicas === undefined || offline.length > 0, `${where} keeps an empty offline set`);
  assert.equal(new Set(offline).size, offline.length, `${where} has duplicate offline replicas`);
  assert(offline.every((id) => p.replicas.includes(id)), `${where} has an offline replica that is not a replica`);
  assert(!offline.includes(p.leader), `${where} is led by an offline replica`);
  const adding = p.addingReplicas ?? [];
  const removing = p.removingReplicas ?? [];
  assert(p.addingReplicas === undefined || adding.length > 0, `${where} keeps an empty adding set`);
  assert(p.removingReplicas === undefined || removing.length > 0, `${where} keeps an empty removing set`);
  assert(adding.every((id) => p.replicas.includes(id)) && removing.every((id) => p.replicas.includes(id)), `${where} adds or removes a replica it does not list`);
  assert(!adding.some((id) => removing.includes(id)), `${where} both adds and removes a replica`);
  assert(p.replicas.some((id) => !removing.includes(id)), `${where} removes every replica`);
  assert(p.leaderEpoch >= 0 && p.partitionEpoch >= 0, `${where} has a negative epoch`);
}

/** The replicas of a partition whose log is offline on their broker (none when the field is absent). */
export function offlineReplicasOf(p: Pick<PartitionState, 'offlineReplicas'>): readonly number[] {
  return p.offlineReplicas ?? [];
}

/** The partition after a change, with KRaft's epoch rules. Pure; shared by image and commands. */
export function applyPartitionChange(p: PartitionState, change: Omit<PartitionChangeRecord, 'type' | 'topicId' | 'partition'>): PartitionState {
  const leader = change.leader ?? p.leader;
  const { offlineReplicas: _offline, addingReplicas: _adding, removingReplicas: _removing, ...rest } = p;
  const offline = change.offlineReplicas ?? offlineReplicasOf(p);
  const adding = change.addingReplicas ?? p.addingReplicas ?? [];
  const removing = change.removingReplicas ?? p.removingReplicas ?? [];
  const next: PartitionState = {
    ...rest,
    replicas: change.replicas === undefined ? p.replicas : [...change.replicas],
    isr: change.isr === undefined ? p.isr : [...change.isr],
    leader,
    leaderEpoch: leader === p.leader ? p.leaderEpoch : p.leaderEpoch + 1,
    partitionEpoch: p.partitionEpoch + 1,
    ...(offline.length === 0 ? {} : { offlineReplicas: [...offline] }),
    ...(adding.length === 0 ? {} : { addingReplicas: [...adding] }),
    ...(removing.length === 0 ? {} : { removingReplicas: [...removing] }),
  };
  assert(next.leaderEpoch >= p.leaderEpoch);
  assert(next.partitionEpoch > p.partitionEpoch);
  return next;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== 'object' || value === null) return value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) sorted[key] = sortKeys((value as Record<string, unknown>)[key]);
  return sorted;
}

/** JSON with sorted keys at every level: the same state gives the same bytes on every node. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

export class MetadataImage implements StateMachine {
  private clusterIdValue: string | undefined;
  private readonly brokerMap = new Map<number, BrokerState>();
  private readonly topicIdsByName = new Map<string, string>();
  private readonly topicIdsByCollisionKey = new Map<string, string>();
  private readonly topicMap = new Map<string, TopicState>();
  private readonly partitionMap = new Map<string, PartitionState[]>();
  /** The first producer id no block has handed out yet, and the record that moved it last. */
  private nextProducerIdValue = 0;
  private lastProducerIds: ProducerIdsRecord | undefined;
  private replicationThrottleValue = -1;
  private readonly listeners: ImageListener[] = [];
  private applied = 0;

  get lastAppliedIndex(): number {
    return this.applied;
  }

  apply(entry: Entry): void {
    assert(entry.index > this.applied, `entry ${entry.index} applied after ${this.applied}`);
    // An empty normal entry carries no records (the quorum may commit one); it only advances.
    const records = entry.data.length === 0 ? [] : decodeRecords(entry.data);
    for (const record of records) this.applyRecord(record);
    this.applied = entry.index;
    this.notify({ index: entry.index, records });
  }

  snapshot(): Uint8Array {
    const records = this.toRecords().map((record) => ({ v: RECORD_VERSION, ...record }));
    const text = canonicalJson({ v: SNAPSHOT_VERSION, lastAppliedIndex: this.applied, records });
    return new TextEncoder().encode(text);
  }

  restore(data: Uint8Array): void {
    const parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data)) as unknown;
    assert(typeof parsed === 'object' && parsed !== null, 'a metadata snapshot is an object');
    const { v, lastAppliedIndex, records } = parsed as Record<string, unknown>;
    assert.equal(v, SNAPSHOT_VERSION, 'unknown metadata snapshot version');
    assert(Number.isSafeInteger(lastAppliedIndex) && (lastAppliedIndex as number) >= 0, 'bad snapshot index');
    assert(Array.isArray(records));
    this.clusterIdValue = undefined;
    this.brokerMap.clear();
    this.topicIdsByName.clear();
    this.topicIdsByCollisionKey.clear();
    this.topicMap.clear();
    this.partitionMap.clear();
    this.nextProducerIdValue = 0;
    this.lastProducerIds = undefined;
    this.replicationThrottleValue = -1;
    const decoded = records.map((raw: unknown, i) => decodeRecord(raw, i));
    for (const record of decoded) this.applyRecord(record);
    this.applied = lastAppliedIndex as number;
    this.checkInvariants();
    this.notify({ index: this.applied, records: null });
  }

  /** Registers a listener called after every applied entry and restore; returns its remover. */
  onChange(listener: ImageListener): () => void {
    assert(this.listeners.length < LISTENERS_MAX, 'too many image listeners');
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** All registered brokers, by id. */
  /** Set by the first controller; undefined until then. */
  get clusterId(): string | undefined {
    return this.clusterIdValue;
  }

  /** The reassignment throttle in bytes per second, -1 when none. */
  get replicationThrottleBytesPerSec(): number {
    return this.replicationThrottleValue;
  }

  /** The first producer id of the next block (KIP-730); ids below it were handed out. */
  get nextProducerId(): number {
    return this.nextProducerIdValue;
  }

  brokers(): BrokerState[] {
    return [...this.brokerMap.values()].sort((a, b) => a.brokerId - b.brokerId);
  }

  broker(brokerId: number): BrokerState | undefined {
    return this.brokerMap.get(brokerId);
  }

  /** Ids of registered, unfenced brokers, sorted: the brokers that may lead and take replicas. */
  unfencedBrokerIds(): number[] {
    return this.brokers().filter((b) => !b.fenced).map((b) => b.brokerId);
  }

  /** All topics, by name. */
  topics(): TopicState[] {
    return [...this.topicMap.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  topic(name: string): TopicState | undefined {
    const topicId = this.topicIdsByName.get(name);
    return topicId === undefined ? undefined : this.topicMap.get(topicId);
  }

  topicById(topicId: string): TopicState | undefined {
    return this.topicMap.get(topicId);
  }

  /** The topic whose name collides with this one ('.' versus '_'), if any. */
  collidingTopic(name: string): TopicState | undefined {
    const topicId = this.topicIdsByCollisionKey.get(topicNameCollisionKey(name));
    return topicId === undefined ? undefined : this.topicMap.get(topicId);
  }

  /** The partitions of a topic by index, or undefined for an unknown topic id. */
  partitions(topicId: string): readonly PartitionState[] | undefined {
    return this.partitionMap.get(topicId);
  }

  partition(topicId: string, partition: number): PartitionState | undefined {
    return this.partitionMap.get(topicId)?.[partition];
  }

  /**
   * Invariants across records, which hold between batches but not inside one (a BrokerFence
   * comes before the PartitionChanges that move leadership off the broker). O(partitions), so
   * for tests, the simulator and restore rather than every apply.
   */
  checkInvariants(): void {
    for (const [topicId, topic] of this.topicMap) {
      assert.equal(this.topicIdsByName.get(topic.name), topicId);
      const partitions = this.partitionMap.get(topicId);
      assert(partitions !== undefined && partitions.length > 0, `topic ${topic.name} has no partitions`);
      partitions.forEach((p, i) => {
        assert.equal(p.partition, i);
        assertPartitionInvariants(p);
        if (p.leader === NO_LEADER) return;
        const leader = this.brokerMap.get(p.leader);
        assert(leader !== undefined, `partition ${topicId}-${i} is led by unregistered broker ${p.leader}`);
        assert(!leader.fenced, `partition ${topicId}-${i} is led by fenced broker ${p.leader}`);
      });
    }
    assert.equal(this.topicIdsByName.size, this.topicMap.size);
    assert.equal(this.partitionMap.size, this.topicMap.size);
  }

  private notify(change: ImageChange): void {
    for (const listener of [...this.listeners]) listener(change);
  }

  private applyRecord(record: MetadataRecord): void {
    switch (record.type) {
      case 'ClusterId':
        assert(this.clusterIdValue === undefined || this.clusterIdValue === record.clusterId, 'the cluster id is set once');
        this.clusterIdValue = record.clusterId;
        break;
      case 'RegisterBroker': this.applyRegisterBroker(record); break;
      case 'BrokerFence': this.applyFencing(record.brokerId, record.brokerEpoch, true); break;
      case 'BrokerUnfence': this.applyFencing(record.brokerId, record.brokerEpoch, false); break;
      case 'UnregisterBroker': {
        const broker = this.brokerMap.get(record.brokerId);
        assert(broker !== undefined, `unregister of unknown broker ${record.brokerId}`);
        assert.equal(record.brokerEpoch, broker.brokerEpoch, `unregister of broker ${record.brokerId} at a stale epoch`);
        this.brokerMap.delete(record.brokerId);
        break;
      }
      case 'Topic': this.applyTopic(record); break;
      case 'Partition': this.applyPartition(record); break;
      case 'PartitionChange': this.applyPartitionChangeRecord(record); break;
      case 'RemoveTopic': {
        const topic = this.topicMap.get(record.topicId);
        assert(topic !== undefined, `removal of unknown topic ${record.topicId}`);
        this.topicMap.delete(record.topicId);
        this.topicIdsByName.delete(topic.name);
        this.topicIdsByCollisionKey.delete(topicNameCollisionKey(topic.name));
        this.partitionMap.delete(record.topicId);
        break;
      }
      case 'TopicConfig': {
        const topic = this.topicMap.get(record.topicId);
        assert(topic !== undefined, `config change of unknown topic ${record.topicId}`);
        this.topicMap.set(record.topicId, { ...topic, configs: { ...record.configs } });
        break;
      }
      case 'ReplicationThrottle': this.replicationThrottleValue = record.bytesPerSec; break;
      case 'BrokerDecommission': {
        const broker = this.brokerMap.get(record.brokerId);
        assert(broker !== undefined, `decommission of unknown broker ${record.brokerId}`);
        this.brokerMap.set(record.brokerId, { ...broker, decommissioned: true });
        break;
      }
      case 'ProducerIds':
        // Ids are never handed out twice: every block starts where the last one ended.
        assert(record.nextProducerId > this.nextProducerIdValue, `producer ids go back from ${this.nextProducerIdValue} to ${record.nextProducerId}`);
        this.nextProducerIdValue = record.nextProducerId;
        this.lastProducerIds = record;
        break;
    }
  }

  private applyRegisterBroker(record: RegisterBrokerRecord): void {
    const previous = this.brokerMap.get(record.brokerId);
    if (previous !== undefined) {
      assert(record.brokerEpoch > previous.brokerEpoch, `broker ${record.brokerId} registered at a non-increasing epoch`);
    }
    const { brokerId, address, kafkaAddress, brokerEpoch, incarnationId } = record;
    this.brokerMap.set(brokerId, { brokerId, address, ...(kafkaAddress === undefined ? {} : { kafkaAddress }), brokerEpoch, incarnationId, fenced: true, ...(previous?.decommissioned === true ? { decommissioned: true } : {}) });
  }

  private applyFencing(brokerId: number, brokerEpoch: number, fenced: boolean): void {
    const broker = this.brokerMap.get(brokerId);
    assert(broker !== undefined, `fencing change of unknown broker ${brokerId}`);
    assert.equal(brokerEpoch, broker.brokerEpoch, `fencing change of broker ${brokerId} at a stale epoch`);
    assert.notEqual(broker.fenced, fenced, `broker ${brokerId} is already ${fenced ? 'fenced' : 'unfenced'}`);
    this.brokerMap.set(brokerId, { ...broker, fenced });
  }

  private applyTopic(record: TopicRecord): void {
    try {
      validateTopicName(record.name);
    } catch (error) {
      assert.fail(`topic record with an invalid name: ${String(error)}`);
    }
    assert(!this.topicIdsByName.has(record.name), `duplicate topic name ${record.name}`);
    const collisionKey = topicNameCollisionKey(record.name);
    assert(!this.topicIdsByCollisionKey.has(collisionKey), `topic name ${record.name} collides with another`);
    assert(!this.topicMap.has(record.topicId), `duplicate topic id ${record.topicId}`);
    const configs: Record<string, ConfigValue> = { ...record.configs };
    this.topicMap.set(record.topicId, { name: record.name, topicId: record.topicId, configs });
    this.topicIdsByName.set(record.name, record.topicId);
    this.topicIdsByCollisionKey.set(collisionKey, record.topicId);
    this.partitionMap.set(record.topicId, []);
  }

  private applyPartition(record: PartitionRecord): void {
    const partitions = this.partitionMap.get(record.topicId);
    assert(partitions !== undefined, `partition of unknown topic ${record.topicId}`);
    assert.equal(record.partition, partitions.length, `partitions of ${record.topicId} are added in order`);
    const { type: _type, replicas, isr, offlineReplicas, addingReplicas, removingReplicas, ...scalars } = record;
    const state: PartitionState = {
      ...scalars,
      replicas: [...replicas],
      isr: [...isr],
      ...(offlineReplicas === undefined ? {} : { offlineReplicas: [...offlineReplicas] }),
      ...(addingReplicas === undefined ? {} : { addingReplicas: [...addingReplicas] }),
      ...(removingReplicas === undefined ? {} : { removingReplicas: [...removingReplicas] }),
    };
    assertPartitionInvariants(state);
    partitions.push(state);
  }

  private applyPartitionChangeRecord(record: PartitionChangeRecord): void {
    const partitions = this.partitionMap.get(record.topicId);
    const current = partitions?.[record.partition];
    assert(partitions !== undefined && current !== undefined, `change of unknown partition ${record.topicId}-${record.partition}`);
    const next = applyPartitionChange(current, record);
    assertPartitionInvariants(next);
    partitions[record.partition] = next;
  }

  /** The whole image as records, in a deterministic order: brokers by id, topics by name. */
  private toRecords(): MetadataRecord[] {
    const records: MetadataRecord[] = [];
    if (this.clusterIdValue !== undefined) records.push({ type: 'ClusterId', clusterId: this.clusterIdValue });
    for (const broker of this.brokers()) {
      const { brokerId, address, kafkaAddress, brokerEpoch, incarnationId } = broker;
      records.push({ type: 'RegisterBroker', brokerId, address, ...(kafkaAddress === undefined ? {} : { kafkaAddress }), brokerEpoch, incarnationId });
      if (!broker.fenced) records.push({ type: 'BrokerUnfence', brokerId, brokerEpoch });
      if (broker.decommissioned === true) records.push({ type: 'BrokerDecommission', brokerId });
    }
    if (this.replicationThrottleValue !== -1) records.push({ type: 'ReplicationThrottle', bytesPerSec: this.replicationThrottleValue });
    for (const topic of this.topics()) {
      records.push({ type: 'Topic', name: topic.name, topicId: topic.topicId, configs: topic.configs });
      for (const p of this.partitionMap.get(topic.topicId) ?? []) records.push({ type: 'Partition', ...p });
    }
    if (this.lastProducerIds !== undefined) records.push(this.lastProducerIds);
    return records;
  }
}
