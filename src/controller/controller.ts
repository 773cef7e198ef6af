// The active controller: the node that leads the metadata quorum. It turns requests
// (create/delete topic, register, heartbeat, AlterPartition) into records, one at a time:
// each decision is taken against the image with every earlier proposal applied, proposed to
// Raft, and answered once applied, so two decisions never rest on the same stale image. It
// also keeps broker sessions: a broker that has not heartbeated within sessionTimeoutMs is
// fenced (its leaderships move within the ISR), and unfenced when it heartbeats again having
// caught up with the metadata log.
import assert from 'node:assert/strict';
import type { Clock, TimerHandle } from '../../storage/clock.js';
import { DriftwoodError } from '../../storage/errors.js';
import type { Rng } from '../../storage/rng.js';
import { allocateProducerIds, alterPartitions, alterReplicaStatus, createTopic, deleteTopic, electPreferredLeaders, fenceBroker, registerBroker, unfenceBroker, type AlterPartitionAnswer, type AlterPartitionsRequest, type CreateTopicRequest, type ProducerIdBlock, type RegisterBrokerRequest, type ReplicaStatusRequest } from './commands.js';
import type { MetadataImage, TopicState } from './image.js';
import { preferredLeaderImbalance } from './placement.js';
import { encodeRecords, type MetadataRecord } from './records.js';
import { alterReassignments, type ReassignmentItem } from './reassignment.js';
import { planDecommission, planRebalance, type PlannedMove } from './rebalance.js';

/** Deliberate defects the cluster simulator must catch (`driftwood sim cluster --bug`); never set otherwise. */
export type ControllerBug = 'elect-outside-isr' | 'complete-early';
export const controllerBugs: readonly ControllerBug[] = ['elect-outside-isr', 'complete-early'];

export interface ControllerConfig {
  /** A broker silent for this long is fenced (KRaft: broker.session.timeout.ms, 9 s there). */
  readonly sessionTimeoutMs: number;
  /**
   * A new controller does not know when brokers last heartbeated; it gives each this long
   * (brokers heartbeat at once when they learn of a new quorum leader) instead of a full
   * session, so a broker that died with the old controller is fenced sooner.
   */
  readonly activationGraceMs: number;
  /** How often sessions are checked. */
  readonly sessionCheckMs: number;
  /** A fenced broker is unfenced once its applied metadata index is within this of ours. */
  readonly catchUpLagEntriesMax: number;
  /** Requests waiting for the controller at most; past it they fail fast. */
  readonly queuedRequestsMax: number;
  /** How often leadership balance is checked (Kafka: leader.imbalance.check.interval.seconds). */
  readonly leaderRebalanceCheckMs: number;
  /**
   * Preferred leaders are elected again once, for some broker, the fraction of the partitions
   * it is preferred for that someone else leads passes this (Kafka:
   * leader.imbalance.per.broker.percentage).
   */
  readonly leaderImbalanceRatioMax: number;
  readonly bugs?: ReadonlySet<ControllerBug>;
}

export const defaultControllerConfig: ControllerConfig = {
  sessionTimeoutMs: 1000,
  activationGraceMs: 500,
  sessionCheckMs: 100,
  catchUpLagEntriesMax: 10,
  queuedRequestsMax: 10_000,
  leaderRebalanceCheckMs: 5000,
  leaderImbalanceRatioMax: 0.1,
};

export interface ControllerPorts {
  readonly clock: Clock;
  readonly rng: Rng;
  readonly image: MetadataImage;
  /** Proposes one Raft entry; resolves with its index once applied here. */
  readonly propose: (data: Uint8Array) => Promise<number>;
}

export interface HeartbeatRequest {
  readonly brokerId: number;
  readonly brokerEpoch: number;
  /** How far the broker has applied the metadata log. */
  readonly appliedIndex: number;
}

type Decision<T> = (image: MetadataImage) => { records: MetadataRecord[]; result: T };

interface Queued {
  readonly run: () => Promise<void>;
}

export class Controller {
  private active = false;
  private queue: Queued[] = [];
  private running = false;
  /**
   * The index of a proposal that timed out: it may still commit, so no decision is made on an
   * image that has not applied it (it would be missing its records). Raft settles it: while
   * this node leads, its own entry commits; if another leader replaces it, this one is deposed.
   */
  private unresolvedIndex = 0;
  private readonly appliedWaiters = new Set<() => void>();
  private readonly lastHeartbeatMs = new Map<number, number>();
  private sessionTimer: TimerHandle | null = null;
  private rebalanceTimer: TimerHandle | null = null;

  constructor(private readonly config: ControllerConfig, private readonly ports: ControllerPorts) {}

  private get electOutsideIsr(): boolean {
    return this.config.bugs?.has('elect-outside-isr') === true;
  }

  private get completeEarly(): boolean {
    return this.config.bugs?.has('complete-early') === true;
  }

  get isActive(): boolean {
    return this.active;
  }

  /** This node now leads the quorum: every registered broker has activationGraceMs to heartbeat. */
  activate(): void {
    if (this.active) return;
    this.active = true;
    const graceStartMs = this.ports.clock.monotonicMs() - this.config.sessionTimeoutMs + Math.min(this.config.activationGraceMs, this.config.sessionTimeoutMs);
    for (const broker of this.ports.image.brokers()) this.lastHeartbeatMs.set(broker.brokerId, graceStartMs);
    this.scheduleSessionCheck();
    this.scheduleRebalanceCheck();
    // The first controller of a new cluster names it.
    this.decide((image) => ({ records: image.clusterId === undefined ? [{ type: 'ClusterId', clusterId: randomId(this.ports.rng) }] : [], result: undefined })).catch(() => undefined);
  }

  /** Leadership is gone: queued requests fail with NOT_CONTROLLER. */
  deactivate(): void {
    this.active = false;
    this.sessionTimer?.cancel();
    this.sessionTimer = null;
    this.rebalanceTimer?.cancel();
    this.rebalanceTimer = null;
    this.lastHeartbeatMs.clear();
    this.unresolvedIndex = 0;
    for (const wake of [...this.appliedWaiters]) wake();
    const refused = this.queue.splice(0);
    for (const item of refused) void item.run();
  }

  /** Resolves once the image has applied `index`, or at once when this controller is deactivated. */
  private appliedUpTo(index: number): Promise<void> {
    if (this.ports.image.lastAppliedIndex >= index || !this.active) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        unsubscribe();
        this.appliedWaiters.delete(done);
        resolve();
      };
      const unsubscribe = this.ports.image.onChange(() => { if (this.ports.image.lastAppliedIndex >= index) done(); });
      this.appliedWaiters.add(done);
    });
  }

  createTopic(request: CreateTopicRequest): Promise<TopicState> {
    return this.decide((image) => {
      const live = image.unfencedBrokerIds();
      const topicId = randomId(this.ports.rng);
      const records = createTopic(request, image, live, this.ports.rng.int(Math.max(1, live.length)), topicId);
      return { records, result: topicId };
    }).then((topicId) => {
      const topic = this.ports.image.topicById(topicId);
      assert.ok(topic !== undefined, 'the created topic is in the image');
      return topic;
    });
  }

  deleteTopic(name: string): Promise<void> {
    return this.decide((image) => ({ records: deleteTopic(name, image), result: undefined }));
  }

  /** An admin's preferred-leader election now (Kafka's ElectLeaders, type PREFERRED); answers how many partitions moved. */
  electPreferredLeaders(): Promise<{ elected: number }> {
    return this.decide((image) => {
      const records = electPreferredLeaders(image);
      return { records, result: { elected: records.length } };
    });
  }

  /**
   * A block of producer ids for a broker (KIP-730). Answered only once the block is applied
   * from the Raft log, so a controller elected later starts past it and no id goes out twice.
   */
  allocateProducerIds(request: { brokerId: number; brokerEpoch: number }): Promise<ProducerIdBlock> {
    return this.decide((image) => {
      const { records, block } = allocateProducerIds(request, image);
      return { records, result: block };
    });
  }

  registerBroker(request: RegisterBrokerRequest): Promise<{ brokerEpoch: number }> {
    return this.decide((image) => {
      const registration = registerBroker(request, image);
      this.lastHeartbeatMs.set(request.brokerId, this.ports.clock.monotonicMs());
      return { records: registration.records, result: { brokerEpoch: registration.brokerEpoch } };
    });
  }

  /** Records the heartbeat; unfences a caught-up fenced broker. Answers whether it is fenced. */
  heartbeat(request: HeartbeatRequest): Promise<{ fenced: boolean }> {
    if (!this.active) return Promise.reject(notController());
    const broker = this.ports.image.broker(request.brokerId);
    if (broker === undefined) return Promise.reject(new DriftwoodError('BROKER_ID_NOT_REGISTERED', `broker ${request.brokerId} is not registered`));
    if (broker.brokerEpoch !== request.brokerEpoch) {
      return Promise.reject(new DriftwoodError('STALE_BROKER_EPOCH', `broker ${request.brokerId} has epoch ${broker.brokerEpoch}, not ${request.brokerEpoch}`));
    }
    this.lastHeartbeatMs.set(request.brokerId, this.ports.clock.monotonicMs());
    const caughtUp = this.ports.image.lastAppliedIndex - request.appliedIndex <= this.config.catchUpLagEntriesMax;
    if (!broker.fenced || !caughtUp) return Promise.resolve({ fenced: broker.fenced });
    return this.decide((image) => ({ records: unfenceBroker(request.brokerId, request.brokerEpoch, image), result: { fenced: false } }));
  }

  /**
   * A broker about to stop cleanly: fenced now, so its partition leaderships move to other
   * ISR members before it goes (KRaft's controlled shutdown). It stopped heartbeating first,
   * so nothing unfences it until it registers again.
   */
  controlledShutdown(request: { brokerId: number; brokerEpoch: number }): Promise<void> {
    const broker = this.ports.image.broker(request.brokerId);
    if (broker === undefined) return Promise.reject(new DriftwoodError('BROKER_ID_NOT_REGISTERED', `broker ${request.brokerId} is not registered`));
    if (broker.brokerEpoch !== request.brokerEpoch) return Promise.reject(new DriftwoodError('STALE_BROKER_EPOCH', `broker ${request.brokerId} has epoch ${broker.brokerEpoch}, not ${request.brokerEpoch}`));
    return this.decide((image) => ({ records: fenceBroker(request.brokerId, image, this.electOutsideIsr), result: undefined }));
  }

  /** A leader's ISR changes, decided together and committed as one entry; answers per partition. */
  alterPartitions(request: AlterPartitionsRequest): Promise<AlterPartitionAnswer[]> {
    return this.decide((image) => {
      const { records, answers } = alterPartitions(request, image);
      return { records, result: answers };
    });
  }

  /**
   * Starts, replaces or cancels reassignments (all or none), and sets the reassignment
   * throttle when given (bytes/s, -1 to remove it), in one entry.
   */
  alterReassignments(request: AlterReassignmentsRequest): Promise<void> {
    return this.decide((image) => ({ records: [...throttleRecords(request.throttleBytesPerSec, image), ...alterReassignments(request.reassignments, image, this.completeEarly)], result: undefined }));
  }

  /** Evens out replicas and preferred leaders by reassignment; a dry run only answers the plan. */
  rebalance(request: { dryRun: boolean; throttleBytesPerSec?: number }): Promise<{ moves: PlannedMove[] }> {
    return this.decide((image) => {
      const moves = planRebalance(image);
      const records = request.dryRun ? [] : [...throttleRecords(request.throttleBytesPerSec, image), ...alterReassignments(moves.map(toItem), image, this.completeEarly)];
      return { records, result: { moves } };
    });
  }

  /**
   * Marks a broker decommissioned (no new replicas go to it) and reassigns every replica it
   * holds to the other eligible brokers; refused, changing nothing, when some partition would
   * not keep its replication factor. A dry run only answers the plan.
   */
  decommissionBroker(request: { brokerId: number; dryRun: boolean; throttleBytesPerSec?: number }): Promise<{ moves: PlannedMove[] }> {
    return this.decide((image) => {
      const moves = planDecommission(request.brokerId, image);
      if (request.dryRun) return { records: [], result: { moves } };
      const mark: MetadataRecord[] = image.broker(request.brokerId)?.decommissioned === true ? [] : [{ type: 'BrokerDecommission', brokerId: request.brokerId }];
      return { records: [...mark, ...throttleRecords(request.throttleBytesPerSec, image), ...alterReassignments(moves.map(toItem), image, this.completeEarly)], result: { moves } };
    });
  }

  /** A broker's report of replicas whose log failed or recovered (see alterReplicaStatus). */
  alterReplicaStatus(request: ReplicaStatusRequest): Promise<void> {
    return this.decide((image) => ({ records: alterReplicaStatus(request, image), result: undefined }));
  }

  /** Fences brokers whose session ran out, one decision each. */
  private checkSessions(): void {
    const nowMs = this.ports.clock.monotonicMs();
    for (const broker of this.ports.image.brokers()) {
      if (broker.fenced) continue;
      const lastMs = this.lastHeartbeatMs.get(broker.brokerId) ?? nowMs;
      if (!this.lastHeartbeatMs.has(broker.brokerId)) this.lastHeartbeatMs.set(broker.brokerId, nowMs);
      if (nowMs - lastMs <= this.config.sessionTimeoutMs) continue;
      const brokerId = broker.brokerId;
      // Judged again when its turn comes: a heartbeat may have arrived meanwhile.
      this.decide((image) => {
        const silentMs = this.ports.clock.monotonicMs() - (this.lastHeartbeatMs.get(brokerId) ?? 0);
        const stillDue = image.broker(brokerId)?.fenced === false && silentMs > this.config.sessionTimeoutMs;
        return { records: stillDue ? fenceBroker(brokerId, image, this.electOutsideIsr) : [], result: undefined };
      }).catch(() => undefined);
    }
  }

  /** Moves leadership back to preferred replicas (in the ISR, unfenced) when a broker's share is off. */
  private checkLeaderBalance(): void {
    const imbalanced = [...preferredLeaderImbalance(this.ports.image).values()].some((broker) => broker.ratio > this.config.leaderImbalanceRatioMax);
    if (!imbalanced) return;
    this.decide((image) => ({ records: electPreferredLeaders(image), result: undefined })).catch(() => undefined);
  }

  private scheduleRebalanceCheck(): void {
    this.rebalanceTimer = this.ports.clock.setTimer(this.config.leaderRebalanceCheckMs, () => {
      if (!this.active) return;
      this.checkLeaderBalance();
      this.scheduleRebalanceCheck();
    });
  }

  private scheduleSessionCheck(): void {
    this.sessionTimer = this.ports.clock.setTimer(this.config.sessionCheckMs, () => {
      if (!this.active) return;
      this.checkSessions();
      this.scheduleSessionCheck();
    });
  }

  /** Queues a decision; it runs against the image once every earlier one has applied. */
  private decide<T>(decision: Decision<T>): Promise<T> {
    if (!this.active) return Promise.reject(notController());
    if (this.queue.length >= this.config.queuedRequestsMax) return Promise.reject(new DriftwoodError('REQUEST_TIMED_OUT', `more than ${this.config.queuedRequestsMax} controller requests queued`));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        run: async () => {
          try {
            if (this.unresolvedIndex > 0) await this.appliedUpTo(this.unresolvedIndex);
            this.checkActive();
            const { records, result } = decision(this.ports.image);
            if (records.length > 0) await this.propose(encodeRecords(records));
            resolve(result);
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        },
      });
      this.drain();
    });
  }

  private drain(): void {
    if (this.running) return;
    const next = this.queue.shift();
    if (next === undefined) return;
    this.running = true;
    void next.run().finally(() => {
      this.running = false;
      this.drain();
    });
  }

  /** Proposes, remembering an entry whose fate a timeout left open (see unresolvedIndex). */
  private async propose(data: Uint8Array): Promise<void> {
    try {
      await this.ports.propose(data);
    } catch (error) {
      const index = error instanceof DriftwoodError && error.code === 'REQUEST_TIMED_OUT' ? error.hints['index'] : undefined;
      if (typeof index === 'number') this.unresolvedIndex = Math.max(this.unresolvedIndex, index);
      throw error;
    }
  }

  private checkActive(): void {
    if (!this.active) throw notController();
  }
}

function notController(): DriftwoodError {
  return new DriftwoodError('NOT_CONTROLLER', 'this node is not the controller');
}

/** 22 characters of base64url, like Kafka's topic and cluster ids, from the Rng port. */
function randomId(rng: Rng): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  let id = '';
  for (let i = 0; i < 22; i += 1) id += alphabet[rng.int(alphabet.length)] ?? 'A';
  return id;
}

export interface AlterReassignmentsRequest {
  readonly reassignments: readonly ReassignmentItem[];
  /** The reassignment throttle to set with them (bytes/s; -1 removes it); unchanged when absent. */
  readonly throttleBytesPerSec?: number;
}

function throttleRecords(bytesPerSec: number | undefined, image: MetadataImage): MetadataRecord[] {
  if (bytesPerSec === undefined || bytesPerSec === image.replicationThrottleBytesPerSec) return [];
  return [{ type: 'ReplicationThrottle', bytesPerSec }];
}

function toItem(move: PlannedMove): ReassignmentItem {
  return { topicId: move.topicId, partition: move.partition, replicas: move.to };
}
