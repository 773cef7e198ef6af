// The records of the internal topic __consumer_offsets, where group coordinators keep
// committed offsets and group membership. Each is a Kafka record whose key and value are
// JSON: the key says what it is about, the value is its latest state (null: removed). A
// coordinator replays a partition in order and the last record per key wins, so the log
// needs no compaction to be read right; coordinators rewrite the live state from time to
// time (a checkpoint) so that retention can drop old segments (coordinator.ts).
import assert from 'node:assert/strict';
import { assignorNames } from './assignor.js';
import { classicGroupStates, type PersistedClassicGroup } from './classic-group.js';
import type { CommittedOffset, PersistedGroup, PersistedMember, TopicPartitionList } from './group.js';

export const OFFSETS_TOPIC = '__consumer_offsets';

export type GroupRecord =
  | { readonly type: 'offset'; readonly group: string; readonly topic: string; readonly partition: number; readonly value: CommittedOffset | null }
  | { readonly type: 'group'; readonly group: string; readonly value: PersistedGroup | null }
  /** A group's membership under Kafka's classic protocol (the Kafka listener's groups). */
  | { readonly type: 'classic'; readonly group: string; readonly value: PersistedClassicGroup | null }
  /** Marks the end of a full rewrite of the partition's live state at `atMs`. */
  | { readonly type: 'checkpoint'; readonly atMs: number };

export function encodeGroupRecord(record: GroupRecord): { key: Buffer; value: Buffer | null } {
  switch (record.type) {
    case 'offset':
      return { key: json({ type: 'offset', group: record.group, topic: record.topic, partition: record.partition }), value: record.value === null ? null : json(record.value) };
    case 'group':
      return { key: json({ type: 'group', group: record.group }), value: record.value === null ? null : json(record.value) };
    case 'classic':
      return { key: json({ type: 'classic', group: record.group }), value: record.value === null ? null : json(record.value) };
    case 'checkpoint':
      return { key: json({ type: 'checkpoint' }), value: json({ atMs: record.atMs }) };
  }
}

/**
 * Reads one record back. Only coordinators write this topic, so a record that does not
 * decode means a bug or a corrupt log: it fails an assertion rather than being skipped.
 */
export function decodeGroupRecord(key: Buffer | null, value: Buffer | null): GroupRecord {
  assert(key !== null, `${OFFSETS_TOPIC}: a record without a key`);
  const k = parse(key);
  const v = value === null ? null : parse(value);
  assert(isObject(k), `${OFFSETS_TOPIC}: a key that is not an object`);
  switch (k.type) {
    case 'offset': {
      assert(isText(k.group) && isText(k.topic) && isCount(k.partition), `${OFFSETS_TOPIC}: a bad offset key`);
      assert(v === null || (isObject(v) && isCount(v.offset) && typeof v.metadata === 'string' && isCount(v.commitMs)), `${OFFSETS_TOPIC}: a bad offset value`);
      return { type: 'offset', group: k.group, topic: k.topic, partition: k.partition, value: v as CommittedOffset | null };
    }
    case 'group':
      assert(isText(k.group), `${OFFSETS_TOPIC}: a bad group key`);
      assert(v === null || isPersistedGroup(v), `${OFFSETS_TOPIC}: a bad group value`);
      return { type: 'group', group: k.group, value: v };
    case 'classic':
      assert(isText(k.group), `${OFFSETS_TOPIC}: a bad classic group key`);
      assert(v === null || isPersistedClassicGroup(v), `${OFFSETS_TOPIC}: a bad classic group value`);
      return { type: 'classic', group: k.group, value: v };
    case 'checkpoint':
      assert(isObject(v) && isCount(v.atMs), `${OFFSETS_TOPIC}: a bad checkpoint value`);
      return { type: 'checkpoint', atMs: v.atMs };
    default:
      assert.fail(`${OFFSETS_TOPIC}: a record of unknown type ${String(k.type)}`);
  }
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

function parse(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    assert.fail(`${OFFSETS_TOPIC}: a record that is not JSON: ${String(error)}`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isText(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isPartitionList(value: unknown): value is TopicPartitionList[] {
  return Array.isArray(value) && value.every((item) => isObject(item) && isText(item.topic) && Array.isArray(item.partitions) && item.partitions.every(isCount));
}

function isMember(value: unknown): value is PersistedMember {
  return isObject(value) && isText(value.memberId) && typeof value.clientId === 'string' && typeof value.host === 'string' && isCount(value.memberEpoch)
    && Array.isArray(value.subscribedTopics) && value.subscribedTopics.every(isText) && isCount(value.sessionTimeoutMs) && isPartitionList(value.assigned);
}

function isPersistedGroup(value: unknown): value is PersistedGroup {
  return isObject(value) && isCount(value.groupEpoch) && (assignorNames as readonly unknown[]).includes(value.assignor)
    && (value.emptySinceMs === null || isCount(value.emptySinceMs)) && Array.isArray(value.members) && value.members.every(isMember);
}

function isNameOrNull(value: unknown): value is string | null {
  return value === null || typeof value === 'string';
}

function isClassicMember(value: unknown): boolean {
  return isObject(value) && isText(value.memberId) && typeof value.clientId === 'string' && typeof value.clientHost === 'string'
    && isCount(value.sessionTimeoutMs) && isCount(value.rebalanceTimeoutMs) && typeof value.assignment === 'string'
    && Array.isArray(value.protocols) && value.protocols.every((p) => isObject(p) && typeof p.name === 'string' && typeof p.metadata === 'string');
}

function isPersistedClassicGroup(value: unknown): value is PersistedClassicGroup {
  return isObject(value) && (classicGroupStates as readonly unknown[]).includes(value.state) && isCount(value.generationId)
    && isNameOrNull(value.protocolType) && isNameOrNull(value.protocol) && isNameOrNull(value.leader)
    && Array.isArray(value.members) && value.members.every(isClassicMember);
}
