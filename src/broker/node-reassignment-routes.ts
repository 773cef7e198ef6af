// The HTTP endpoints that move replicas between brokers: reassignments (start, replace,
// cancel, progress), the cluster rebalance and broker decommissioning. Changes go to the
// controller; progress is read from this node's image and from each moving partition's
// leader (how far every replica has copied).
import { DriftwoodError } from '../../storage/errors.js';
import type { HttpApp } from '../http/node-dual-server.js';
import type { PartitionState } from '../controller/image.js';
import { NO_LEADER } from '../controller/records.js';
import { isReassigning, REASSIGNMENTS_PER_REQUEST_MAX, REPLICAS_PER_PARTITION_MAX, targetReplicas } from '../controller/reassignment.js';
import { replicasOn, type PlannedMove } from '../controller/rebalance.js';
import type { PartitionOffsets } from '../replica/replica-manager.js';
import { REPLICA_OFFSETS_PATH } from './node-admin-routes.js';
import type { Broker } from './node-broker.js';

/** A reassignment throttle in bytes/s: at least 1 KiB/s, or -1 to remove it (the admin and internal schemas share it). */
export const throttleBytesPerSecSchema = { anyOf: [{ const: -1 }, { type: 'integer', minimum: 1024, maximum: 2 ** 40 }] } as const;

const reassignBody = {
  type: 'object',
  required: ['partitions'],
  additionalProperties: false,
  properties: {
    partitions: {
      type: 'array',
      minItems: 1,
      maxItems: REASSIGNMENTS_PER_REQUEST_MAX,
      items: {
        type: 'object',
        required: ['topic', 'partition', 'replicas'],
        additionalProperties: false,
        properties: {
          topic: { type: 'string', minLength: 1, maxLength: 249 },
          partition: { type: 'integer', minimum: 0, maximum: 100_000 },
          replicas: { anyOf: [{ type: 'null' }, { type: 'array', items: { type: 'integer', minimum: 1, maximum: 2 ** 31 - 1 }, minItems: 1, maxItems: REPLICAS_PER_PARTITION_MAX }] },
        },
      },
    },
    throttleBytesPerSec: throttleBytesPerSecSchema,
  },
} as const;

/** dryRun is required: a plan that moves data is asked for explicitly. */
const planBody = {
  type: 'object',
  required: ['dryRun'],
  additionalProperties: false,
  properties: { dryRun: { type: 'boolean' }, throttleBytesPerSec: throttleBytesPerSecSchema },
} as const;

const brokerParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'integer', minimum: 1, maximum: 2 ** 31 - 1 } },
} as const;

/** How long progress waits for a moving partition's leader before leaving its copy figures out. */
const PROGRESS_WAIT_MS = 2000;

/** One replica of a moving partition: how far it has copied from the leader. */
export interface ReplicaProgress {
  readonly broker: number;
  readonly role: 'leader' | 'adding' | 'removing' | 'staying';
  readonly inSync: boolean;
  readonly logEndOffset: number | null;
  readonly lag: number | null;
  readonly bytesCopied: number | null;
}

export interface ReassignmentProgress {
  readonly topic: string;
  readonly partition: number;
  readonly replicas: readonly number[];
  readonly target: readonly number[];
  readonly adding: readonly number[];
  readonly removing: readonly number[];
  readonly isr: readonly number[];
  readonly leader: number | null;
  /** The leader's log end and size, what a new replica copies (null when the leader does not answer). */
  readonly leaderLogEndOffset: number | null;
  readonly leaderLogBytes: number | null;
  readonly progress: readonly ReplicaProgress[];
}

export function addReassignmentRoutes(app: HttpApp, current: () => Broker): void {
  app.get('/v1/reassignments', async () => ({
    throttleBytesPerSec: current().node.image.replicationThrottleBytesPerSec,
    partitions: await reassignmentProgress(current()),
  }));
  app.post('/v1/reassignments', { schema: { body: reassignBody } }, async (request, reply) => {
    const body = request.body as { partitions: Array<{ topic: string; partition: number; replicas: number[] | null }>; throttleBytesPerSec?: number };
    const image = current().node.image;
    const reassignments = body.partitions.map((item) => {
      const topic = image.topic(item.topic);
      if (topic === undefined) throw new DriftwoodError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${item.topic} does not exist`);
      return { topicId: topic.topicId, partition: item.partition, replicas: item.replicas };
    });
    await current().node.toController({ kind: 'alter-reassignments', body: { reassignments, ...(body.throttleBytesPerSec === undefined ? {} : { throttleBytesPerSec: body.throttleBytesPerSec }) } });
    return reply.status(202).send({ partitions: await reassignmentProgress(current()) });
  });
  app.post('/v1/cluster/rebalance', { schema: { body: planBody } }, async (request, reply) => {
    const body = request.body as { dryRun: boolean; throttleBytesPerSec?: number };
    const dryRun = body.dryRun;
    const answer = await current().node.toController({ kind: 'rebalance', body: { dryRun, ...(body.throttleBytesPerSec === undefined ? {} : { throttleBytesPerSec: body.throttleBytesPerSec }) } });
    return reply.status(dryRun ? 200 : 202).send({ dryRun, moves: answer.moves.map(describeMove) });
  });
  app.post('/v1/brokers/:id/decommission', { schema: { params: brokerParams, body: planBody } }, async (request, reply) => {
    const { id } = request.params as { id: number };
    const body = request.body as { dryRun: boolean; throttleBytesPerSec?: number };
    const dryRun = body.dryRun;
    const answer = await current().node.toController({ kind: 'decommission-broker', body: { brokerId: id, dryRun, ...(body.throttleBytesPerSec === undefined ? {} : { throttleBytesPerSec: body.throttleBytesPerSec }) } });
    return reply.status(dryRun ? 200 : 202).send({ broker: id, dryRun, moves: answer.moves.map(describeMove), replicasLeft: replicasOn(id, current().node.image) });
  });
}

function describeMove(move: PlannedMove): Record<string, unknown> {
  return { topic: move.topic, partition: move.partition, from: move.from, to: move.to };
}

/** Every partition being reassigned, with how far each replica has copied, in topic order. */
export async function reassignmentProgress(broker: Broker): Promise<ReassignmentProgress[]> {
  const image = broker.node.image;
  const moving: Array<{ topic: string; p: PartitionState }> = [];
  for (const topic of image.topics()) {
    for (const p of image.partitions(topic.topicId) ?? []) if (isReassigning(p)) moving.push({ topic: topic.name, p });
  }
  const byLeader = new Map<number, Set<string>>();
  for (const { p } of moving) {
    if (p.leader === NO_LEADER) continue;
    const topics = byLeader.get(p.leader) ?? new Set<string>();
    topics.add(p.topicId);
    byLeader.set(p.leader, topics);
  }
  const reported = new Map<string, PartitionOffsets>();
  await Promise.all([...byLeader].flatMap(([leader, topicIds]) => [...topicIds].map(async (topicId) => {
    const offsets = leader === broker.node.id
      ? broker.node.replicas.leaderOffsets(topicId)
      : await broker.peers.json<PartitionOffsets[]>(leader, 'GET', `${REPLICA_OFFSETS_PATH}${encodeURIComponent(topicId)}`, undefined, PROGRESS_WAIT_MS).catch(() => []);
    for (const o of offsets) reported.set(`${topicId}/${o.partition}`, o);
  })));
  return moving.map(({ topic, p }) => {
    const o = reported.get(`${p.topicId}/${p.partition}`);
    const adding = p.addingReplicas ?? [];
    const removing = p.removingReplicas ?? [];
    const progress = p.replicas.map((id): ReplicaProgress => {
      const role = id === p.leader ? 'leader' : adding.includes(id) ? 'adding' : removing.includes(id) ? 'removing' : 'staying';
      const follower = o?.followers?.find((f) => f.id === id);
      const logEndOffset = o === undefined ? null : id === p.leader ? o.logEndOffset : follower === undefined || follower.logEndOffset < 0 ? null : follower.logEndOffset;
      return {
        broker: id,
        role,
        inSync: p.isr.includes(id),
        logEndOffset,
        lag: o === undefined || logEndOffset === null ? null : o.logEndOffset - logEndOffset,
        bytesCopied: o === undefined ? null : id === p.leader ? o.logBytes ?? null : follower === undefined || follower.logEndOffset < 0 ? 0 : follower.bytes,
      };
    });
    return {
      topic,
      partition: p.partition,
      replicas: p.replicas,
      target: targetReplicas(p),
      adding,
      removing,
      isr: p.isr,
      leader: p.leader === NO_LEADER ? null : p.leader,
      leaderLogEndOffset: o?.logEndOffset ?? null,
      leaderLogBytes: o?.logBytes ?? null,
      progress,
    };
  });
}
