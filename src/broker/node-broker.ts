// One driftwood node as a real process: the node core (BrokerNode: metadata quorum,
// controller, broker agent, replica manager) on real ports (LevelDB, partition logs on the
// file system, the clock, HTTP/2 to peers), and the HTTP endpoints (admin, data, internal)
// on one port for HTTP/1.1 and HTTP/2.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DriftwoodError, isDriftwoodError } from '../../storage/errors.js';
import type { KV } from '../../storage/kv.js';
import { nodeClock } from '../../storage/node-clock.js';
import { NodeDisk } from '../../storage/node-disk.js';
import { openLevelKV } from '../../storage/node-kv.js';
import { nodeRng } from '../../storage/node-rng.js';
import type { NodeConfig } from '../config.js';
import { defaultControllerConfig } from '../controller/controller.js';
import { ALTER_PARTITIONS_PER_REQUEST_MAX } from '../controller/commands.js';
import { REASSIGNMENTS_PER_REQUEST_MAX, REPLICAS_PER_PARTITION_MAX } from '../controller/reassignment.js';
import type { MetadataImage } from '../controller/image.js';
import { createHttpApp, type HttpApp } from '../http/node-dual-server.js';
import { bodyLimits, fetchLimits } from '../http/limits.js';
import { PeerClients } from '../http/node-peer-clients.js';
import { callerOf } from '../http/security.js';
import { peerUrl } from '../peers.js';
import { decodeMessages } from '../quorum/message-codec.js';
import { HttpTransport, RAFT_MESSAGES_PATH } from '../quorum/node-http-transport.js';
import { defaultRaftTiming } from '../quorum/raft-node.js';
import { defaultReplicaManagerConfig } from '../replica/replica-manager.js';
import { readIdentity, writeIdentity } from '../node-preflight.js';
import { BrokerNode } from './broker-node.js';
import { controllerRequestKinds, type ControllerRequest, type ControllerRequestKind } from './controller-requests.js';
import { encodeFetchResponse } from '../replica/fetch-codec.js';
import type { ReplicaFetchRequest } from '../replica/fetch-protocol.js';
import { HttpReplicaChannel, REPLICA_FETCH_PATH } from '../replica/node-replica-channel.js';
import { addAdminRoutes, REPLICA_OFFSETS_PATH, refuseInternal } from './node-admin-routes.js';
import { addDataRoutes, offsetForTimestamp } from './node-data-routes.js';
import { addGroupRoutes } from './node-group-routes.js';
import { addReassignmentRoutes, throttleBytesPerSecSchema } from './node-reassignment-routes.js';
import { CONTROLLER_PATH_PREFIX, HttpControllerChannel } from './node-controller-channel.js';
import { createNodeLogger, logPort } from './node-logger.js';
import { notStartedDispatcher, type KafkaDispatcher } from '../kafka/dispatcher.js';
import { KafkaHandlers } from '../kafka/handlers.js';
import { kafkaAdminBroker } from './node-kafka-admin.js';
import { KafkaServer } from '../kafka/node-kafka-server.js';
import { NodeMetrics } from './node-metrics.js';
import type { Logger } from 'pino';

/** The longest a Kafka client's produce may wait for its acks (its timeoutMs is capped here, as the HTTP route caps its own). */
const KAFKA_PRODUCE_TIMEOUT_MS_MAX = 300_000;

export interface BrokerTiming {
  /** How often the broker agent heartbeats to the controller. */
  readonly heartbeatMs: number;
  /** A request forwarded to the controller that has not answered by then fails. */
  readonly forwardTimeoutMs: number;
}

export const defaultBrokerTiming: BrokerTiming = { heartbeatMs: 250, forwardTimeoutMs: 5000 };

export interface Broker {
  readonly config: NodeConfig;
  readonly node: BrokerNode;
  readonly app: HttpApp;
  readonly peers: PeerClients;
  /** The Kafka-protocol listener (--kafka-listen), or null when the node has none. */
  readonly kafka: KafkaServer | null;
  close(): Promise<void>;
}

export async function startBroker(config: NodeConfig, timing: BrokerTiming = defaultBrokerTiming, logger: Logger = createNodeLogger({ nodeId: config.id, format: 'json', level: 'silent' })): Promise<Broker> {
  await mkdir(config.dataDir, { recursive: true });
  const kv = await openLevelKV(join(config.dataDir, 'metadata'));
  const security = config.security ?? {};
  const app = createHttpApp({ bodyLimitBytes: bodyLimits.adminBodyBytesMax, logger, security });
  const metrics = new NodeMetrics();
  // The one map of where other nodes are: the peers list, then brokers that registered since
  // (followAddresses). The Raft transport and the peer clients (controller, replica fetch and
  // offsets requests) read it at every request.
  const addresses = new Map(config.peers.filter((peer) => peer.id !== config.id).map((peer) => [peer.id, peerUrl(peer, security.tls !== undefined)]));
  const caller = callerOf(security);
  const transport = new HttpTransport({ peers: addresses, caller, requestTimeoutMs: defaultRaftTiming.requestTimeoutMs, queuedMessagesMax: 10_000 });
  const peers = new PeerClients(addresses, caller);
  const channel = new HttpControllerChannel(peers, timing.forwardTimeoutMs);
  const ids = config.peers.map((peer) => peer.id);
  const voters = config.voters === undefined ? ids : [...config.voters];
  // A node not in the peers list joins the running cluster as an observer of the quorum.
  const members = ids.includes(config.id) ? ids : [...ids, config.id];
  // Routes go in before listening; until the node is up they answer NOT_CONTROLLER (retry).
  let ready: Broker | null = null;
  const current = (): Broker => {
    if (ready === null) throw new DriftwoodError('NOT_CONTROLLER', `node ${config.id} is starting; retry`);
    return ready;
  };
  metrics.attach(app, () => ready);
  addInternalRoutes(app, current);
  addAdminRoutes(app, current);
  addDataRoutes(app, current);
  addGroupRoutes(app, current);
  addReassignmentRoutes(app, current);
  let node: BrokerNode;
  let kafka: KafkaServer | null = null;
  try {
    await app.listen({ host: config.host, port: config.port });
    // Bound before the broker registers its Kafka address, so the address works once listed;
    // until the broker is up, requests close their connection (the client retries).
    let handlers: KafkaHandlers | null = null;
    const dispatcher: KafkaDispatcher = {
      handle: (frame, connection) => {
        if (ready === null) return notStartedDispatcher.handle(frame, connection);
        const broker = ready;
        handlers ??= new KafkaHandlers({
          ...kafkaAdminBroker(broker, logger.child({ component: 'kafka' })),
          image: broker.node.image,
          controllerId: () => broker.node.raft.leader,
          produce: (topic, partition, batches, acks, timeoutMs) => {
            refuseInternal(topic); // the group coordinators alone write it, as over HTTP
            return broker.node.replicas.produce(topic, partition, batches, acks, Math.min(Math.max(timeoutMs, 1), KAFKA_PRODUCE_TIMEOUT_MS_MAX));
          },
          initProducerId: () => broker.node.initProducerId(),
          consume: (topic, partition, offset, options) => broker.node.replicas.consume(topic, partition, offset, options),
          waitForAny: (asks, waitMs) => broker.node.replicas.waitForAny(asks, waitMs),
          offsetForTimestamp: (topic, partition, timestamp) => offsetForTimestamp(broker, topic, partition, timestamp),
          groups: broker.node.groups,
        });
        return handlers.handle(frame, connection);
      },
    };
    if (config.kafka !== undefined) kafka = await KafkaServer.listen({ host: config.kafka.host, port: config.kafka.port, dispatcher, log: logger.child({ component: 'kafka' }) });
    node = await BrokerNode.start(
      {
        id: config.id,
        address: `${config.host}:${config.port}`,
        ...(config.kafka === undefined ? {} : { kafkaAddress: config.kafka.advertisedAddress }),
        raft: { ...defaultRaftTiming, id: config.id, voters, observers: members.filter((id) => !voters.includes(id)) },
        controller: defaultControllerConfig,
        replica: defaultReplicaManagerConfig,
        heartbeatMs: timing.heartbeatMs,
      },
      {
        clock: nodeClock,
        rng: nodeRng,
        kv,
        disk: new NodeDisk(join(config.dataDir, 'logs')),
        raftTransport: transport,
        controllerChannel: channel,
        replicaChannel: new HttpReplicaChannel(peers, timing.forwardTimeoutMs),
        log: logPort(logger),
        fsyncDurations: metrics.fsyncDurations,
        commitDurations: metrics.commitDurations,
      },
      {
        onFatal: (error) => {
          // A refused join is a configuration error (exit 2, as INVALID_CONFIG), not a crash.
          const refused = isDriftwoodError(error, 'INCONSISTENT_VOTER_SET');
          logger.fatal({ err: error }, refused ? `the cluster refused this node: ${(error as Error).message}` : 'fatal: the node stops');
          process.exit(refused ? 2 : 70);
        },
      },
    );
  } catch (error) {
    await kafka?.close();
    await shutdown(app, transport, peers, kv);
    throw error;
  }
  const broker: Broker = {
    config,
    node,
    app,
    peers,
    kafka,
    close: async () => {
      // Kafka clients first: nothing new reaches the node while it stops.
      await kafka?.close();
      await node.close();
      await shutdown(app, transport, peers, kv);
    },
  };
  ready = broker;
  followAddresses(config, node.image, addresses, security.tls !== undefined);
  await tieDataDirToCluster(config, node.image, logger);
  return broker;
}

/**
 * Keeps `addresses` up to date with the brokers registered in the metadata, so this node
 * reaches a broker that joined (or registered again at a new address) without a restart.
 * The peers list stays authoritative for its own ids: the voters must be reachable before any
 * metadata is known, and a node's registered address is its --listen, which may be a wildcard.
 */
function followAddresses(config: NodeConfig, image: MetadataImage, addresses: Map<number, string>, tls: boolean): void {
  const fromPeersList = new Set(config.peers.map((peer) => peer.id));
  const sync = (): void => {
    for (const broker of image.brokers()) {
      if (broker.brokerId === config.id || fromPeersList.has(broker.brokerId)) continue;
      const url = `${tls ? 'https' : 'http'}://${broker.address}`;
      if (addresses.get(broker.brokerId) !== url) addresses.set(broker.brokerId, url);
    }
  };
  image.onChange(sync);
  sync();
}

/**
 * Records the cluster id in the data directory once the metadata log names it, and refuses
 * to go on in a cluster other than the one the directory belongs to (Kafka's
 * INCONSISTENT_CLUSTER_ID): the process exits with 2.
 */
async function tieDataDirToCluster(config: NodeConfig, image: MetadataImage, logger: Logger): Promise<void> {
  const identity = await readIdentity(config.dataDir);
  let recorded = identity?.clusterId;
  const check = (): void => {
    const clusterId = image.clusterId;
    if (clusterId === undefined || clusterId === recorded) return;
    if (recorded !== undefined) {
      logger.fatal({ dataDir: config.dataDir, recordedClusterId: recorded, clusterId }, `data directory ${config.dataDir} belongs to cluster ${recorded}, but this cluster is ${clusterId}`);
      process.exit(2);
    }
    recorded = clusterId;
    writeIdentity(config.dataDir, { version: 1, nodeId: config.id, clusterId }).catch((error: unknown) => {
      logger.error({ dataDir: config.dataDir, err: error }, 'cannot record the cluster id in the data directory');
    });
  };
  image.onChange(check);
  check();
}

function addInternalRoutes(app: HttpApp, current: () => Broker): void {
  const internal = { bodyLimit: bodyLimits.internalBodyBytesMax };
  app.post(RAFT_MESSAGES_PATH, internal, (request, reply) => {
    const broker = current();
    for (const message of decodeMessages(request.body)) {
      if (message.to !== broker.config.id) throw new DriftwoodError('INVALID_REQUEST', `message for node ${message.to} reached node ${broker.config.id}`);
      broker.node.raft.receive(message);
    }
    return reply.status(204).send();
  });
  // The offsets of the partitions of a topic this node leads (for topic descriptions on any node).
  app.get(`${REPLICA_OFFSETS_PATH}:topicId`, { schema: { params: { type: 'object', required: ['topicId'], properties: { topicId: { type: 'string', minLength: 1, maxLength: 64 } } } } }, (request) => {
    const { topicId } = request.params as { topicId: string };
    return current().node.replicas.leaderOffsets(topicId);
  });
  // A follower's fetch session request (leader-pull replication); answered in binary.
  app.post(REPLICA_FETCH_PATH, { ...internal, schema: { body: replicaFetchSchema } }, async (request, reply) => {
    const answer = await current().node.replicas.handleFetch(request.body as ReplicaFetchRequest);
    return reply.type('application/octet-stream').send(encodeFetchResponse(answer));
  });
  // Controller requests from other brokers; only the active controller answers them, so a
  // request that finds the controller moved is refused (NOT_CONTROLLER), never forwarded again.
  for (const kind of controllerRequestKinds) {
    app.post(`${CONTROLLER_PATH_PREFIX}${kind}`, { ...internal, schema: { body: controllerRequestSchemas[kind] } }, (request) => {
      return current().node.handleControllerRequest({ kind, body: request.body } as ControllerRequest);
    });
  }
}

/** Ids, epochs and partition numbers are int32 on the wire (Kafka's); offsets and indexes are safe integers. */
const INT32_MAX = 2 ** 31 - 1;
const id32 = { type: 'integer', minimum: 1, maximum: INT32_MAX } as const;
const epoch32 = { type: 'integer', minimum: 0, maximum: INT32_MAX } as const;
const epoch64 = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;
const offset64 = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;

const registerSchema = {
  type: 'object',
  required: ['brokerId', 'address', 'incarnationId'],
  additionalProperties: false,
  properties: { brokerId: id32, address: { type: 'string', minLength: 1, maxLength: 300 }, kafkaAddress: { type: 'string', minLength: 1, maxLength: 300 }, incarnationId: { type: 'string', minLength: 1, maxLength: 100 }, observer: { type: 'boolean' } },
} as const;

/** A broker naming itself by id and epoch: controlled shutdown, producer id blocks. */
const shutdownSchema = {
  type: 'object',
  required: ['brokerId', 'brokerEpoch'],
  additionalProperties: false,
  properties: { brokerId: id32, brokerEpoch: epoch64 },
} as const;

const alterPartitionItemSchema = {
  type: 'object',
  required: ['topicId', 'partition', 'leaderEpoch', 'partitionEpoch', 'newIsr'],
  additionalProperties: false,
  properties: {
    topicId: { type: 'string', minLength: 1, maxLength: 64 },
    partition: { type: 'integer', minimum: 0, maximum: 100_000 },
    leaderEpoch: epoch32,
    partitionEpoch: epoch32,
    newIsr: { type: 'array', items: id32, minItems: 1, maxItems: 64 },
  },
} as const;

const alterPartitionsSchema = {
  type: 'object',
  required: ['brokerId', 'brokerEpoch', 'partitions'],
  additionalProperties: false,
  properties: {
    brokerId: id32,
    brokerEpoch: epoch64,
    partitions: { type: 'array', minItems: 1, maxItems: ALTER_PARTITIONS_PER_REQUEST_MAX, items: alterPartitionItemSchema },
  },
} as const;

const partitionKeySchema = {
  type: 'object',
  required: ['topicId', 'partition'],
  additionalProperties: false,
  properties: { topicId: { type: 'string', minLength: 1, maxLength: 64 }, partition: { type: 'integer', minimum: 0, maximum: 100_000 } },
} as const;

const replicaStatusSchema = {
  type: 'object',
  required: ['brokerId', 'brokerEpoch', 'offline', 'online'],
  additionalProperties: false,
  properties: {
    brokerId: id32,
    brokerEpoch: epoch64,
    offline: { type: 'array', maxItems: ALTER_PARTITIONS_PER_REQUEST_MAX, items: partitionKeySchema },
    online: { type: 'array', maxItems: ALTER_PARTITIONS_PER_REQUEST_MAX, items: partitionKeySchema },
  },
} as const;

const alterReassignmentsSchema = {
  type: 'object',
  required: ['reassignments'],
  additionalProperties: false,
  properties: {
    reassignments: {
      type: 'array',
      maxItems: REASSIGNMENTS_PER_REQUEST_MAX,
      items: {
        type: 'object',
        required: ['topicId', 'partition', 'replicas'],
        additionalProperties: false,
        properties: {
          topicId: { type: 'string', minLength: 1, maxLength: 64 },
          partition: { type: 'integer', minimum: 0, maximum: 100_000 },
          replicas: { anyOf: [{ type: 'null' }, { type: 'array', items: id32, minItems: 1, maxItems: REPLICAS_PER_PARTITION_MAX }] },
        },
      },
    },
    throttleBytesPerSec: throttleBytesPerSecSchema,
  },
} as const;

const rebalanceSchema = {
  type: 'object',
  required: ['dryRun'],
  additionalProperties: false,
  properties: { dryRun: { type: 'boolean' }, throttleBytesPerSec: throttleBytesPerSecSchema },
} as const;

const decommissionSchema = {
  type: 'object',
  required: ['brokerId', 'dryRun'],
  additionalProperties: false,
  properties: { brokerId: id32, dryRun: { type: 'boolean' }, throttleBytesPerSec: throttleBytesPerSecSchema },
} as const;

const createTopicSchema = {
  type: 'object',
  required: ['name', 'partitions', 'replicationFactor', 'configs'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 249 },
    partitions: { type: 'integer', minimum: 1, maximum: 10_000 },
    replicationFactor: { type: 'integer', minimum: 1, maximum: 64 },
    configs: { type: 'object', maxProperties: 64, additionalProperties: { anyOf: [{ type: 'string', maxLength: 1024 }, { type: 'number' }, { type: 'boolean' }] } },
  },
} as const;

const deleteTopicSchema = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: { type: 'string', minLength: 1, maxLength: 249 } },
} as const;

const heartbeatSchema = {
  type: 'object',
  required: ['brokerId', 'brokerEpoch', 'appliedIndex'],
  additionalProperties: false,
  properties: { brokerId: id32, brokerEpoch: epoch64, appliedIndex: offset64 },
} as const;

const replicaFetchSchema = {
  type: 'object',
  required: ['followerId', 'sessionId', 'sessionEpoch', 'positions', 'removed', 'maxWaitMs', 'bytesMax', 'partitionBytesMax'],
  additionalProperties: false,
  properties: {
    followerId: id32,
    sessionId: { type: 'integer', minimum: 0, maximum: INT32_MAX },
    sessionEpoch: epoch64,
    positions: {
      type: 'array',
      maxItems: 100_000,
      items: {
        type: 'object',
        required: ['topicId', 'partition', 'leaderEpoch', 'fetchOffset', 'lastFetchedEpoch'],
        additionalProperties: false,
        properties: {
          topicId: { type: 'string', minLength: 1, maxLength: 64 },
          partition: { type: 'integer', minimum: 0, maximum: 100_000 },
          leaderEpoch: epoch32,
          fetchOffset: offset64,
          lastFetchedEpoch: { type: 'integer', minimum: -1, maximum: INT32_MAX },
        },
      },
    },
    removed: { type: 'array', maxItems: 100_000, items: partitionKeySchema },
    maxWaitMs: { type: 'integer', minimum: 0, maximum: fetchLimits.fetchWaitMsMax },
    bytesMax: { type: 'integer', minimum: 1, maximum: fetchLimits.fetchBytesMax },
    partitionBytesMax: { type: 'integer', minimum: 1, maximum: fetchLimits.fetchBytesMax },
  },
} as const;

const controllerRequestSchemas: Record<ControllerRequestKind, object> = {
  register: registerSchema,
  heartbeat: heartbeatSchema,
  shutdown: shutdownSchema,
  'alter-partitions': alterPartitionsSchema,
  'replica-status': replicaStatusSchema,
  'alter-reassignments': alterReassignmentsSchema,
  rebalance: rebalanceSchema,
  'decommission-broker': decommissionSchema,
  'create-topic': createTopicSchema,
  'delete-topic': deleteTopicSchema,
  'elect-preferred-leaders': { type: 'object', additionalProperties: false, properties: {} },
  'allocate-producer-ids': shutdownSchema,
};

async function shutdown(app: HttpApp, transport: HttpTransport, peers: PeerClients, kv: KV): Promise<void> {
  await transport.close();
  await peers.close();
  await app.close();
  await kv.close();
}
