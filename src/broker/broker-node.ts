// One driftwood node's core, wired from its ports: the metadata quorum (RaftNode, with the
// metadata image as its state machine), the controller that runs while this node leads the
// quorum, the broker agent that registers and heartbeats, and the partition replicas it hosts. The same class runs in a real
// process (node-broker.ts adds HTTP, LevelDB and signals) and in the simulator.
import assert from 'node:assert/strict';
import type { Clock } from '../../storage/clock.js';
import type { Disk } from '../../storage/disk.js';
import { DriftwoodError, isDriftwoodError } from '../../storage/errors.js';
import type { KV } from '../../storage/kv.js';
import { silentLog, type DurationSink, type Log } from '../../storage/observe.js';
import type { Rng } from '../../storage/rng.js';
import type { Entry, NodeIdOrNone, Ready, Role } from '../../raft/index.js';
import { Controller, controllerBugs as controllerBugNames, type ControllerBug, type ControllerConfig } from '../controller/controller.js';
import { MetadataImage } from '../controller/image.js';
import { defaultGroupCoordinatorConfig, GroupCoordinator, type GroupCoordinatorConfig } from '../group/coordinator.js';
import type { GroupBug } from '../group/group.js';
import type { ClassicGroupBug } from '../group/classic-group.js';
import { RaftNode, type RaftNodeConfig } from '../quorum/raft-node.js';
import type { RaftTransport } from '../quorum/transport.js';
import type { ReplicaChannel } from '../replica/fetch-protocol.js';
import { replicaBugs, type ReplicaBug } from '../replica/partition.js';
import { ReplicaManager, type ReplicaManagerConfig } from '../replica/replica-manager.js';
import { BrokerAgent } from './broker-agent.js';
import { errorFromWire, handleControllerRequest, type ControllerAnswers, type ControllerChannel, type ControllerRequest, type ControllerRequestKind } from './controller-requests.js';

/**
 * Deliberate defects the cluster simulator must catch (`driftwood sim cluster --bug`), as
 * raft/ has for the quorum. Never set outside the simulator.
 */
export type BrokerNodeBug = 'controller-activate-early' | 'roles-before-caught-up' | ControllerBug | ReplicaBug | GroupBug | ClassicGroupBug;

export interface BrokerNodeConfig {
  readonly id: number;
  /** host:port other nodes and clients reach this broker at. */
  readonly address: string;
  /** host:port Kafka clients reach this broker at (absent: no Kafka listener). */
  readonly kafkaAddress?: string;
  readonly raft: RaftNodeConfig;
  readonly controller: ControllerConfig;
  readonly replica: ReplicaManagerConfig;
  readonly heartbeatMs: number;
  /** The group coordinator's settings (defaults: defaultGroupCoordinatorConfig). */
  readonly groups?: GroupCoordinatorConfig;
  readonly bugs?: ReadonlySet<BrokerNodeBug>;
}

export interface BrokerNodePorts {
  readonly clock: Clock;
  readonly rng: Rng;
  readonly kv: KV;
  /** Where partition logs live. */
  readonly disk: Disk;
  readonly raftTransport: RaftTransport;
  readonly controllerChannel: ControllerChannel;
  readonly replicaChannel: ReplicaChannel;
  /** Node-level events: leader changes, controller activation, fencing, partition changes. */
  readonly log?: Log;
  /** Partition log fsync durations. */
  readonly fsyncDurations?: DurationSink;
  /** Metadata proposals' time from propose to applied here. */
  readonly commitDurations?: DurationSink;
}

export interface BrokerNodeEvents {
  onApply?: (entry: Entry) => void;
  onRoleChange?: (role: Role, leader: NodeIdOrNone, term: number) => void;
  onPersisted?: (ready: Ready) => void;
  /** A broken invariant or a lost disk: the node has stopped and must not go on. */
  onFatal: (error: unknown) => void;
}

/** Blocks a caller of initProducerId may see drained by others before it gives up. */
const PRODUCER_ID_BLOCK_ATTEMPTS_MAX = 10;

export class BrokerNode {
  /** The rest of this broker's producer id block: ids from next up to end (KIP-730). */
  private producerIdNext = 0;
  private producerIdEnd = 0;
  /** The block request in flight, which every caller of initProducerId waits on. */
  private producerIdRequest: Promise<void> | null = null;

  /** Where a node that knows no quorum leader sends its next controller request: an index into the voters. */
  private voterToAsk = 0;

  private constructor(
    readonly config: BrokerNodeConfig,
    readonly image: MetadataImage,
    readonly raft: RaftNode,
    readonly controller: Controller,
    readonly agent: BrokerAgent,
    readonly replicas: ReplicaManager,
    readonly groups: GroupCoordinator,
    private readonly channel: ControllerChannel,
    readonly clock: Clock,
  ) {}

  static async start(config: BrokerNodeConfig, ports: BrokerNodePorts, events: BrokerNodeEvents): Promise<BrokerNode> {
    const image = new MetadataImage();
    const log = ports.log ?? silentLog;
    let raft: RaftNode | null = null;
    let agent: BrokerAgent | null = null;
    // A new quorum leader may hold entries of earlier terms it has not applied yet (a deposed
    // controller's decisions). Deciding against an image without them would propose changes
    // to topics they removed, so the controller starts only once this term's first entry, and
    // so everything before it, has applied here (KRaft waits the same way).
    let activation: { term: number; barrier: number } | null = null;
    const maybeActivate = (appliedIndex: number): void => {
      if (activation === null || raft === null) return;
      const status = raft.status();
      if (status.role !== 'leader' || status.term !== activation.term) {
        activation = null;
        return;
      }
      if (appliedIndex < activation.barrier) return;
      activation = null;
      controller.activate();
      log.info({ term: status.term, appliedIndex }, 'controller activated');
    };
    const controllerBugs = new Set([...(config.bugs ?? [])].filter((bug): bug is ControllerBug => (controllerBugNames as readonly string[]).includes(bug)));
    const controller = new Controller(controllerBugs.size === 0 ? config.controller : { ...config.controller, bugs: controllerBugs }, {
      clock: ports.clock,
      rng: ports.rng,
      image,
      propose: (data) => (raft === null ? Promise.reject(new DriftwoodError('NOT_CONTROLLER', 'starting')) : raft.propose(data)),
    });
    const raftPorts = { clock: ports.clock, rng: ports.rng, kv: ports.kv, transport: ports.raftTransport, stateMachine: image };
    let knownLeader: NodeIdOrNone = 0;
    raft = await RaftNode.start(config.raft, ports.commitDurations === undefined ? raftPorts : { ...raftPorts, commitDurations: ports.commitDurations }, {
      onApply: (entry) => {
        events.onApply?.(entry);
        maybeActivate(entry.index);
      },
      ...(events.onPersisted === undefined ? {} : { onPersisted: events.onPersisted }),
      onRoleChange: (role, leader, term) => {
        if (leader !== knownLeader) log.info({ role, leader, term, previousLeader: knownLeader }, leader === 0 ? 'metadata quorum has no leader' : 'metadata quorum leader changed');
        knownLeader = leader;
        if (controller.isActive) log.info({ term }, 'controller deactivated');
        controller.deactivate();
        activation = null;
        if (role === 'leader' && raft !== null) {
          const status = raft.status();
          const early = config.bugs?.has('controller-activate-early') === true;
          activation = { term, barrier: early ? 0 : status.lastIndex };
          maybeActivate(status.applied);
        }
        if (leader !== 0) agent?.leaderChanged();
        events.onRoleChange?.(role, leader, term);
      },
      onFatal: events.onFatal,
    });
    followRegisteredObservers(config.raft, image, raft);
    const incarnationId = randomHex(ports.rng, 16);
    let node: BrokerNode | null = null;
    const bugs = [...(config.bugs ?? [])];
    const replicaBugSet = new Set(bugs.filter((bug): bug is ReplicaBug => (replicaBugs as readonly string[]).includes(bug)));
    const replicas = new ReplicaManager(replicaBugSet.size === 0 ? config.replica : { ...config.replica, bugs: replicaBugSet }, {
      brokerId: config.id,
      clock: ports.clock,
      disk: ports.disk,
      image,
      channel: ports.replicaChannel,
      alterPartitions: async (partitions) => {
        if (node === null) throw new DriftwoodError('NOT_CONTROLLER', 'starting');
        const answer = await node.toController({ kind: 'alter-partitions', body: { brokerId: config.id, brokerEpoch: node.agent.epoch, partitions } });
        return answer.partitions.map((one) => ('state' in one ? one : { error: errorFromWire(one.refused, 'AlterPartitions refused the partition') }));
      },
      reportReplicaStatus: async (report) => {
        if (node === null) throw new DriftwoodError('NOT_CONTROLLER', 'starting');
        await node.toController({ kind: 'replica-status', body: { brokerId: config.id, brokerEpoch: node.agent.epoch, ...report } });
      },
      mayTakeRoles: () => {
        if (config.bugs?.has('roles-before-caught-up') === true) return true;
        const epoch = node?.agent.epoch ?? 0;
        const self = image.broker(config.id);
        return epoch > 0 && self?.brokerEpoch === epoch && !self.fenced;
      },
      onFatal: events.onFatal,
      log,
      ...(ports.fsyncDurations === undefined ? {} : { fsyncDurations: ports.fsyncDurations }),
    });
    const created: BrokerNode = new BrokerNode(config, image, raft, controller, new BrokerAgent(
      { brokerId: config.id, address: config.address, ...(config.kafkaAddress === undefined ? {} : { kafkaAddress: config.kafkaAddress }), incarnationId, heartbeatMs: config.heartbeatMs, observer: !config.raft.voters.includes(config.id) },
      { clock: ports.clock, appliedIndex: () => image.lastAppliedIndex, toController: (request) => created.toController(request), onRefused: events.onFatal },
    ), replicas, new GroupCoordinator(groupConfig(config), {
      brokerId: config.id,
      clock: ports.clock,
      rng: ports.rng,
      image,
      replicas,
      createTopic: (body) => created.toController({ kind: 'create-topic', body }),
      onFatal: events.onFatal,
      leaseValid: () => {
        const since = created.agent.unfencedSinceMs;
        // A new controller gives brokers activationGraceMs, not a whole session: the lease is the shorter.
        const leaseMs = Math.min(config.controller.sessionTimeoutMs, config.controller.activationGraceMs);
        return since !== null && ports.clock.monotonicMs() - since < leaseMs;
      },
    }), ports.controllerChannel, ports.clock);
    node = created;
    logFencing(config.id, image, controller, log);
    await replicas.start();
    agent = created.agent;
    agent.start();
    created.groups.start();
    return created;
  }

  get id(): number {
    return this.config.id;
  }

  /** Runs a request on the controller: here when this node leads the quorum, on the leader otherwise. */
  toController<K extends ControllerRequestKind>(request: ControllerRequest<K>): Promise<ControllerAnswers[K]> {
    if (this.controller.isActive) return this.runHere(request);
    const leader = this.raft.leader;
    const voter = this.config.raft.voters.includes(this.config.id);
    if (leader === 0 && !voter) return this.askVoters(request);
    if (leader === 0 || leader === this.config.id) return Promise.reject(new DriftwoodError('NOT_CONTROLLER', 'no controller is known yet; retry', { controllerId: leader }));
    return this.channel.send(leader, request);
  }

  /** A request another node sent here for the controller; NOT_CONTROLLER unless this node leads. */
  handleControllerRequest<K extends ControllerRequestKind>(request: ControllerRequest<K>): Promise<ControllerAnswers[K]> {
    // Every node knows the voters, so any of them refuses an impostor, controller or not:
    // the joiner may not be able to reach the controller when its peers list is not all voters.
    const refused = this.refuseVoterImpostor(request);
    if (refused !== null) return Promise.reject(refused);
    if (!this.controller.isActive) return Promise.reject(new DriftwoodError('NOT_CONTROLLER', 'this node is not the controller', { controllerId: this.raft.leader }));
    return this.runHere(request);
  }

  /** Runs a request on this node's active controller, refusing an observer that claims a voter's id. */
  private runHere<K extends ControllerRequestKind>(request: ControllerRequest<K>): Promise<ControllerAnswers[K]> {
    const refused = this.refuseVoterImpostor(request);
    if (refused !== null) return Promise.reject(refused);
    return handleControllerRequest(this.controller, request);
  }

  /** A registration as an observer under a voter's id: two nodes with one id would take each other's place. */
  private refuseVoterImpostor(request: ControllerRequest): DriftwoodError | null {
    if (request.kind !== 'register' || request.body.observer !== true || !this.config.raft.voters.includes(request.body.brokerId)) return null;
    return new DriftwoodError('INCONSISTENT_VOTER_SET', `broker ${request.body.brokerId} asked to join as an observer, but ${request.body.brokerId} is a voter (voters: ${this.config.raft.voters.join(',')})`, { brokerId: request.body.brokerId });
  }

  /**
   * A non-voting node that has not heard from a quorum leader: it has just joined (the leader
   * replicates to it only once its registration is in the metadata), or the leader is gone.
   * It asks the voters of its peers list in turn: a NOT_CONTROLLER answer naming the
   * controller is followed once, and a voter that does not answer is skipped next time.
   */
  private async askVoters<K extends ControllerRequestKind>(request: ControllerRequest<K>): Promise<ControllerAnswers[K]> {
    const voters = this.config.raft.voters;
    assert(voters.length > 0);
    const to = voters[this.voterToAsk % voters.length];
    assert(to !== undefined && to !== this.config.id);
    try {
      return await this.channel.send(to, request);
    } catch (error) {
      const named = isDriftwoodError(error, 'NOT_CONTROLLER') ? error.hints.controllerId : undefined;
      const index = typeof named === 'number' && named !== to ? voters.indexOf(named) : -1;
      if (index < 0) {
        this.voterToAsk = (this.voterToAsk + 1) % voters.length;
        throw error;
      }
      this.voterToAsk = index;
      return this.channel.send(voters[index] ?? to, request);
    }
  }

  /**
   * A new idempotent producer's id and epoch (Kafka's InitProducerId without a transactional
   * id), from this broker's block of ids (KIP-730). An empty block is refilled from the
   * controller by one request that every concurrent caller waits on; ids of a block a broker
   * did not use up before it restarted are never handed out.
   */
  async initProducerId(): Promise<{ producerId: number; producerEpoch: number }> {
    for (let attempt = 1; ; attempt += 1) {
      if (this.producerIdNext < this.producerIdEnd) {
        const producerId = this.producerIdNext;
        this.producerIdNext += 1;
        return { producerId, producerEpoch: 0 };
      }
      // Many callers may drain a block before one of them gets a turn; a bound, not a spin.
      if (attempt > PRODUCER_ID_BLOCK_ATTEMPTS_MAX) throw new DriftwoodError('REQUEST_TIMED_OUT', `no producer id after ${PRODUCER_ID_BLOCK_ATTEMPTS_MAX} blocks; retry`);
      this.producerIdRequest ??= this.fetchProducerIdBlock().finally(() => { this.producerIdRequest = null; });
      await this.producerIdRequest;
    }
  }

  private async fetchProducerIdBlock(): Promise<void> {
    const block = await this.toController({ kind: 'allocate-producer-ids', body: { brokerId: this.config.id, brokerEpoch: this.agent.epoch } });
    assert(Number.isSafeInteger(block.firstProducerId) && block.count > 0, `a bad producer id block ${JSON.stringify(block)}`);
    // Blocks come from one counter in the metadata log: a later one never overlaps an earlier one.
    assert(block.firstProducerId >= this.producerIdEnd, `producer id block ${block.firstProducerId} is below the last one's end ${this.producerIdEnd}`);
    this.producerIdNext = block.firstProducerId;
    this.producerIdEnd = block.firstProducerId + block.count;
  }

  /** Before a clean stop: stop heartbeating and have the controller move this broker's leaderships away. */
  controlledShutdown(): Promise<void> {
    return this.agent.shutdown();
  }

  /** Stops timers and the quorum member at once (power loss in the simulator); the ports belong to the caller. */
  stop(): void {
    this.agent.stop();
    this.groups.stop();
    this.controller.deactivate();
    this.raft.stop();
  }

  /** A clean stop: stop() and close the partition logs. */
  async close(): Promise<void> {
    this.stop();
    await this.replicas.close();
  }
}

/**
 * Keeps the quorum's observers equal to the configured ones plus every registered broker
 * that is not a voter, so whichever node leads replicates the metadata log to brokers that
 * joined (Raft.setObservers explains why that needs no log entry). Every node follows its own
 * image: a new leader has the registrations it applied, and its image is at least as complete
 * as any committed state before it proposes anything.
 */
function followRegisteredObservers(config: RaftNodeConfig, image: MetadataImage, raft: RaftNode): void {
  const sync = (): void => {
    const ids = new Set(config.observers);
    for (const broker of image.brokers()) if (!config.voters.includes(broker.brokerId)) ids.add(broker.brokerId);
    const next = [...ids].sort((a, b) => a - b);
    const current = [...raft.members().observers].sort((a, b) => a - b);
    if (next.length === current.length && next.every((id, i) => current[i] === id)) return;
    raft.setObservers(next);
  };
  image.onChange(sync);
  sync();
}

/** The group coordinator's settings, with the group defect when the simulator asks for it. */
function groupConfig(config: BrokerNodeConfig): GroupCoordinatorConfig {
  let groups = config.groups ?? defaultGroupCoordinatorConfig;
  if (config.bugs?.has('grant-unreleased') === true) groups = { ...groups, limits: { ...groups.limits, bugs: new Set<GroupBug>(['grant-unreleased']) } };
  if (config.bugs?.has('classic-forget-generation') === true) groups = { ...groups, classicLimits: { ...groups.classicLimits, bugs: new Set<ClassicGroupBug>(['classic-forget-generation']) } };
  return groups;
}

/**
 * Logs brokers' fenced/unfenced transitions as the image applies them: the active controller
 * logs every broker's, each broker its own, so one event is not logged by every node.
 */
function logFencing(selfId: number, image: MetadataImage, controller: Controller, log: Log): void {
  const fenced = new Map(image.brokers().map((b) => [b.brokerId, b.fenced]));
  image.onChange(() => {
    for (const broker of image.brokers()) {
      const before = fenced.get(broker.brokerId);
      fenced.set(broker.brokerId, broker.fenced);
      if (before === broker.fenced || (!controller.isActive && broker.brokerId !== selfId)) continue;
      const message = before === undefined ? 'broker registered' : broker.fenced ? 'broker fenced' : 'broker unfenced';
      log.info({ broker: broker.brokerId, brokerEpoch: broker.brokerEpoch, fenced: broker.fenced }, message);
    }
  });
}

function randomHex(rng: Rng, bytes: number): string {
  let text = '';
  for (let i = 0; i < bytes; i += 1) text += rng.int(256).toString(16).padStart(2, '0');
  return text;
}
