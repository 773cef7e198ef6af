// One driftwood node as a real process: the metadata quorum (RaftNode over LevelDB, the
// metadata image as its state machine), the controller that runs while this node leads the
// quorum, the broker agent that registers with the controller and heartbeats, and the HTTP
// admin endpoints on one port for HTTP/1.1 and HTTP/2. Partition data (replication) comes
// with the next issue.
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from 'undici';
import { DriftwoodError, errorCodes, type ErrorCode } from '../../storage/errors.js';
import type { KV } from '../../storage/kv.js';
import { nodeClock } from '../../storage/node-clock.js';
import { openLevelKV } from '../../storage/node-kv.js';
import { nodeRng } from '../../storage/node-rng.js';
import type { NodeConfig } from '../config.js';
import { Controller, defaultControllerConfig } from '../controller/controller.js';
import { MetadataImage } from '../controller/image.js';
import { createHttpApp, type HttpApp } from '../http/node-dual-server.js';
import { peerUrl } from '../peers.js';
import { decodeMessages } from '../quorum/message-codec.js';
import { HttpTransport, RAFT_MESSAGES_PATH } from '../quorum/node-http-transport.js';
import { defaultRaftTiming, RaftNode } from '../quorum/raft-node.js';
import { readIdentity, writeIdentity } from '../node-preflight.js';
import { addAdminRoutes } from './admin-routes.js';

export interface BrokerTiming {
  /** How often the broker agent heartbeats to the controller. */
  readonly heartbeatMs: number;
  /** A forwarded request that has not answered by then fails. */
  readonly forwardTimeoutMs: number;
}

export const defaultBrokerTiming: BrokerTiming = { heartbeatMs: 250, forwardTimeoutMs: 5000 };

const BODY_BYTES_MAX = 8 * 1024 * 1024;

export interface Broker {
  readonly config: NodeConfig;
  readonly raft: RaftNode;
  readonly image: MetadataImage;
  readonly controller: Controller;
  readonly app: HttpApp;
  /** The epoch the controller gave this broker, 0 until registered. */
  brokerEpoch(): number;
  /**
   * Before a clean stop: stops heartbeating and has the controller move this broker's
   * partition leaderships away (bounded by the forward timeout; best effort).
   */
  controlledShutdown(): Promise<void>;
  /** Sends a request to the controller: handled here when this node leads, forwarded otherwise. */
  toController<T>(path: string, method: 'POST' | 'DELETE', body: unknown, local: (controller: Controller) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export async function startBroker(config: NodeConfig, timing: BrokerTiming = defaultBrokerTiming): Promise<Broker> {
  await mkdir(config.dataDir, { recursive: true });
  const kv = await openLevelKV(join(config.dataDir, 'metadata'));
  const image = new MetadataImage();
  const app = createHttpApp({ bodyLimitBytes: BODY_BYTES_MAX });
  const others = new Map(config.peers.filter((peer) => peer.id !== config.id).map((peer) => [peer.id, peerUrl(peer)]));
  const transport = new HttpTransport({ peers: others, requestTimeoutMs: defaultRaftTiming.requestTimeoutMs, queuedMessagesMax: 10_000 });
  const clients = new Map([...others].map(([id, url]) => [id, new Client(url, { allowH2: true, useH2c: true } as Client.Options)]));
  let raft: RaftNode | null = null;
  const controller = new Controller(defaultControllerConfig, {
    clock: nodeClock,
    rng: nodeRng,
    image,
    propose: (data) => (raft === null ? Promise.reject(new DriftwoodError('NOT_CONTROLLER', 'starting')) : raft.propose(data)),
  });
  const ids = config.peers.map((peer) => peer.id);
  const voters = config.voters === undefined ? ids : [...config.voters];
  // Routes go in before listening; until the node is up they answer NOT_CONTROLLER (retry).
  let ready: Broker | null = null;
  const current = (): Broker => {
    if (ready === null) throw new DriftwoodError('NOT_CONTROLLER', `node ${config.id} is starting; retry`);
    return ready;
  };
  addInternalRoutes(app, current);
  addAdminRoutes(app, current);
  try {
    await app.listen({ host: config.host, port: config.port });
    raft = await RaftNode.start(
      { ...defaultRaftTiming, id: config.id, voters, observers: ids.filter((id) => !voters.includes(id)) },
      { clock: nodeClock, rng: nodeRng, kv, transport, stateMachine: image },
      {
        onRoleChange: (role) => {
          if (role === 'leader') controller.activate();
          else controller.deactivate();
        },
        onFatal: (error) => {
          process.stderr.write(`node ${config.id}: fatal: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
          process.exit(70);
        },
      },
    );
  } catch (error) {
    await shutdown(app, transport, clients, kv);
    throw error;
  }
  const started = raft;
  const forward = async <T>(path: string, method: 'POST' | 'DELETE', body: unknown, local: (c: Controller) => Promise<T>): Promise<T> => {
    if (controller.isActive) return local(controller);
    const leader = started.leader;
    const client = leader === 0 ? undefined : clients.get(leader);
    if (client === undefined) throw new DriftwoodError('NOT_CONTROLLER', 'no controller is known yet; retry', { controllerId: leader });
    return forwardTo<T>(client, path, method, body, timing.forwardTimeoutMs);
  };
  const agent = new BrokerAgent(config, image, forward, timing);
  const broker: Broker = {
    config,
    raft: started,
    image,
    controller,
    app,
    brokerEpoch: () => agent.epoch,
    toController: forward,
    controlledShutdown: () => agent.shutdown(),
    close: async () => {
      agent.stop();
      controller.deactivate();
      started.stop();
      await shutdown(app, transport, clients, kv);
    },
  };
  ready = broker;
  await tieDataDirToCluster(config, image);
  agent.start();
  return broker;
}

/**
 * Records the cluster id in the data directory once the metadata log names it, and refuses
 * to go on in a cluster other than the one the directory belongs to (Kafka's
 * INCONSISTENT_CLUSTER_ID): the process exits with 2.
 */
async function tieDataDirToCluster(config: NodeConfig, image: MetadataImage): Promise<void> {
  const identity = await readIdentity(config.dataDir);
  let recorded = identity?.clusterId;
  const check = (): void => {
    const clusterId = image.clusterId;
    if (clusterId === undefined || clusterId === recorded) return;
    if (recorded !== undefined) {
      process.stderr.write(`driftwood: data directory ${config.dataDir} belongs to cluster ${recorded}, but this cluster is ${clusterId}\n`);
      process.exit(2);
    }
    recorded = clusterId;
    writeIdentity(config.dataDir, { version: 1, nodeId: config.id, clusterId }).catch((error: unknown) => {
      process.stderr.write(`driftwood: cannot record the cluster id in ${config.dataDir}: ${String(error)}\n`);
    });
  };
  image.onChange(check);
  check();
}

/** Registers this broker with the controller, then heartbeats; registers again when told its epoch is stale. */
class BrokerAgent {
  epoch = 0;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly incarnationId = randomUUID();

  constructor(
    private readonly config: NodeConfig,
    private readonly image: MetadataImage,
    private readonly forward: Broker['toController'],
    private readonly timing: BrokerTiming,
  ) {}

  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
  }

  async shutdown(): Promise<void> {
    this.stop();
    if (this.epoch === 0) return;
    const request = { brokerId: this.config.id, brokerEpoch: this.epoch };
    await this.forward('/internal/controller/shutdown', 'POST', request, (c) => c.controlledShutdown(request)).catch(() => undefined);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => { void this.beat(); }, delayMs);
  }

  private async beat(): Promise<void> {
    try {
      if (this.epoch === 0) await this.register();
      else await this.heartbeat();
    } catch (error) {
      const code = error instanceof DriftwoodError ? error.code : undefined;
      if (code === 'STALE_BROKER_EPOCH' || code === 'BROKER_ID_NOT_REGISTERED') this.epoch = 0;
    }
    this.schedule(this.timing.heartbeatMs);
  }

  private async register(): Promise<void> {
    const request = { brokerId: this.config.id, address: `${this.config.host}:${this.config.port}`, incarnationId: this.incarnationId };
    const { brokerEpoch } = await this.forward('/internal/controller/register', 'POST', request, (c) => c.registerBroker(request));
    this.epoch = brokerEpoch;
  }

  private async heartbeat(): Promise<void> {
    const request = { brokerId: this.config.id, brokerEpoch: this.epoch, appliedIndex: this.image.lastAppliedIndex };
    await this.forward('/internal/controller/heartbeat', 'POST', request, (c) => c.heartbeat(request));
  }
}

/** Sends a request to the controller node and turns its error answer back into a DriftwoodError. */
async function forwardTo<T>(client: Client, path: string, method: 'POST' | 'DELETE', body: unknown, timeoutMs: number): Promise<T> {
  const response = await client.request({
    method,
    path,
    headers: body === undefined ? { 'x-driftwood-forwarded': '1' } : { 'content-type': 'application/json', 'x-driftwood-forwarded': '1' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const text = await response.body.text();
  const json: unknown = text.length === 0 ? null : JSON.parse(text);
  if (response.statusCode < 300) return json as T;
  const answer = (json ?? {}) as { error?: string; message?: string };
  const code = answer.error !== undefined && answer.error in errorCodes ? (answer.error as ErrorCode) : 'REQUEST_TIMED_OUT';
  // The controller's message already starts with the code's text; keep only its detail.
  const prefix = `${errorCodes[code].message}: `;
  const message = answer.message ?? `HTTP ${response.statusCode}`;
  throw new DriftwoodError(code, message.startsWith(prefix) ? message.slice(prefix.length) : message);
}

function addInternalRoutes(app: HttpApp, current: () => Broker): void {
  app.post(RAFT_MESSAGES_PATH, (request, reply) => {
    const broker = current();
    for (const message of decodeMessages(request.body)) {
      if (message.to !== broker.config.id) throw new DriftwoodError('INVALID_REQUEST', `message for node ${message.to} reached node ${broker.config.id}`);
      broker.raft.receive(message);
    }
    return reply.status(204).send();
  });
  // Controller requests from other brokers; only the active controller answers them.
  app.post('/internal/controller/register', { schema: { body: registerSchema } }, (request) => {
    const body = request.body as { brokerId: number; address: string; incarnationId: string };
    return localController(current()).registerBroker(body);
  });
  app.post('/internal/controller/shutdown', { schema: { body: shutdownSchema } }, async (request) => {
    const body = request.body as { brokerId: number; brokerEpoch: number };
    await localController(current()).controlledShutdown(body);
    return { ok: true };
  });
  // A partition leader's ISR change (KIP-497); the replication issue's leaders call it.
  app.post('/internal/controller/alter-partition', { schema: { body: alterPartitionSchema } }, (request) => {
    const body = request.body as { brokerId: number; brokerEpoch: number; topicId: string; partition: number; leaderEpoch: number; partitionEpoch: number; newIsr: number[] };
    return localController(current()).alterPartition(body);
  });
  app.post('/internal/controller/heartbeat', { schema: { body: heartbeatSchema } }, (request) => {
    const body = request.body as { brokerId: number; brokerEpoch: number; appliedIndex: number };
    return localController(current()).heartbeat(body);
  });
}

function localController(broker: Broker): Controller {
  if (!broker.controller.isActive) throw new DriftwoodError('NOT_CONTROLLER', 'this node is not the controller', { controllerId: broker.raft.leader });
  return broker.controller;
}

const registerSchema = {
  type: 'object',
  required: ['brokerId', 'address', 'incarnationId'],
  additionalProperties: false,
  properties: { brokerId: { type: 'integer', minimum: 1 }, address: { type: 'string', minLength: 1, maxLength: 300 }, incarnationId: { type: 'string', minLength: 1, maxLength: 100 } },
} as const;

const shutdownSchema = {
  type: 'object',
  required: ['brokerId', 'brokerEpoch'],
  additionalProperties: false,
  properties: { brokerId: { type: 'integer', minimum: 1 }, brokerEpoch: { type: 'integer', minimum: 0 } },
} as const;

const alterPartitionSchema = {
  type: 'object',
  required: ['brokerId', 'brokerEpoch', 'topicId', 'partition', 'leaderEpoch', 'partitionEpoch', 'newIsr'],
  additionalProperties: false,
  properties: {
    brokerId: { type: 'integer', minimum: 1 },
    brokerEpoch: { type: 'integer', minimum: 0 },
    topicId: { type: 'string', minLength: 1, maxLength: 64 },
    partition: { type: 'integer', minimum: 0 },
    leaderEpoch: { type: 'integer', minimum: 0 },
    partitionEpoch: { type: 'integer', minimum: 0 },
    newIsr: { type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 1, maxItems: 64 },
  },
} as const;

const heartbeatSchema = {
  type: 'object',
  required: ['brokerId', 'brokerEpoch', 'appliedIndex'],
  additionalProperties: false,
  properties: { brokerId: { type: 'integer', minimum: 1 }, brokerEpoch: { type: 'integer', minimum: 0 }, appliedIndex: { type: 'integer', minimum: 0 } },
} as const;

async function shutdown(app: HttpApp, transport: HttpTransport, clients: Map<number, Client>, kv: KV): Promise<void> {
  await transport.close();
  await Promise.all([...clients.values()].map((client) => client.destroy()));
  await app.close();
  await kv.close();
}
