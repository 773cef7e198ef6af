// The Kafka-protocol consumer-group APIs: FindCoordinator, the classic group protocol
// (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), offsets (OffsetCommit, OffsetFetch) and the
// admin views (DescribeGroups, ListGroups), each answered by the group coordinator
// (src/group/coordinator.ts). The offsets are the same ones the HTTP groups commit.
import { isDriftwoodError } from '../../storage/errors.js';
import { OFFSETS_TOPIC } from '../group/group-records.js';
import type { ConnectionInfo } from './dispatcher.js';
import type { KafkaBroker } from './handlers.js';
import { hostPort } from './host-port.js';
import type { RequestHeader } from './protocol/apis.js';
import { kafkaErrorNumber, kafkaErrors } from './protocol/kafka-errors.js';
import type { Struct } from './protocol/spec.js';

export type GroupHandler = (body: Struct, header: RequestHeader, broker: KafkaBroker, connection: ConnectionInfo) => Promise<Struct>;

/** Kafka's offset metadata limit (offset.metadata.max.bytes), in characters as the HTTP side counts it. */
const OFFSET_METADATA_CHARS_MAX = 4096;
/** DescribeGroups' "authorized operations not asked for". */
const NO_AUTHORIZED_OPERATIONS = -2147483648;
const GROUP_KEY_TYPE = 0;

export const groupHandlers: ReadonlyArray<readonly [number, GroupHandler]> = [
  [10, findCoordinator],
  [11, joinGroup],
  [14, syncGroup],
  [12, heartbeat],
  [13, leaveGroup],
  [8, offsetCommit],
  [9, offsetFetch],
  [15, describeGroups],
  [16, listGroups],
];

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** FindCoordinator: the broker leading the group's __consumer_offsets partition (v4: several keys). */
function findCoordinator(body: Struct, header: RequestHeader, broker: KafkaBroker): Promise<Struct> {
  const keyType = (body.keyType as number | undefined) ?? GROUP_KEY_TYPE;
  const find = (key: string): Struct => {
    const failed = (errorCode: number, errorMessage: string): Struct => ({ errorCode, errorMessage, nodeId: -1, host: '', port: -1 });
    if (keyType !== GROUP_KEY_TYPE) return failed(kafkaErrors.INVALID_REQUEST, 'only group coordinators are served: transactions are not supported');
    try {
      const { coordinatorId } = broker.groups.coordinatorFor(key);
      const address = broker.image.broker(coordinatorId)?.kafkaAddress;
      if (address === undefined) return failed(kafkaErrors.COORDINATOR_NOT_AVAILABLE, `broker ${coordinatorId} coordinates ${key} but has no Kafka listener`);
      return { errorCode: 0, errorMessage: null, nodeId: coordinatorId, ...hostPort(address) };
    } catch (error) {
      return failed(kafkaErrorNumber(error), message(error));
    }
  };
  if (header.apiVersion >= 4) return Promise.resolve({ throttleTimeMs: 0, coordinators: (body.coordinatorKeys as string[]).map((key) => ({ key, ...find(key) })) });
  return Promise.resolve({ throttleTimeMs: 0, ...find(body.key as string) });
}

/**
 * JoinGroup: answered when the generation forms. v4+ members join twice (KIP-394): first
 * without an id, answered MEMBER_ID_REQUIRED with one, then with it. Static membership
 * (groupInstanceId) is not supported: such a member joins as a dynamic one.
 */
async function joinGroup(body: Struct, header: RequestHeader, broker: KafkaBroker, connection: ConnectionInfo): Promise<Struct> {
  const version = header.apiVersion;
  const failed = (errorCode: number, memberId: string): Struct => ({
    throttleTimeMs: 0, errorCode, generationId: -1, protocolType: null, protocolName: version >= 7 ? null : '', leader: '', skipAssignment: false, memberId, members: [],
  });
  const sessionTimeoutMs = body.sessionTimeoutMs as number;
  try {
    const answer = await broker.groups.joinClassic(body.groupId as string, {
      memberId: body.memberId as string,
      clientId: header.clientId ?? '',
      clientHost: `/${connection.remoteAddress}`,
      protocolType: body.protocolType as string,
      protocols: body.protocols as ReadonlyArray<{ name: string; metadata: Buffer }>,
      sessionTimeoutMs,
      rebalanceTimeoutMs: version >= 1 ? body.rebalanceTimeoutMs as number : sessionTimeoutMs,
      requireKnownMemberId: version >= 4,
    });
    return {
      throttleTimeMs: 0,
      errorCode: 0,
      generationId: answer.generationId,
      protocolType: answer.protocolType,
      protocolName: answer.protocolName,
      leader: answer.leader,
      skipAssignment: false,
      memberId: answer.memberId,
      members: answer.members.map((m) => ({ memberId: m.memberId, groupInstanceId: null, metadata: m.metadata })),
    };
  } catch (error) {
    if (isDriftwoodError(error, 'MEMBER_ID_REQUIRED')) return failed(kafkaErrors.MEMBER_ID_REQUIRED, String(error.hints.memberId));
    return failed(kafkaErrorNumber(error), body.memberId as string);
  }
}

/** SyncGroup: the leader hands out the assignments; every member gets its own. */
async function syncGroup(body: Struct, _header: RequestHeader, broker: KafkaBroker): Promise<Struct> {
  try {
    const answer = await broker.groups.syncClassic(body.groupId as string, body.memberId as string, body.generationId as number, body.assignments as ReadonlyArray<{ memberId: string; assignment: Buffer }>);
    return { throttleTimeMs: 0, errorCode: 0, protocolType: answer.protocolType, protocolName: answer.protocolName, assignment: answer.assignment };
  } catch (error) {
    return { throttleTimeMs: 0, errorCode: kafkaErrorNumber(error), protocolType: null, protocolName: null, assignment: Buffer.alloc(0) };
  }
}

async function heartbeat(body: Struct, _header: RequestHeader, broker: KafkaBroker): Promise<Struct> {
  try {
    await broker.groups.heartbeatClassic(body.groupId as string, body.memberId as string, body.generationId as number);
    return { throttleTimeMs: 0, errorCode: 0 };
  } catch (error) {
    return { throttleTimeMs: 0, errorCode: kafkaErrorNumber(error) };
  }
}

/** LeaveGroup: one member (v0-2) or several (v3+, each with its own answer). */
async function leaveGroup(body: Struct, header: RequestHeader, broker: KafkaBroker): Promise<Struct> {
  const asked = header.apiVersion >= 3
    ? (body.members as ReadonlyArray<{ memberId: string; groupInstanceId: string | null }>)
    : [{ memberId: body.memberId as string, groupInstanceId: null }];
  try {
    const answers = await broker.groups.leaveClassic(body.groupId as string, asked.map((m) => m.memberId));
    const members = asked.map((m, i) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, errorCode: answers[i] === null || answers[i] === undefined ? 0 : kafkaErrorNumber(answers[i]) }));
    return { throttleTimeMs: 0, errorCode: header.apiVersion >= 3 ? 0 : members[0]?.errorCode ?? 0, members };
  } catch (error) {
    return { throttleTimeMs: 0, errorCode: kafkaErrorNumber(error), members: [] };
  }
}

interface CommitPartition { readonly partitionIndex: number; readonly committedOffset: bigint; readonly committedMetadata: string | null }

/**
 * OffsetCommit: the partitions that can be committed go in one write; each partition is
 * answered with that write's outcome, or why it was left out (an unknown partition, a
 * negative offset, metadata over the limit).
 */
async function offsetCommit(body: Struct, header: RequestHeader, broker: KafkaBroker): Promise<Struct> {
  const topics = body.topics as unknown as ReadonlyArray<{ name: string; partitions: readonly CommitPartition[] }>;
  const refused = new Map<string, number>();
  const offsets: Array<{ topic: string; partition: number; offset: number; metadata: string }> = [];
  for (const topic of topics) {
    const state = topic.name === OFFSETS_TOPIC ? undefined : broker.image.topic(topic.name);
    const count = state === undefined ? 0 : broker.image.partitions(state.topicId)?.length ?? 0;
    for (const p of topic.partitions) {
      const key = `${topic.name}/${p.partitionIndex}`;
      const metadata = p.committedMetadata ?? '';
      if (p.partitionIndex < 0 || p.partitionIndex >= count) refused.set(key, kafkaErrors.UNKNOWN_TOPIC_OR_PARTITION);
      else if (p.committedOffset < 0n || p.committedOffset > BigInt(Number.MAX_SAFE_INTEGER)) refused.set(key, kafkaErrors.INVALID_REQUEST);
      else if (metadata.length > OFFSET_METADATA_CHARS_MAX) refused.set(key, kafkaErrors.OFFSET_METADATA_TOO_LARGE);
      else offsets.push({ topic: topic.name, partition: p.partitionIndex, offset: Number(p.committedOffset), metadata });
    }
  }
  let outcome = 0;
  if (offsets.length > 0) {
    const committer = header.apiVersion >= 1
      ? { memberId: body.memberId as string, generationId: body.generationIdOrMemberEpoch as number }
      : { memberId: '', generationId: -1 };
    try {
      await broker.groups.commitClassic(body.groupId as string, committer, offsets);
    } catch (error) {
      outcome = kafkaErrorNumber(error);
    }
  }
  return {
    throttleTimeMs: 0,
    topics: topics.map((topic) => ({
      name: topic.name,
      partitions: topic.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: refused.get(`${topic.name}/${p.partitionIndex}`) ?? outcome })),
    })),
  };
}

type AskedTopics = ReadonlyArray<{ name: string; partitionIndexes: readonly number[] }> | null;

/** One group's committed offsets as OffsetFetch shows them: those asked for (-1 where none), or all. */
async function groupOffsets(broker: KafkaBroker, group: string, asked: AskedTopics): Promise<{ errorCode: number; topics: Struct[] }> {
  const none = (partitionIndex: number, errorCode: number): Struct => ({ partitionIndex, committedOffset: -1n, committedLeaderEpoch: -1, metadata: '', errorCode });
  try {
    const { offsets } = await broker.groups.fetchOffsets(group);
    const committed = new Map(offsets.map((o) => [`${o.topic}/${o.partition}`, o]));
    const shown = (topic: string, partitionIndex: number): Struct => {
      const found = committed.get(`${topic}/${partitionIndex}`);
      return found === undefined ? none(partitionIndex, 0) : { partitionIndex, committedOffset: BigInt(found.offset), committedLeaderEpoch: -1, metadata: found.metadata, errorCode: 0 };
    };
    if (asked !== null) return { errorCode: 0, topics: asked.map((t) => ({ name: t.name, partitions: t.partitionIndexes.map((p) => shown(t.name, p)) })) };
    const byTopic = new Map<string, number[]>();
    for (const o of offsets) byTopic.set(o.topic, [...(byTopic.get(o.topic) ?? []), o.partition]);
    return { errorCode: 0, topics: [...byTopic].map(([name, partitions]) => ({ name, partitions: partitions.map((p) => shown(name, p)) })) };
  } catch (error) {
    const errorCode = kafkaErrorNumber(error);
    return { errorCode, topics: (asked ?? []).map((t) => ({ name: t.name, partitions: t.partitionIndexes.map((p) => none(p, errorCode)) })) };
  }
}

/** OffsetFetch: v1 carries errors per partition only, v2-7 also for the group, v8 asks for several groups. */
async function offsetFetch(body: Struct, header: RequestHeader, broker: KafkaBroker): Promise<Struct> {
  if (header.apiVersion >= 8) {
    const groups = body.groups as ReadonlyArray<{ groupId: string; topics: AskedTopics }>;
    return {
      throttleTimeMs: 0,
      groups: await Promise.all(groups.map(async (g) => ({ groupId: g.groupId, ...(await groupOffsets(broker, g.groupId, g.topics)) }))),
    };
  }
  const asked = (body.topics as AskedTopics | undefined) ?? null;
  const { errorCode, topics } = await groupOffsets(broker, body.groupId as string, asked);
  return { throttleTimeMs: 0, topics, errorCode };
}

async function describeGroups(body: Struct, _header: RequestHeader, broker: KafkaBroker): Promise<Struct> {
  const groups = await Promise.all((body.groups as string[]).map(async (groupId) => {
    try {
      const d = await broker.groups.describeKafka(groupId);
      return {
        errorCode: 0,
        groupId,
        groupState: d.state,
        protocolType: d.protocolType,
        protocolData: d.protocol,
        members: d.members.map((m) => ({ memberId: m.memberId, groupInstanceId: null, clientId: m.clientId, clientHost: m.clientHost, memberMetadata: m.metadata, memberAssignment: m.assignment })),
        authorizedOperations: NO_AUTHORIZED_OPERATIONS,
      };
    } catch (error) {
      return { errorCode: kafkaErrorNumber(error), groupId, groupState: '', protocolType: '', protocolData: '', members: [], authorizedOperations: NO_AUTHORIZED_OPERATIONS };
    }
  }));
  return { throttleTimeMs: 0, groups };
}

/** ListGroups: the groups this broker coordinates (clients ask every broker), filtered by state in v4. */
function listGroups(body: Struct, header: RequestHeader, broker: KafkaBroker): Promise<Struct> {
  const filter = header.apiVersion >= 4 ? (body.statesFilter as string[]).map((s) => s.toLowerCase()) : [];
  const groups = broker.groups.kafkaGroups()
    .filter((g) => filter.length === 0 || filter.includes(g.state.toLowerCase()))
    .map((g) => ({ groupId: g.group, protocolType: g.protocolType, groupState: g.state }));
  return Promise.resolve({ throttleTimeMs: 0, errorCode: 0, groups });
}
