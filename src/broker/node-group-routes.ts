// The consumer-group endpoints. Members talk to their group's coordinator (the leader of the
// group's __consumer_offsets partition): heartbeats, commits and offset fetches answer
// NOT_COORDINATOR elsewhere, naming the coordinator, as Kafka's do. The admin routes a
// person uses with curl (list, describe, reset, delete) answer on any node, which asks the
// coordinator (or every node, for the list).
import { DriftwoodError } from '../../storage/errors.js';
import { assignorNames } from '../group/assignor.js';
import type { GroupDescription, OffsetLookup, ResetRequest } from '../group/coordinator.js';
import type { HeartbeatRequest } from '../group/group.js';
import { bodyLimits } from '../http/limits.js';
import type { HttpApp } from '../http/node-dual-server.js';
import type { PartitionOffsets } from '../replica/replica-manager.js';
import { REPLICA_OFFSETS_PATH } from './node-admin-routes.js';
import type { Broker } from './node-broker.js';

/** Where a node answers the groups it coordinates (for GET /v1/groups on any node). */
export const LOCAL_GROUPS_PATH = '/internal/groups';
const PEER_WAIT_MS = 5000;
const TOPICS_PER_MEMBER_MAX = 1000;
const OWNED_TOPICS_MAX = 10_000;
const PARTITIONS_PER_TOPIC_MAX = 100_000;
const OFFSETS_PER_COMMIT_MAX = 100_000;

const topicName = { type: 'string', minLength: 1, maxLength: 249 } as const;
const groupParams = {
  type: 'object',
  required: ['group'],
  properties: { group: { type: 'string', minLength: 1, maxLength: 249 } },
} as const;
const partitionList = {
  type: 'array',
  maxItems: OWNED_TOPICS_MAX,
  items: {
    type: 'object',
    required: ['topic', 'partitions'],
    additionalProperties: false,
    properties: { topic: topicName, partitions: { type: 'array', maxItems: PARTITIONS_PER_TOPIC_MAX, items: { type: 'integer', minimum: 0, maximum: PARTITIONS_PER_TOPIC_MAX } } },
  },
} as const;

const heartbeatBody = {
  type: 'object',
  required: ['memberEpoch'],
  additionalProperties: false,
  properties: {
    memberId: { type: ['string', 'null'], minLength: 1, maxLength: 512 },
    memberEpoch: { type: 'integer', minimum: -1, maximum: 2 ** 31 - 1 },
    clientId: { type: 'string', maxLength: 256 },
    subscribedTopics: { type: 'array', minItems: 1, maxItems: TOPICS_PER_MEMBER_MAX, items: topicName },
    ownedPartitions: partitionList,
    sessionTimeoutMs: { type: 'integer', minimum: 0, maximum: 3_600_000 },
    assignor: { type: 'string', enum: assignorNames },
  },
} as const;

const commitBody = {
  type: 'object',
  required: ['offsets'],
  additionalProperties: false,
  properties: {
    memberId: { type: 'string', minLength: 1, maxLength: 512 },
    memberEpoch: { type: 'integer', minimum: 0, maximum: 2 ** 31 - 1 },
    offsets: {
      type: 'array',
      minItems: 1,
      maxItems: OFFSETS_PER_COMMIT_MAX,
      items: {
        type: 'object',
        required: ['topic', 'partition', 'offset'],
        additionalProperties: false,
        properties: { topic: topicName, partition: { type: 'integer', minimum: 0, maximum: PARTITIONS_PER_TOPIC_MAX }, offset: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }, metadata: { type: 'string', maxLength: 4096 } },
      },
    },
  },
} as const;

const resetBody = {
  type: 'object',
  required: ['topic', 'to'],
  additionalProperties: false,
  properties: {
    topic: topicName,
    partitions: { type: 'array', minItems: 1, maxItems: PARTITIONS_PER_TOPIC_MAX, items: { type: 'integer', minimum: 0, maximum: PARTITIONS_PER_TOPIC_MAX } },
    to: { type: 'string', enum: ['earliest', 'latest', 'offset', 'timestamp'] },
    value: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    dryRun: { type: 'boolean' },
  },
} as const;

export function addGroupRoutes(app: HttpApp, current: () => Broker): void {
  const groupBody = { bodyLimit: bodyLimits.groupBodyBytesMax };
  app.get('/v1/groups/:group/coordinator', { schema: { params: groupParams } }, (request) => {
    const { group } = request.params as { group: string };
    const found = current().node.groups.coordinatorFor(group);
    return { group, coordinatorId: found.coordinatorId, coordinatorAddress: found.coordinatorAddress };
  });

  app.post('/v1/groups/:group/heartbeat', { ...groupBody, schema: { params: groupParams, body: heartbeatBody } }, (request) => {
    const { group } = request.params as { group: string };
    const body = request.body as HeartbeatRequest;
    return current().node.groups.heartbeat(group, { ...body, memberId: body.memberId ?? null, host: request.ip });
  });

  app.post('/v1/groups/:group/offsets', { ...groupBody, schema: { params: groupParams, body: commitBody } }, (request) => {
    const { group } = request.params as { group: string };
    const body = request.body as { memberId?: string; memberEpoch?: number; offsets: Array<{ topic: string; partition: number; offset: number; metadata?: string }> };
    return current().node.groups.commit(group, body.memberId, body.memberEpoch, body.offsets);
  });

  app.get('/v1/groups/:group/offsets', { schema: { params: groupParams, querystring: { type: 'object', additionalProperties: false, properties: { topic: topicName } } } }, (request) => {
    const { group } = request.params as { group: string };
    const { topic } = request.query as { topic?: string };
    return current().node.groups.fetchOffsets(group, topic);
  });

  app.get(LOCAL_GROUPS_PATH, async () => {
    const groups = current().node.groups;
    await groups.loadLed();
    return groups.listGroups();
  });

  app.get('/v1/groups', async () => {
    const broker = current();
    await broker.node.groups.loadLed();
    const others = broker.node.image.brokers().filter((b) => b.brokerId !== broker.node.id && !b.fenced);
    const lists = await Promise.all(others.map((b) => broker.peers.json<ReturnType<Broker['node']['groups']['listGroups']>>(b.brokerId, 'GET', LOCAL_GROUPS_PATH, undefined, PEER_WAIT_MS).catch(() => [])));
    return [...broker.node.groups.listGroups(), ...lists.flat()].sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
  });

  app.get('/v1/groups/:group', { schema: { params: groupParams } }, async (request) => {
    const { group } = request.params as { group: string };
    const broker = current();
    const description = await atCoordinator(broker, group, (b) => b.node.groups.describe(group), 'GET', `/internal/groups/${encodeURIComponent(group)}`, undefined);
    return withLag(broker, description);
  });

  app.get('/internal/groups/:group', { schema: { params: groupParams } }, (request) => {
    const { group } = request.params as { group: string };
    return current().node.groups.describe(group);
  });

  app.post('/v1/groups/:group/offsets/reset', { ...groupBody, schema: { params: groupParams, body: resetBody } }, (request) => {
    const { group } = request.params as { group: string };
    const broker = current();
    return atCoordinator(broker, group, (b) => b.node.groups.resetOffsets(group, request.body as ResetRequest, offsetLookup(b)), 'POST', `/v1/groups/${encodeURIComponent(group)}/offsets/reset`, request.body);
  });

  app.delete('/v1/groups/:group', { schema: { params: groupParams } }, async (request, reply) => {
    const { group } = request.params as { group: string };
    const broker = current();
    await atCoordinator(broker, group, (b) => b.node.groups.deleteGroup(group), 'DELETE', `/v1/groups/${encodeURIComponent(group)}`, undefined);
    return reply.status(204).send();
  });
}

/** Runs `here` when this node coordinates the group, else sends the request to the coordinator. */
async function atCoordinator<T>(broker: Broker, group: string, here: (b: Broker) => Promise<T>, method: 'GET' | 'POST' | 'DELETE', path: string, body: unknown): Promise<T> {
  const { coordinatorId } = broker.node.groups.coordinatorFor(group);
  if (coordinatorId === broker.node.id) return here(broker);
  return broker.peers.json<T>(coordinatorId, method, path, body, PEER_WAIT_MS);
}

/** A partition's offset by time (or its bounds), asked of its leader. */
function offsetLookup(broker: Broker): OffsetLookup {
  return async (topic, partition, spec) => {
    const image = broker.node.image;
    const state = image.topic(topic);
    const leader = state === undefined ? undefined : image.partition(state.topicId, partition)?.leader;
    if (leader === undefined || leader < 0) throw new DriftwoodError('NOT_LEADER_OR_FOLLOWER', `${topic}-${partition} has no leader now; retry`);
    if (leader === broker.node.id) {
      const { replica } = await broker.node.replicas.readyLeaderFor(topic, partition, PEER_WAIT_MS);
      await broker.node.replicas.establishedHighWatermark(replica, broker.node.clock.monotonicMs() + PEER_WAIT_MS);
      if (spec === 'earliest') return replica.log.logStartOffset;
      if (spec === 'latest') return replica.highWatermark;
      const found = await replica.log.offsetForTimestamp(spec);
      return found === null || found.offset >= replica.highWatermark ? -1 : found.offset;
    }
    const path = `/v1/topics/${encodeURIComponent(topic)}/partitions/${partition}/offsets?timestamp=${String(spec)}`;
    const answer = await broker.peers.json<{ offset: number }>(leader, 'GET', path, undefined, PEER_WAIT_MS);
    return answer.offset;
  };
}

/** Adds each committed partition's log end (its leader's high watermark) and the lag. */
async function withLag(broker: Broker, description: GroupDescription): Promise<Record<string, unknown>> {
  const image = broker.node.image;
  const topics = [...new Set(description.offsets.map((o) => o.topic))];
  const ends = new Map<string, number>();
  await Promise.all(topics.map(async (name) => {
    const topic = image.topic(name);
    if (topic === undefined) return;
    const leaders = [...new Set((image.partitions(topic.topicId) ?? []).map((p) => p.leader).filter((id) => id >= 0))];
    const reported = await Promise.all(leaders.map((leader) => (leader === broker.node.id
      ? Promise.resolve(broker.node.replicas.leaderOffsets(topic.topicId))
      : broker.peers.json<PartitionOffsets[]>(leader, 'GET', `${REPLICA_OFFSETS_PATH}${encodeURIComponent(topic.topicId)}`, undefined, PEER_WAIT_MS).catch(() => []))));
    for (const o of reported.flat()) ends.set(`${name}/${o.partition}`, o.highWatermark);
  }));
  return {
    ...description,
    offsets: description.offsets.map((o) => {
      const end = ends.get(`${o.topic}/${o.partition}`);
      return { topic: o.topic, partition: o.partition, committed: o.committed, metadata: o.metadata, logEndOffset: end ?? null, lag: end === undefined ? null : Math.max(0, end - o.committed) };
    }),
  };
}
