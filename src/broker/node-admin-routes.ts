// The HTTP admin endpoints (DESIGN.md, HTTP interface): what a person asks with curl or a
// browser. Reads answer from this node's metadata image; changes go to the controller (here
// when this node leads, forwarded otherwise). Every route declares its schema; every failure
// answers {error: CODE, message} with the code's status, never a 500 for bad input
// (src/http/node-error-handler.ts, set up with the app).
import { DriftwoodError } from '../../storage/errors.js';
import type { HttpApp } from '../http/node-dual-server.js';
import { offlineReplicasOf, type MetadataImage, type PartitionState, type TopicState } from '../controller/image.js';
import { NO_LEADER } from '../controller/records.js';
import type { PartitionOffsets } from '../replica/replica-manager.js';
import { OFFSETS_TOPIC } from '../group/group-records.js';
import type { Broker } from './node-broker.js';

const topicNameParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 249 } },
} as const;

const createTopicBody = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 249 },
    partitions: { type: 'integer', minimum: 1, maximum: 10_000 },
    replicationFactor: { type: 'integer', minimum: 1, maximum: 64 },
    configs: { type: 'object', additionalProperties: { anyOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }] }, maxProperties: 64 },
  },
} as const;

/** Where a node answers the offsets of the partitions of a topic it leads. */
export const REPLICA_OFFSETS_PATH = '/internal/replica/offsets/';
/** How long a topic description waits for a partition leader's offsets before leaving them out. */
const OFFSETS_WAIT_MS = 2000;

export function addAdminRoutes(app: HttpApp, current: () => Broker): void {
  app.get('/healthz', () => ({ ok: true }));
  app.get('/readyz', (_request, reply) => {
    const node = current().node;
    const self = node.image.broker(node.id);
    const ready = node.raft.leader !== 0 && self !== undefined && !self.fenced && self.brokerEpoch === node.agent.epoch;
    return reply.status(ready ? 200 : 503).send({ ready, registered: self !== undefined, fenced: self?.fenced ?? true, controller: node.raft.leader });
  });
  app.get('/v1/raft', () => current().node.raft.status());
  app.get('/v1/brokers', () => describeBrokers(current().node.image));
  app.get('/v1/cluster', () => {
    const status = current().node.raft.status();
    return {
      clusterId: current().node.image.clusterId ?? null,
      controller: status.leader,
      raft: { term: status.term, leader: status.leader, commitIndex: status.commit, appliedIndex: status.applied, ...current().node.raft.members() },
      brokers: describeBrokers(current().node.image),
    };
  });
  app.get('/v1/topics', () => current().node.image.topics().map((topic) => ({ name: topic.name, id: topic.topicId, partitions: current().node.image.partitions(topic.topicId)?.length ?? 0 })));
  app.get('/v1/topics/:name', { schema: { params: topicNameParams } }, (request) => {
    const { name } = request.params as { name: string };
    return describeTopic(current(), name);
  });
  app.post('/v1/topics', { schema: { body: createTopicBody } }, async (request, reply) => {
    const body = request.body as { name: string; partitions?: number; replicationFactor?: number; configs?: Record<string, unknown> };
    refuseInternal(body.name);
    const create = { name: body.name, partitions: body.partitions ?? 1, replicationFactor: body.replicationFactor ?? Math.min(3, current().node.image.unfencedBrokerIds().length || 1), configs: body.configs ?? {} };
    await current().node.toController({ kind: 'create-topic', body: create });
    // Answer with this node's view once it has applied the creation (read-your-writes).
    await waitForImage(current(), () => current().node.image.topic(body.name) !== undefined, APPLY_WAIT_MS);
    return reply.status(201).send(await describeTopic(current(), body.name));
  });
  // Kafka's ElectLeaders (type PREFERRED): leadership back to the first replica where it is in the ISR.
  app.post('/v1/elections/preferred', async () => current().node.toController({ kind: 'elect-preferred-leaders', body: {} }));
  app.delete('/v1/topics/:name', { schema: { params: topicNameParams } }, async (request, reply) => {
    const { name } = request.params as { name: string };
    refuseInternal(name);
    await current().node.toController({ kind: 'delete-topic', body: { name } });
    await waitForImage(current(), () => current().node.image.topic(name) === undefined, APPLY_WAIT_MS);
    return reply.status(204).send();
  });
}

/** The coordinators own the internal topic: users neither create, delete nor write it. */
export function refuseInternal(topic: string): void {
  if (topic === OFFSETS_TOPIC) throw new DriftwoodError('INVALID_TOPIC_EXCEPTION', `${OFFSETS_TOPIC} is internal: the group coordinators create and write it`);
}

interface BrokerView { id: number; address: string; kafkaAddress: string | null; state: 'alive' | 'fenced'; epoch: number; decommissioned: boolean; replicas: number }

/** Every broker, with the replicas it holds or is being given (0 once a decommissioned broker may be stopped). */
function describeBrokers(image: MetadataImage): BrokerView[] {
  const replicas = new Map<number, number>();
  for (const topic of image.topics()) {
    for (const p of image.partitions(topic.topicId) ?? []) for (const id of p.replicas) replicas.set(id, (replicas.get(id) ?? 0) + 1);
  }
  return image.brokers().map((state) => ({
    id: state.brokerId,
    address: state.address,
    kafkaAddress: state.kafkaAddress ?? null,
    state: state.fenced ? 'fenced' : 'alive',
    epoch: state.brokerEpoch,
    decommissioned: state.decommissioned === true,
    replicas: replicas.get(state.brokerId) ?? 0,
  }));
}

/** How long a change waits to reach this node's image before the answer says so. */
const APPLY_WAIT_MS = 5000;

/** Resolves once `done()` holds for this node's image, checked at every applied entry. */
function waitForImage(broker: Broker, done: () => boolean, timeoutMs: number): Promise<void> {
  if (done()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new DriftwoodError('REQUEST_TIMED_OUT', `the change is committed but node ${broker.node.id} has not applied it within ${timeoutMs} ms`));
    }, timeoutMs);
    const unsubscribe = broker.node.image.onChange(() => {
      if (!done()) return;
      clearTimeout(timer);
      unsubscribe();
      resolve();
    });
  });
}

/**
 * A topic as this node's image has it, with each partition's offsets as its leader reports
 * them (null when the leader is unknown or does not answer in time).
 */
async function describeTopic(broker: Broker, name: string): Promise<Record<string, unknown>> {
  const topic: TopicState | undefined = broker.node.image.topic(name);
  if (topic === undefined) throw new DriftwoodError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${name} does not exist`);
  const partitions: readonly PartitionState[] = broker.node.image.partitions(topic.topicId) ?? [];
  const leaders = [...new Set(partitions.map((p) => p.leader).filter((id) => id !== NO_LEADER))];
  const reported = await Promise.all(leaders.map((leader) => {
    if (leader === broker.node.id) return Promise.resolve(broker.node.replicas.leaderOffsets(topic.topicId));
    return broker.peers.json<PartitionOffsets[]>(leader, 'GET', `${REPLICA_OFFSETS_PATH}${encodeURIComponent(topic.topicId)}`, undefined, OFFSETS_WAIT_MS).catch(() => []);
  }));
  const offsets = new Map(reported.flat().map((o) => [o.partition, o]));
  return {
    name: topic.name,
    id: topic.topicId,
    configs: topic.configs,
    partitions: partitions.map((p) => {
      const o = offsets.get(p.partition);
      return {
        partition: p.partition,
        leader: p.leader,
        leaderEpoch: p.leaderEpoch,
        replicas: p.replicas,
        isr: p.isr,
        offlineReplicas: offlineReplicasOf(p),
        logStartOffset: o?.logStartOffset ?? null,
        logEndOffset: o?.logEndOffset ?? null,
        highWatermark: o?.highWatermark ?? null,
      };
    }),
  };
}
