// The typed metadata records the Raft log carries (DESIGN.md, Cluster metadata). One Raft
// entry holds a batch of records that every node applies atomically and in order, e.g. a
// Topic with its Partitions, or a BrokerFence with the PartitionChanges it forces.
// The encoding is JSON with a version per record. The controller writes the log, so a
// record that does not decode is a bug (or a corrupt log) and fails an assertion: it is
// never user input.
import assert from 'node:assert/strict';
import { isValidStoredConfigs, type ConfigValue } from './topic-config.js';

export const RECORD_VERSION = 1;
/** No leader: every ISR member is fenced (and unclean election is off). Kafka's -1. */
export const NO_LEADER = -1;
/** A bound on one batch: a topic of the largest partition count plus its Topic record, twice over. */
export const RECORDS_PER_BATCH_MAX = 20_002;

export interface RegisterBrokerRecord {
  readonly type: 'RegisterBroker';
  readonly brokerId: number;
  readonly address: string;
  /** Absent in records written before brokers had a Kafka listener, and for brokers without one. */
  readonly kafkaAddress?: string;
  readonly brokerEpoch: number;
  readonly incarnationId: string;
}
export interface BrokerFenceRecord { readonly type: 'BrokerFence'; readonly brokerId: number; readonly brokerEpoch: number }
export interface BrokerUnfenceRecord { readonly type: 'BrokerUnfence'; readonly brokerId: number; readonly brokerEpoch: number }
export interface UnregisterBrokerRecord { readonly type: 'UnregisterBroker'; readonly brokerId: number; readonly brokerEpoch: number }
export interface TopicRecord {
  readonly type: 'Topic';
  readonly name: string;
  readonly topicId: string;
  /** Validated overrides only; defaults are not stored. */
  readonly configs: Readonly<Record<string, ConfigValue>>;
}
export interface PartitionRecord {
  readonly type: 'Partition';
  readonly topicId: string;
  readonly partition: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  /**
   * Replicas whose log failed on their broker (disk full, an I/O error): not electable and not
   * taken back into the ISR until their broker reports them online. Absent when none, so
   * records written before the field existed read the same.
   */
  readonly offlineReplicas?: readonly number[];
  /**
   * A reassignment in progress (KIP-455): `replicas` is the target followed by the replicas
   * being removed; the adding ones catch up as followers, and when every target replica is in
   * the ISR the controller drops the removing ones. Absent when none.
   */
  readonly addingReplicas?: readonly number[];
  readonly removingReplicas?: readonly number[];
}
/**
 * A delta on one partition, as KRaft's PartitionChangeRecord: the epochs are not carried but
 * derived on apply. The leader epoch bumps when the leader changes; the partition epoch bumps
 * on every change.
 */
export interface PartitionChangeRecord {
  readonly type: 'PartitionChange';
  readonly topicId: string;
  readonly partition: number;
  readonly leader?: number;
  readonly isr?: readonly number[];
  /** The whole new offline set; empty clears it. */
  readonly offlineReplicas?: readonly number[];
  /** A new replica list (a reassignment starts, completes or is cancelled). */
  readonly replicas?: readonly number[];
  /** The whole new adding and removing sets; empty clears them. */
  readonly addingReplicas?: readonly number[];
  readonly removingReplicas?: readonly number[];
}
export interface RemoveTopicRecord { readonly type: 'RemoveTopic'; readonly topicId: string }
/** Replaces a topic's config overrides as a whole. */
export interface TopicConfigRecord {
  readonly type: 'TopicConfig';
  readonly topicId: string;
  readonly configs: Readonly<Record<string, ConfigValue>>;
}

/** The cluster's identity, written once by the first controller; data dirs are tied to it. */
export interface ClusterIdRecord { readonly type: 'ClusterId'; readonly clusterId: string }

/**
 * A block of producer ids handed to a broker (KIP-730's ProducerIdsRecord): the ids below
 * nextProducerId are taken, so no later block repeats one, whoever the controller is then.
 */
export interface ProducerIdsRecord {
  readonly type: 'ProducerIds';
  readonly brokerId: number;
  readonly brokerEpoch: number;
  readonly nextProducerId: number;
}

/** The reassignment throttle every broker applies to partitions it is being added to (bytes/s; -1: none). */
export interface ReplicationThrottleRecord {
  readonly type: 'ReplicationThrottle';
  readonly bytesPerSec: number;
}

/** A broker being emptied for removal: no new replicas go to it, and its replicas are moved off. Sticky across its restarts. */
export interface BrokerDecommissionRecord {
  readonly type: 'BrokerDecommission';
  readonly brokerId: number;
}

export type MetadataRecord =
  | ClusterIdRecord
  | ReplicationThrottleRecord
  | BrokerDecommissionRecord
  | RegisterBrokerRecord
  | BrokerFenceRecord
  | BrokerUnfenceRecord
  | UnregisterBrokerRecord
  | TopicRecord
  | PartitionRecord
  | PartitionChangeRecord
  | RemoveTopicRecord
  | TopicConfigRecord
  | ProducerIdsRecord;

export type RecordType = MetadataRecord['type'];

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

export function encodeRecords(records: readonly MetadataRecord[]): Uint8Array {
  assert(records.length > 0, 'an entry carries at least one record');
  assert(records.length <= RECORDS_PER_BATCH_MAX, `a batch holds at most ${RECORDS_PER_BATCH_MAX} records`);
  const versioned = records.map((record) => ({ v: RECORD_VERSION, ...record }));
  const bytes = textEncoder.encode(JSON.stringify(versioned));
  // Pair assertion: what we write must read back (catches a record built with a bad shape).
  assert.equal(decodeRecords(bytes).length, records.length);
  return bytes;
}

export function decodeRecords(bytes: Uint8Array): MetadataRecord[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(textDecoder.decode(bytes));
  } catch (error) {
    assert.fail(`metadata entry is not JSON: ${String(error)}`);
  }
  assert(Array.isArray(parsed), 'a metadata entry is an array of records');
  assert(parsed.length > 0, 'a metadata entry carries at least one record');
  assert(parsed.length <= RECORDS_PER_BATCH_MAX, 'a metadata entry is over the batch limit');
  return parsed.map((raw: unknown, i) => decodeRecord(raw, i));
}

type Check = (value: unknown) => boolean;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
const isBrokerId: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 0;
const isEpoch: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 0;
const isLeader: Check = (v) => v === NO_LEADER || isBrokerId(v);
const isNonEmptyString: Check = (v) => typeof v === 'string' && v.length > 0;
const isBrokerSet: Check = (v) => Array.isArray(v) && v.every(isBrokerId) && new Set(v).size === v.length;
const isBrokerList: Check = (v) => isBrokerSet(v) && (v as unknown[]).length > 0;
const isConfigs: Check = (v) => isObject(v) && Object.values(v).every((x) => ['string', 'number', 'boolean'].includes(typeof x)) && isValidStoredConfigs(v);

/** Required fields and their checks per record type; optional fields are listed apart. */
const shapes: Record<RecordType, { required: Record<string, Check>; optional?: Record<string, Check> }> = {
  ClusterId: { required: { clusterId: isNonEmptyString } },
  RegisterBroker: { required: { brokerId: isBrokerId, address: isNonEmptyString, brokerEpoch: isEpoch, incarnationId: isNonEmptyString }, optional: { kafkaAddress: isNonEmptyString } },
  BrokerFence: { required: { brokerId: isBrokerId, brokerEpoch: isEpoch } },
  BrokerUnfence: { required: { brokerId: isBrokerId, brokerEpoch: isEpoch } },
  UnregisterBroker: { required: { brokerId: isBrokerId, brokerEpoch: isEpoch } },
  Topic: { required: { name: isNonEmptyString, topicId: isNonEmptyString, configs: isConfigs } },
  Partition: {
    required: { topicId: isNonEmptyString, partition: isEpoch, replicas: isBrokerList, isr: isBrokerList, leader: isLeader, leaderEpoch: isEpoch, partitionEpoch: isEpoch },
    optional: { offlineReplicas: isBrokerList, addingReplicas: isBrokerList, removingReplicas: isBrokerList },
  },
  PartitionChange: {
    required: { topicId: isNonEmptyString, partition: isEpoch },
    optional: { leader: isLeader, isr: isBrokerList, offlineReplicas: isBrokerSet, replicas: isBrokerList, addingReplicas: isBrokerSet, removingReplicas: isBrokerSet },
  },
  RemoveTopic: { required: { topicId: isNonEmptyString } },
  TopicConfig: { required: { topicId: isNonEmptyString, configs: isConfigs } },
  ReplicationThrottle: { required: { bytesPerSec: (v) => v === -1 || (Number.isSafeInteger(v) && (v as number) > 0) } },
  BrokerDecommission: { required: { brokerId: isBrokerId } },
  ProducerIds: { required: { brokerId: isBrokerId, brokerEpoch: isEpoch, nextProducerId: (v) => Number.isSafeInteger(v) && (v as number) > 0 } },
};

/** Decodes one record from its parsed JSON form (entries and snapshots share this). */
export function decodeRecord(raw: unknown, position: number): MetadataRecord {
  const where = `metadata record ${position}`;
  assert(isObject(raw), `${where} is not an object`);
  assert.equal(raw.v, RECORD_VERSION, `${where} has an unknown version`);
  const type = raw.type;
  assert(typeof type === 'string' && Object.hasOwn(shapes, type), `${where} has an unknown type`);
  const shape = shapes[type as RecordType];
  const record: Record<string, unknown> = { type };
  for (const [field, check] of Object.entries(shape.required)) {
    assert(check(raw[field]), `${where} (${type}) has a bad ${field}`);
    record[field] = raw[field];
  }
  for (const [field, check] of Object.entries(shape.optional ?? {})) {
    if (raw[field] === undefined) continue;
    assert(check(raw[field]), `${where} (${type}) has a bad ${field}`);
    record[field] = raw[field];
  }
  for (const field of Object.keys(raw)) {
    const known = field === 'v' || field === 'type' || Object.hasOwn(shape.required, field) || Object.hasOwn(shape.optional ?? {}, field);
    assert(known, `${where} (${type}) has an unknown field ${field}`);
  }
  if (type === 'PartitionChange') {
    const changed = ['leader', 'isr', 'offlineReplicas', 'replicas', 'addingReplicas', 'removingReplicas'].some((field) => record[field] !== undefined);
    assert(changed, `${where} changes nothing`);
  }
  return record as unknown as MetadataRecord;
}
