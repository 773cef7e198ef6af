// The cluster simulation: N real BrokerNodes (metadata quorum, controller, broker agent,
// replica manager) on simulated ports (scheduler clock, seeded Rng, lossy networks for Raft
// messages and for broker requests, crash-faithful disks that can turn slow, memory-level KVs
// kept across restarts with fsync latency).
// Clients: admins create and delete topics and ask for preferred-leader elections; producers
// write acks=all batches (idempotent: a producer id from a broker, a sequence per partition)
// and plain acks=1 batches, keyed and not, to a data topic and retry them; consumers poll each
// partition naming the leader epoch they know.
// Nemesis (drawn from the seed, or an explicit schedule): crashes, RF-1 replicas of a data
// partition at once, isolation (of any node, of the controller, of a leader from its
// followers), random, one-way and bridge partitions, pauses, clean stops, clock jumps, slow
// disks; then it heals.
// Checkers: at most one Raft leader per term; at every applied metadata entry, the same entry
// on every node, no partition led by a fenced broker, leader and broker epochs that never go
// back, one leader per leader epoch, ISRs gaining only unfenced brokers, even placement,
// acknowledged creations and deletions that stick; every acknowledging leader registered and
// unfenced in its own image; the client history against the final logs (Jepsen's anomalies,
// see data-history.ts); replicas identical below the high watermark; and after healing
// (liveness) one controller, every broker registered and unfenced, the same image everywhere,
// every node hosting its replicas in the right role, every partition led with a full ISR,
// leadership back on preferred replicas, and a produce to every data partition acknowledged.
// It also times partition-leadership failover after a broker dies while the cluster is healthy.
import type { MemoryLevel } from 'memory-level';
import type { Entry, Message, RaftBug } from '../raft/index.js';
import { BrokerNode, type BrokerNodeBug, type BrokerNodeConfig } from '../src/broker/broker-node.js';
import { errorFromWire, type ControllerAnswers, type ControllerChannel, type ControllerRequest, type ControllerRequestKind } from '../src/broker/controller-requests.js';
import { defaultControllerConfig } from '../src/controller/controller.js';
import type { MetadataImage, PartitionState } from '../src/controller/image.js';
import { preferredLeaderImbalance } from '../src/controller/placement.js';
import { decodeRecords, NO_LEADER } from '../src/controller/records.js';
import { isReassigning } from '../src/controller/reassignment.js';
import { effectiveTopicConfig } from '../src/controller/topic-config.js';
import { defaultRaftTiming } from '../src/quorum/raft-node.js';
import { decodeFetchResponse, encodeFetchResponse } from '../src/replica/fetch-codec.js';
import type { ReplicaChannel, ReplicaFetchRequest } from '../src/replica/fetch-protocol.js';
import { defaultReplicaManagerConfig, parsePartitionDir } from '../src/replica/replica-manager.js';
import { DriftwoodError } from '../storage/errors.js';
import type { PartitionLog } from '../storage/partition-log.js';
import { buildBatch, type ProducerRecord } from '../storage/record-batch.js';
import { partitionForKey } from '../src/partitioner.js';
import { DataHistory, type DataAnomaly, type DataCounts, type StoredRecord } from './data-history.js';
import { SimDisk } from './disk.js';
import { hash64 } from './hash.js';
import { createMemoryLevel, openMemoryKV, slowKV } from './kv.js';
import { calmLinks, SimNetwork, type LinkFaults } from './network.js';
import { copyRaftMessage } from './raft-sim.js';
import { SeededRng } from './rng.js';
import { Scheduler, SimClock } from './scheduler.js';
import { defaultGroupCoordinatorConfig, type GroupCoordinatorConfig } from '../src/group/coordinator.js';
import { GroupWorkload, type GroupCounts, type GroupViolationKind } from './group-workload.js';
import { ClassicGroupWorkload, type ClassicCounts, type ClassicViolationKind } from './classic-group-workload.js';
import { readBatches } from './batches.js';
import { slowDisk } from './slow-disk.js';
import { drawMove, moveStepViolation, type ReplicaSet } from './replica-moves.js';

export interface ClusterSimOptions {
  readonly seed: number;
  readonly nodes: number;
  /** Virtual time with faults, then healed time in which the cluster must converge. */
  readonly faultMs: number;
  readonly healMs: number;
  /** Deliberate defects: the broker's and the Raft core's (`raft-*`). */
  readonly bugs?: ReadonlySet<BrokerNodeBug | RaftBug>;
  /** The data topic's partitions (3) and replication factor (3, or fewer nodes). */
  readonly partitions?: number;
  readonly replicationFactor?: number;
  /** The kinds of fault the nemesis may inject (all). */
  readonly faults?: ReadonlySet<FaultKind>;
  /** Sees every trace line (`--trace`): node starts and crashes, faults, roles, acknowledgements. */
  readonly trace?: (line: string) => void;
  /** An explicit fault schedule (property tests) instead of the seed's random nemesis. */
  readonly schedule?: readonly ScheduledFault[];
  /** The workload and the network's message faults; drawn from the seed when absent. */
  readonly workload?: Partial<Workload>;
  readonly linkFaults?: LinkFaults;
  /** Relative likelihood of each fault kind (0: never); drawn from the seed (1 to 4 each) when absent. */
  readonly faultWeights?: Partial<Record<FaultKind, number>>;
  /** Members of a consumer group sharing the data topic (0: no group workload). */
  readonly groupMembers?: number;
  /** Group coordinator settings over the defaults (a short checkpoint interval, say). */
  readonly groupCoordinator?: Partial<GroupCoordinatorConfig>;
  /** Members of a group under Kafka's classic protocol sharing the data topic (0: none). */
  readonly classicMembers?: number;
}

/** What the nemesis can do; `--faults` picks a subset. */
export const faultKinds = ['crash', 'crash-replicas', 'isolate', 'isolate-controller', 'isolate-leader', 'partition', 'one-way', 'bridge', 'pause', 'clean-stop', 'clock-jump', 'slow-disk', 'disk-error', 'reassign', 'decommission'] as const;
export type FaultKind = (typeof faultKinds)[number];
/**
 * Faults that `all` leaves out: each new kind changes what every seed draws, so it is named
 * on its own (`--faults all,disk-error`) and the seeds recorded before it still replay.
 */
export const optInFaultKinds: readonly FaultKind[] = ['disk-error', 'reassign', 'decommission'];
/** What `--faults all` (and no --faults) enables. */
export const defaultFaultKinds: readonly FaultKind[] = faultKinds.filter((kind) => !optInFaultKinds.includes(kind));

/** One fault at a given virtual time: `target` picks a node (modulo the node count) or a data partition. */
export interface ScheduledFault {
  readonly atMs: number;
  readonly kind: FaultKind;
  readonly target: number;
  readonly downMs: number;
}

export interface Workload {
  /** Share of batches produced with acks=all (the rest acks=1). */
  readonly acksAllShare: number;
  /** Share of batches with a key (the rest null keys). */
  readonly keyedShare: number;
  /** Mean gap between new batches. */
  readonly produceGapMs: number;
}

/** Every kind of violation a checker reports: Jepsen's data anomalies and the cluster's own invariants. */
export type ViolationKind = DataAnomaly
  | 'replica-divergence' | 'two-raft-leaders' | 'two-partition-leaders' | 'metadata-divergence' | 'epoch-regress'
  | 'fenced-leader' | 'fenced-isr' | 'unregistered-leader' | 'placement' | 'topic-lost' | 'invariant' | 'liveness'
  | 'reassignment' | 'stray-replica'
  | GroupViolationKind | ClassicViolationKind;

export interface ClusterSimResult {
  seed: number;
  violations: string[];
  /** How many violations of each kind. */
  violationKinds: Record<string, number>;
  simulatedMs: number;
  events: number;
  traceHash: string;
  /** Virtual ms from the death of a partition-leading broker to the last of its leaderships moving. */
  brokerFailoverMs: number[];
  /** The same when the broker that died was also the controller. */
  controllerFailoverMs: number[];
  /** Records producers had acknowledged (acks=all and acks=1), every one checked at the end. */
  recordsAcknowledged: number;
  recordsAcknowledgedAcksOne: number;
  /** acks=all records lost (violations); acks=1 records lost (allowed: their leader died first). */
  lost: number;
  lostAcksOne: number;
  /** Extra copies of retried batches (allowed without an idempotent producer). */
  duplicates: number;
  /** Idempotent batches sent more than once: retries the leaders had to drop (a copy would be a duplicate violation). */
  idempotentRetried: number;
  /** Times the idempotent producer's sequence broke (a batch lost or given up) and it took a new producer id. */
  producerIdResets: number;
  /** Batches the producer gave up on after its delivery timeout. */
  producesAbandoned: number;
  /** Distinct (partition, offset) consumers read during the run, every one checked at the end. */
  recordsConsumed: number;
  topicsCreated: number;
  topicsDeleted: number;
  appliedIndex: number;
  /** Faults injected, by kind. */
  faultsInjected: Record<string, number>;
  /** The consumer group's figures (null without a group workload). */
  group: GroupCounts | null;
  /** The classic group's figures (null without one). */
  classic: ClassicCounts | null;
  /** Replica-list changes the images applied (reassignments started, replaced, completed, cancelled). */
  reassignmentSteps: number;
  /** Reassignments that completed (the replicas became the target). */
  reassignmentsCompleted: number;
  /** Brokers decommissioned in the final image (each emptied of replicas, checked after healing). */
  brokersDecommissioned: number;
}

export const defaultClusterSimOptions = { nodes: 3, faultMs: 30_000, healMs: 20_000 } as const;
const EVENTS_PER_RUN_MAX = 5_000_000;
/** How long before the end of a run the consumer group's final check starts. */
const GROUP_CHECK_MS = 5000;
/** The classic group's check must be done this long before the end of a run. */
const CLASSIC_CHECK_END_MS = 1000;
const FORWARD_TIMEOUT_MS = 2000;
const DATA_TOPIC = 'data';
/** Reassignment throttles the nemesis sets (bytes/s; -1 removes it): slow enough to stretch a move over faults. */
const REASSIGN_THROTTLES_BYTES_PER_SEC = [-1, 100_000, 1_000_000] as const;
/** The operator's moves come this often (uniform over [min, min + spread)). */
const MOVE_GAP_MS_MIN = 500;
const MOVE_GAP_MS_SPREAD = 2500;
/** The producer: its request timeout, the client-side slack before it calls an answer lost, retry backoff, delivery timeout. */
const PRODUCE_TIMEOUT_MS = 2000;
const REQUEST_SLACK_MS = 500;
const RETRY_BACKOFF_MS = 100;
const DELIVERY_TIMEOUT_MS = 10_000;
/** Distinct keys keyed batches draw from. */
const KEYS = 32;
/** Data anomalies reported one by one per run (all are counted). */
const VIOLATIONS_REPORTED_MAX = 20;

/** The stored batches in [from, end), read whole. */
async function readRange(log: PartitionLog, from: number, end: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let offset = from;
  while (offset < end) {
    const read = await log.read(offset, { bytesMax: 1 << 20, offsetEnd: end });
    if (read.bytes.length === 0) break;
    parts.push(read.bytes);
    offset = read.nextOffset;
  }
  return Buffer.concat(parts);
}


/** A request between brokers (for the controller, or a replica fetch) or its answer on the simulated wire. */
type Answer = { readonly ok: unknown } | { readonly error: Record<string, unknown> };
type Request = { readonly kind: 'controller'; readonly body: ControllerRequest } | { readonly kind: 'fetch'; readonly body: ReplicaFetchRequest };

interface Envelope {
  readonly from: number;
  readonly to: number;
  readonly id: number;
  readonly request?: Request;
  readonly answer?: Answer;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  cancelTimer: () => void;
}

interface Host {
  readonly id: number;
  readonly db: MemoryLevel<string, Uint8Array>;
  readonly disk: SimDisk;
  clock: SimClock;
  node: BrokerNode | null;
  starting: boolean;
  paused: boolean;
  /** Until when the nemesis keeps this node's disk slow. */
  slowDiskUntilMs: number;
  generation: number;
  pending: Map<number, Pending>;
}

interface OutgoingBatch {
  readonly id: string;
  readonly partition: number;
  readonly acks: 1 | -1;
  readonly values: readonly string[];
  readonly bytes: Buffer;
  readonly deadlineMs: number;
  readonly onAcknowledged?: () => void;
  /** The idempotent producer session that numbered it; absent for a plain batch. */
  readonly session?: ProducerSession;
  /** Its place among the session's batches to the partition (0, 1, ...). */
  readonly ordinal?: number;
}

/**
 * The idempotent producer (KIP-98): one producer id from a broker, the next sequence per
 * partition, and the batches not yet acknowledged or given up, oldest first. Its batches carry
 * the id and sequence in their bytes, so each retry is the same batch to the leader.
 */
interface ProducerSession {
  /** Null until a broker answered initProducerId; batches made meanwhile are plain. */
  producerId: number | null;
  readonly sequences: number[];
  /** Batches sent so far per partition: the next one's ordinal. */
  readonly sent: number[];
  readonly unresolved: OutgoingBatch[][];
}

/** An idempotent batch made but not sent yet: it gets its sequence when a slot frees up. */
interface WaitingBatch {
  readonly id: string;
  readonly values: readonly string[];
  readonly records: readonly ProducerRecord[];
  readonly deadlineMs: number;
}

/**
 * The broker remembers a producer's last 5 batches per partition, so a batch may be sent only
 * while the oldest one not yet acknowledged is at most 4 batches before it: a retry of that
 * one is then still recognised (Kafka's max.in.flight.requests.per.connection of 5, which its
 * producer keeps by resending a failed batch before any newer one).
 */
const IN_FLIGHT_PER_PARTITION_MAX = 5;
/** Errors that say the partition's sequence for this producer is broken, unless an earlier batch is still on its way. */
const SEQUENCE_ERRORS: ReadonlySet<string> = new Set(['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH']);
/** How long the producer waits for initProducerId before asking another node, and between attempts. */
const PRODUCER_ID_WAIT_MS = FORWARD_TIMEOUT_MS + REQUEST_SLACK_MS;
const PRODUCER_ID_BACKOFF_MS = 200;

interface Failover {
  readonly brokerId: number;
  readonly fromMs: number;
  readonly wasController: boolean;
}

export async function runClusterSim(options: ClusterSimOptions): Promise<ClusterSimResult> {
  return new ClusterSim(options).run();
}

class ClusterSim {
  private readonly scheduler = new Scheduler(0);
  private readonly rng: SeededRng;
  private readonly nemesisRng: SeededRng;
  private readonly clientRng: SeededRng;
  private readonly raftNet: SimNetwork<Message>;
  private readonly controllerNet: SimNetwork<Envelope>;
  private readonly hosts: Host[] = [];
  private readonly ids: number[];
  private readonly violations: string[] = [];
  private readonly violationKinds: Record<string, number> = {};
  private nextEnvelopeId = 1;
  /** The image hash first applied at each index, and the facts the checkers carry forward. */
  private readonly imageAt = new Map<number, string>();
  private checkedIndex = 0;
  private readonly leaderEpochs = new Map<string, { epoch: number; leader: number }>();
  private readonly raftLeaderOfTerm = new Map<number, number>();
  private readonly brokerEpochs = new Map<number, number>();
  private readonly isrs = new Map<string, readonly number[]>();
  /** Each partition's replicas and ISR as last checked: a reassignment step is judged against them. */
  private readonly replicaSets = new Map<string, ReplicaSet & { reassigning: boolean }>();
  private reassignmentSteps = 0;
  private reassignmentsCompleted = 0;
  /** Brokers a decommission was asked for (answered or not: a lost answer may hide a commit). */
  private readonly decommissionsAsked = new Set<number>();
  private readonly topicsSeen = new Set<string>();
  /** Client outcomes: names whose creation or deletion was acknowledged, and those in doubt. */
  private readonly createdAcked = new Set<string>();
  private readonly deletedAcked = new Set<string>();
  private readonly doubtful = new Set<string>();
  private topicSerial = 0;
  /** The replicated data topic producers write to, once created. */
  private dataTopicId: string | null = null;
  /** What producers and consumers did and saw, checked against the final logs. */
  private readonly history = new DataHistory((kind, text) => { this.violation(kind, text); });
  private dataCounts: DataCounts | null = null;
  private recordSerial = 0;
  private batchSerial = 0;
  private producesAbandoned = 0;
  private session: ProducerSession;
  /** Idempotent batches per partition waiting for a slot (or for a new session's id), oldest first. */
  private readonly waiting: WaitingBatch[][];
  private producerIdAsks = 0;
  private producerIdResets = 0;
  private readonly probesAcknowledged = new Set<number>();
  /** Each partition's consumer: its next offset and the leader epoch it knows. */
  private readonly consumers: Array<{ position: number; leaderEpoch: number }>;
  private readonly workload: Workload;
  private readonly faultWeights: ReadonlyArray<{ kind: FaultKind; weight: number }>;
  private readonly partitions: number;
  private readonly replicationFactor: number;
  private readonly faultsInjected: Record<string, number> = {};
  private failover: Failover | null = null;
  private readonly brokerFailoverMs: number[] = [];
  private readonly controllerFailoverMs: number[] = [];
  private readonly faultGapMs: number;
  private readonly clientGapMs: number;
  private readonly groups: GroupWorkload | null;
  private readonly classic: ClassicGroupWorkload | null;
  /** Draws the operator's reassignments (`reassign`), besides those the nemesis picks. */
  private readonly movesRng: SeededRng | null;

  constructor(private readonly options: ClusterSimOptions) {
    this.rng = new SeededRng(options.seed);
    this.nemesisRng = this.rng.fork();
    this.clientRng = this.rng.fork();
    const pick = <T>(choices: readonly T[]): T => choices[this.nemesisRng.int(choices.length)] as T;
    this.faultGapMs = pick([1000, 2000, 4000]);
    this.clientGapMs = pick([200, 600, 1500]);
    this.workload = {
      acksAllShare: pick([1, 0.8, 0.5]),
      keyedShare: pick([0, 0.5, 1]),
      produceGapMs: pick([10, 50, 200]),
      ...options.workload,
    };
    const linkFaults = drawFaults(this.nemesisRng);
    this.raftNet = new SimNetwork<Message>(this.scheduler, this.rng.fork(), options.linkFaults ?? linkFaults, copyRaftMessage);
    this.controllerNet = new SimNetwork<Envelope>(this.scheduler, this.rng.fork(), this.raftNet.faults, (envelope) => copyWire(envelope) as Envelope);
    this.ids = Array.from({ length: options.nodes }, (_, i) => i + 1);
    this.partitions = options.partitions ?? 3;
    this.replicationFactor = options.replicationFactor ?? Math.min(3, options.nodes);
    this.consumers = Array.from({ length: this.partitions }, () => ({ position: 0, leaderEpoch: -1 }));
    this.session = this.newSession();
    this.waiting = Array.from({ length: this.partitions }, () => []);
    // Fault probabilities differ per seed: each enabled kind gets a weight of 1 to 4.
    const enabled = options.faults ?? new Set(defaultFaultKinds);
    this.faultWeights = faultKinds.filter((kind) => enabled.has(kind)).map((kind) => {
      const drawn = 1 + this.nemesisRng.int(4);
      return { kind, weight: options.faultWeights?.[kind] ?? drawn };
    });
    // Forked last, so a run without groups draws exactly what it drew before groups existed.
    const groupRng = this.rng.fork();
    this.groups = (options.groupMembers ?? 0) <= 0 ? null : new GroupWorkload({
      scheduler: this.scheduler,
      rng: groupRng,
      nodes: () => this.hosts.flatMap((host) => (host.node === null || host.paused ? [] : [{ id: host.id, node: host.node, generation: host.generation }])),
      topic: DATA_TOPIC,
      partitions: this.partitions,
      active: () => this.clientsActive,
      violation: (kind, text) => { this.violation(kind, text); },
      read: (partition, offset, value) => { this.history.read(partition, offset, value); },
    }, options.groupMembers ?? 0);
    // Forked after the group's, and only when moves are on, so other runs draw as before.
    this.movesRng = enabled.has('reassign') ? this.rng.fork() : null;
    // Forked last and only when on, as the moves' generator.
    this.classic = (options.classicMembers ?? 0) <= 0 ? null : new ClassicGroupWorkload({
      scheduler: this.scheduler,
      rng: this.rng.fork(),
      nodes: () => this.hosts.flatMap((host) => (host.node === null || host.paused ? [] : [{ id: host.id, node: host.node, generation: host.generation }])),
      topic: DATA_TOPIC,
      partitions: this.partitions,
      healed: () => !this.faulting,
      stopMs: options.faultMs + options.healMs - CLASSIC_CHECK_END_MS,
      violation: (kind, text) => { this.violation(kind, text); },
      read: (partition, offset, value) => { this.history.read(partition, offset, value); },
    }, options.classicMembers ?? 0);
  }

  async run(): Promise<ClusterSimResult> {
    const trace = this.options.trace;
    if (trace !== undefined) this.scheduler.onRecord = (timeMs, line) => { trace(`${timeMs.toFixed(1).padStart(9)} ${line}`); };
    for (const id of this.ids) {
      this.hosts.push({ id, db: createMemoryLevel(), disk: new SimDisk(), clock: new SimClock(this.scheduler, `n${id}`), node: null, starting: false, paused: false, slowDiskUntilMs: 0, generation: 0, pending: new Map() });
    }
    for (const host of this.hosts) await this.startNode(host);
    this.scheduleClient();
    this.createDataTopic();
    this.requestProducerId(this.session);
    this.scheduleProducer();
    for (let partition = 0; partition < this.partitions; partition += 1) this.scheduleConsumer(partition);
    this.groups?.start();
    this.classic?.start();
    this.scheduleMoves();
    if (this.options.schedule === undefined) this.scheduleNemesis();
    else for (const fault of this.options.schedule) this.scheduler.at(fault.atMs, 'scheduled fault', () => { if (this.faulting) this.inject(fault.kind, fault.target, fault.downMs); });
    const stop = (): boolean => this.violations.length > 0;
    await this.scheduler.run({ untilMs: this.options.faultMs, eventsMax: EVENTS_PER_RUN_MAX, stop });
    this.heal();
    this.scheduler.at(this.options.faultMs + this.options.healMs / 2, 'liveness probes', () => { this.probeProducers(); });
    // The group's final check asks the coordinator, which needs the cluster's timers running.
    let groupCheck: Promise<GroupCounts> | null = null;
    if (this.groups !== null) {
      const groups = this.groups;
      this.scheduler.at(this.options.faultMs + this.options.healMs - GROUP_CHECK_MS, 'group check', () => { groupCheck = groups.check(); });
    }
    // The classic group's starts when the clients stop, given the high watermarks then.
    let classicCheck: Promise<ClassicCounts> | null = null;
    if (this.classic !== null) {
      const classic = this.classic;
      this.scheduler.at(this.options.faultMs + this.options.healMs / 2, 'classic check', () => {
        classicCheck = classic.check(this.dataHighWatermarks(), this.options.faultMs + this.options.healMs - CLASSIC_CHECK_END_MS);
      });
    }
    await this.scheduler.run({ untilMs: this.options.faultMs + this.options.healMs, eventsMax: EVENTS_PER_RUN_MAX, stop });
    this.checkConverged();
    if (this.violations.length === 0) await this.checkData();
    const groupCounts = await this.finishedCheck<GroupCounts>(groupCheck, 'group');
    const classicCounts = await this.finishedCheck<ClassicCounts>(classicCheck, 'classic group');
    const brokersDecommissioned = this.controller()?.node?.image.brokers().filter((broker) => broker.decommissioned === true).length ?? 0;
    for (const host of this.hosts) this.stopNode(host);
    return {
      seed: this.options.seed,
      violations: this.violations,
      simulatedMs: this.scheduler.nowMs,
      events: this.scheduler.eventCount,
      traceHash: this.scheduler.traceHash(),
      brokerFailoverMs: this.brokerFailoverMs,
      controllerFailoverMs: this.controllerFailoverMs,
      violationKinds: this.violationKinds,
      recordsAcknowledged: (this.dataCounts?.acknowledgedAll ?? 0) + (this.dataCounts?.acknowledgedOne ?? 0),
      recordsAcknowledgedAcksOne: this.dataCounts?.acknowledgedOne ?? 0,
      lost: this.dataCounts?.lost ?? 0,
      lostAcksOne: this.dataCounts?.lostUnguaranteed ?? 0,
      duplicates: this.dataCounts?.duplicates ?? 0,
      idempotentRetried: this.dataCounts?.idempotentRetried ?? 0,
      producerIdResets: this.producerIdResets,
      producesAbandoned: this.producesAbandoned,
      recordsConsumed: this.dataCounts?.consumed ?? 0,
      topicsCreated: this.createdAcked.size,
      topicsDeleted: this.deletedAcked.size,
      appliedIndex: this.checkedIndex,
      faultsInjected: this.faultsInjected,
      group: groupCounts,
      classic: classicCounts ?? this.classic?.counts() ?? null,
      reassignmentSteps: this.reassignmentSteps,
      reassignmentsCompleted: this.reassignmentsCompleted,
      brokersDecommissioned,
    };
  }

  /** A group check's result, if it finished within the run (a check still waiting is a liveness failure). */
  private async finishedCheck<T>(check: Promise<T> | null, what: string): Promise<T | null> {
    if (check === null) return null;
    const pending = Symbol('pending');
    const result = await Promise.race([check, Promise.resolve(pending)]);
    if (result !== pending) return result;
    this.violation('liveness', `the ${what} check did not finish within the run`);
    return null;
  }

  /** Each data partition's high watermark at its leader (per the controller's image); 0 where none is known. */
  private dataHighWatermarks(): number[] {
    const topicId = this.dataTopicId;
    const image = this.controller()?.node?.image;
    return Array.from({ length: this.partitions }, (_, partition) => {
      const state = topicId === null ? undefined : image?.partition(topicId, partition);
      const leader = state === undefined ? undefined : this.hosts.find((host) => host.id === state.leader)?.node?.replicas.partition(topicId ?? '', partition);
      return leader?.highWatermark ?? 0;
    });
  }

  private violation(kind: ViolationKind, text: string): void {
    this.violations.push(`t=${this.scheduler.nowMs.toFixed(0)}ms [${kind}] ${text}`);
    this.violationKinds[kind] = (this.violationKinds[kind] ?? 0) + 1;
  }

  private get faulting(): boolean {
    return this.scheduler.nowMs < this.options.faultMs;
  }

  // --- nodes ---

  private nodeConfig(id: number): BrokerNodeConfig {
    const bugs = [...(this.options.bugs ?? [])];
    const raftBugs = new Set(bugs.filter((bug): bug is RaftBug => bug.startsWith('raft-')));
    const nodeBugs = new Set(bugs.filter((bug): bug is BrokerNodeBug => !bug.startsWith('raft-')));
    return {
      id,
      address: `sim-${id}:9092`,
      raft: { ...defaultRaftTiming, id, voters: this.ids, observers: [], ...(raftBugs.size === 0 ? {} : { bugs: raftBugs }) },
      controller: defaultControllerConfig,
      replica: defaultReplicaManagerConfig,
      heartbeatMs: 250,
      ...(this.options.groupCoordinator === undefined ? {} : { groups: { ...defaultGroupCoordinatorConfig, ...this.options.groupCoordinator } }),
      ...(nodeBugs.size === 0 ? {} : { bugs: nodeBugs }),
    };
  }

  private async startNode(host: Host): Promise<void> {
    host.starting = true;
    host.clock = new SimClock(this.scheduler, `n${host.id}`);
    host.pending = new Map();
    const generation = ++host.generation;
    if (host.disk.crashed) host.disk.reboot();
    const kv = slowKV(await openMemoryKV(host.db, { copy: false }), {
      delayMs: () => (this.rng.float() < 0.9 ? 0.2 + this.rng.float() * 2 : 5 + this.rng.float() * 30),
      after: (delayMs, run) => { this.scheduler.after(delayMs, `n${host.id} disk`, run); },
      alive: () => host.generation === generation,
    });
    const node = await BrokerNode.start(this.nodeConfig(host.id), {
      clock: host.clock,
      rng: this.rng.fork(),
      kv,
      disk: slowDisk(host.disk, {
        syncDelayMs: () => (this.scheduler.nowMs < host.slowDiskUntilMs ? 20 + this.rng.float() * 300 : 0),
        writeDelayMs: () => (this.scheduler.nowMs < host.slowDiskUntilMs ? this.rng.float() * 20 : 0),
        after: (delayMs, run) => { this.scheduler.after(delayMs, `n${host.id} slow disk`, run); },
        alive: () => host.generation === generation,
      }),
      raftTransport: { send: (messages) => { this.raftNet.send(messages); } },
      controllerChannel: this.channel(host),
      replicaChannel: this.replicaChannel(host),
    }, {
      onApply: (entry) => { this.onApply(host, entry); },
      onRoleChange: (role, leader, term) => {
        this.scheduler.record(`n${host.id} ${role} leader ${leader} term ${term}`);
        if (role !== 'leader') return;
        const previous = this.raftLeaderOfTerm.get(term);
        if (previous !== undefined && previous !== host.id) this.violation('two-raft-leaders', `two Raft leaders in term ${term}: n${previous} and n${host.id}`);
        this.raftLeaderOfTerm.set(term, host.id);
      },
      onFatal: (error) => { if (host.generation === generation) this.violation('invariant', `n${host.id} stopped on a broken invariant: ${error instanceof Error ? error.message : String(error)}`); },
    });
    if (host.generation !== generation) {
      node.stop(); // crashed while starting
      return;
    }
    host.node = node;
    host.starting = false;
    this.attach(host);
    this.scheduler.record(`start n${host.id}`);
  }

  private attach(host: Host): void {
    this.raftNet.attach(host.id, (message) => {
      try {
        host.node?.raft.receive(message);
      } catch {
        // onFatal recorded it
      }
    });
    this.controllerNet.attach(host.id, (envelope) => { this.onEnvelope(host, envelope); });
  }

  private detach(host: Host): void {
    this.raftNet.detach(host.id);
    this.controllerNet.detach(host.id);
  }

  /** A request to node `to` over the simulated network, answered or timed out after timeoutMs. */
  private call(host: Host, to: number, request: Request, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const id = this.nextEnvelopeId++;
      const timer = host.clock.setTimer(timeoutMs, () => {
        host.pending.delete(id);
        reject(new DriftwoodError('REQUEST_TIMED_OUT', `node ${to} did not answer`));
      });
      host.pending.set(id, { resolve, reject, cancelTimer: () => { timer.cancel(); } });
      this.controllerNet.send([{ from: host.id, to, id, request }]);
    });
  }

  /** This host's ControllerChannel: envelopes over the simulated network. */
  private channel(host: Host): ControllerChannel {
    return {
      send: <K extends ControllerRequestKind>(to: number, request: ControllerRequest<K>): Promise<ControllerAnswers[K]> =>
        this.call(host, to, { kind: 'controller', body: request }, FORWARD_TIMEOUT_MS) as Promise<ControllerAnswers[K]>,
    };
  }

  /** This host's ReplicaChannel: the answer travels in its wire encoding, as between processes. */
  private replicaChannel(host: Host): ReplicaChannel {
    return {
      fetch: async (leaderId, request) => {
        const bytes = await this.call(host, leaderId, { kind: 'fetch', body: request }, request.maxWaitMs + FORWARD_TIMEOUT_MS) as Uint8Array;
        return decodeFetchResponse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      },
    };
  }

  private onEnvelope(host: Host, envelope: Envelope): void {
    const node = host.node;
    if (node === null) return;
    if (envelope.request !== undefined) {
      // A process that died while handling the request never answers it.
      const generation = host.generation;
      const reply = (answer: Answer): void => {
        if (host.generation === generation) this.controllerNet.send([{ from: host.id, to: envelope.from, id: envelope.id, answer }]);
      };
      const request = envelope.request;
      const handled = request.kind === 'controller' ? node.handleControllerRequest(request.body) : node.replicas.handleFetch(request.body).then(encodeFetchResponse);
      handled.then(
        (ok) => { reply({ ok }); },
        (error: unknown) => { reply({ error: error instanceof DriftwoodError ? error.toJSON() : { error: 'INTERNAL', message: String(error) } }); },
      );
      return;
    }
    const pending = host.pending.get(envelope.id);
    if (pending === undefined || envelope.answer === undefined) return; // timed out already, or a duplicate
    host.pending.delete(envelope.id);
    pending.cancelTimer();
    if ('ok' in envelope.answer) pending.resolve(envelope.answer.ok);
    else pending.reject(errorFromWire(envelope.answer.error, 'no message'));
  }

  /** Power loss: memory, timers and mail gone; the KV keeps what was written. */
  private stopNode(host: Host): void {
    host.generation += 1;
    if (host.node !== null) host.disk.crash(this.rng);
    host.node?.stop();
    host.node = null;
    host.starting = false;
    host.clock.cancelAll();
    host.paused = false;
    host.pending.clear();
    this.detach(host);
  }

  private async restart(host: Host): Promise<void> {
    if (host.node !== null || host.starting) return;
    await this.startNode(host);
  }

  private controller(): Host | undefined {
    return this.hosts.find((host) => host.node?.controller.isActive === true && !host.paused);
  }

  // --- checkers ---

  /**
   * Every node applies the same entry at each index (so, applying deterministically, holds
   * the same image; the images themselves are compared byte for byte after healing). The
   * image after each newly committed index is checked once.
   */
  private onApply(host: Host, entry: Entry): void {
    const node = host.node;
    if (node === null) return;
    const hash = `${entry.term}:${entry.type}:${hash64(entry.data)}`;
    const seen = this.imageAt.get(entry.index);
    if (seen === undefined) {
      this.imageAt.set(entry.index, hash);
      if (entry.index > this.checkedIndex) {
        this.checkedIndex = entry.index;
        this.checkImage(node.image, entry);
      }
    } else if (seen !== hash) {
      this.violation('metadata-divergence', `n${host.id} applied ${hash} at index ${entry.index}, others applied ${seen}`);
    }
    this.checkFailover(node.image);
  }

  /**
   * The safety properties of one committed image, checked once per index. Only what `entry`
   * changed can break one, the image before it having been checked: a topic's records recheck
   * that topic, any other record (a broker fenced, say, which may leave a leader fenced
   * anywhere) rechecks everything.
   */
  private checkImage(image: MetadataImage, entry: Entry): void {
    const records = entry.type === 'normal' && entry.data.length > 0 ? decodeRecords(entry.data) : [];
    const changedTopics = new Set<string>();
    let everything = false;
    for (const record of records) {
      if ('topicId' in record) changedTopics.add(record.topicId);
      else everything = true;
    }
    if (!everything && changedTopics.size === 0) return;
    const fenced = new Set(image.brokers().filter((broker) => broker.fenced).map((broker) => broker.brokerId));
    for (const broker of everything ? image.brokers() : []) {
      const previous = this.brokerEpochs.get(broker.brokerId) ?? 0;
      if (broker.brokerEpoch < previous) this.violation('epoch-regress', `broker ${broker.brokerId} epoch went back from ${previous} to ${broker.brokerEpoch}`);
      this.brokerEpochs.set(broker.brokerId, broker.brokerEpoch);
    }
    const topics = everything ? image.topics() : [...changedTopics].flatMap((topicId) => image.topicById(topicId) ?? []).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const topic of topics) {
      const partitions = image.partitions(topic.topicId) ?? [];
      if (!this.topicsSeen.has(topic.topicId)) {
        this.topicsSeen.add(topic.topicId);
        // A decommissioned broker takes no new replicas.
        this.checkPlacement(topic.name, partitions, image.unfencedBrokerIds().filter((id) => image.broker(id)?.decommissioned !== true));
      }
      const minInsync = effectiveTopicConfig(topic.configs)['min.insync.replicas'];
      for (const p of partitions) {
        this.checkPartition(p, fenced);
        this.checkMoveStep(p, minInsync);
      }
    }
  }

  /** A change of a partition's replica list (a reassignment step) keeps its ISR safe (see moveStepViolation). */
  private checkMoveStep(p: PartitionState, minInsync: number): void {
    const key = `${p.topicId}-${p.partition}`;
    const before = this.replicaSets.get(key);
    const reassigning = isReassigning(p);
    this.replicaSets.set(key, { replicas: p.replicas, isr: p.isr, reassigning });
    if (before === undefined || before.replicas.join() === p.replicas.join()) return;
    this.reassignmentSteps += 1;
    if (before.reassigning && !reassigning && p.replicas.length > 0) this.reassignmentsCompleted += 1;
    if (p.topicId === this.dataTopicId) this.scheduler.record(`image: data-${p.partition} replicas [${before.replicas.join(',')}] -> [${p.replicas.join(',')}] isr [${p.isr.join(',')}]${reassigning ? ` adding [${(p.addingReplicas ?? []).join(',')}] removing [${(p.removingReplicas ?? []).join(',')}]` : ''}`);
    const broken = moveStepViolation(before, p, minInsync);
    if (broken !== null) this.violation('reassignment', `${key}: ${broken}`);
  }

  private checkPartition(p: PartitionState, fenced: ReadonlySet<number>): void {
    const key = `${p.topicId}-${p.partition}`;
    const before = this.isrs.get(key);
    if (p.topicId === this.dataTopicId && (before === undefined || this.leaderEpochs.get(key)?.leader !== p.leader || before.join() !== p.isr.join())) {
      this.scheduler.record(`image: data-${p.partition} leader ${p.leader} epoch ${p.leaderEpoch} isr [${p.isr.join(',')}]`);
    }
    if (p.leader !== NO_LEADER && fenced.has(p.leader)) this.violation('fenced-leader', `${key} is led by fenced broker ${p.leader}`);
    const previous = this.leaderEpochs.get(key);
    if (previous !== undefined) {
      if (p.leaderEpoch < previous.epoch) this.violation('epoch-regress', `${key} leader epoch went back from ${previous.epoch} to ${p.leaderEpoch}`);
      if (p.leaderEpoch === previous.epoch && p.leader !== previous.leader) this.violation('two-partition-leaders', `${key} has leaders ${previous.leader} and ${p.leader} in epoch ${p.leaderEpoch}`);
    }
    this.leaderEpochs.set(key, { epoch: p.leaderEpoch, leader: p.leader });
    const previousIsr = before ?? p.isr;
    for (const id of p.isr) if (!previousIsr.includes(id) && fenced.has(id)) this.violation('fenced-isr', `${key} took fenced broker ${id} into its ISR`);
    this.isrs.set(key, p.isr);
  }

  /** Preferred leaders (first replicas) of a new topic: counts per live broker differ by at most one. */
  private checkPlacement(name: string, partitions: readonly PartitionState[], live: readonly number[]): void {
    const counts = new Map(live.map((id) => [id, 0]));
    for (const p of partitions) {
      const preferred = p.replicas[0] ?? NO_LEADER;
      const count = counts.get(preferred);
      if (count === undefined) {
        this.violation('placement', `topic ${name} partition ${p.partition} prefers broker ${preferred}, which was not live at creation`);
        return;
      }
      counts.set(preferred, count + 1);
    }
    const values = [...counts.values()];
    if (Math.max(...values) - Math.min(...values) > 1) this.violation('placement', `topic ${name} spreads preferred leaders unevenly: ${JSON.stringify([...counts])}`);
  }

  /** Stops the failover stopwatch once no partition is led by the broker that died. */
  private checkFailover(image: MetadataImage): void {
    const watch = this.failover;
    if (watch === null) return;
    const stillLeads = image.topics().some((topic) => (image.partitions(topic.topicId) ?? []).some((p) => p.leader === watch.brokerId));
    if (stillLeads) return;
    (watch.wasController ? this.controllerFailoverMs : this.brokerFailoverMs).push(this.scheduler.nowMs - watch.fromMs);
    this.failover = null;
  }

  private checkConverged(): void {
    if (this.violations.length > 0) return;
    const controllers = this.hosts.filter((host) => host.node?.controller.isActive === true);
    if (controllers.length !== 1) {
      this.violation('liveness', `${controllers.length} active controllers ${this.options.healMs} ms after healing`);
      return;
    }
    const reference = controllers[0]?.node?.image;
    if (reference === undefined) return;
    const referenceHash = hash64(reference.snapshot());
    for (const host of this.hosts) {
      const image = host.node?.image;
      if (image === undefined) this.violation('liveness', `n${host.id} is not running after healing`);
      else if (image.lastAppliedIndex !== reference.lastAppliedIndex || hash64(image.snapshot()) !== referenceHash) this.violation('liveness', `n${host.id} did not converge: applied ${image.lastAppliedIndex} of ${reference.lastAppliedIndex}`);
    }
    for (const host of this.hosts) {
      const node = host.node;
      if (node === null) continue;
      const hosted = reference.topics().flatMap((topic) => (reference.partitions(topic.topicId) ?? []).filter((p) => p.replicas.includes(host.id)));
      if (node.replicas.hostedCount !== hosted.length) this.violation('liveness', `n${host.id} hosts ${node.replicas.hostedCount} replicas, the image gives it ${hosted.length}`);
      for (const p of hosted) {
        const replica = node.replicas.partition(p.topicId, p.partition);
        if (replica?.isLeader !== (p.leader === host.id)) this.violation('liveness', `n${host.id} plays the wrong role for ${p.topicId}-${p.partition}`);
      }
    }
    this.checkNoStrayReplicas(reference);
    for (const id of this.ids) {
      const broker = reference.broker(id);
      if (broker === undefined || broker.fenced) this.violation('liveness', `broker ${id} is ${broker === undefined ? 'not registered' : 'fenced'} after healing`);
    }
    for (const topic of reference.topics()) {
      for (const p of reference.partitions(topic.topicId) ?? []) {
        if (p.leader === NO_LEADER || p.isr.length !== p.replicas.length) {
          this.violation('liveness', `${topic.name}-${p.partition} after healing: leader ${p.leader}, isr [${p.isr.join(',')}], replicas [${p.replicas.join(',')}]`);
        }
        if (isReassigning(p)) this.violation('liveness', `${topic.name}-${p.partition} is still being reassigned after healing: replicas [${p.replicas.join(',')}], adding [${(p.addingReplicas ?? []).join(',')}], removing [${(p.removingReplicas ?? []).join(',')}]`);
      }
    }
    // Leadership is back on preferred replicas, within the controller's imbalance threshold.
    for (const [brokerId, imbalance] of preferredLeaderImbalance(reference)) {
      if (imbalance.ratio > defaultControllerConfig.leaderImbalanceRatioMax) this.violation('liveness', `broker ${brokerId} leads too few of its preferred partitions after healing: ${JSON.stringify(imbalance)}`);
    }
    for (const name of this.createdAcked) {
      if (!this.doubtful.has(name) && !this.deletedAcked.has(name) && reference.topic(name) === undefined) this.violation('topic-lost', `acknowledged topic ${name} is gone`);
    }
    for (const name of this.deletedAcked) if (reference.topic(name) !== undefined) this.violation('topic-lost', `deleted topic ${name} is back`);
    for (let partition = 0; partition < this.partitions && this.dataTopicId !== null; partition += 1) {
      if (!this.probesAcknowledged.has(partition)) this.violation('liveness', `no acks=all produce to data-${partition} succeeded in the second half of the healed time`);
    }
  }

  /**
   * After healing, a node's disk holds a partition directory only for a replica the image
   * gives it: a replica moved away (or whose move was cancelled) deletes its data, even when
   * its broker was down as the move completed. Topics no longer in the image are left out
   * (their directory names are the operator's to clean up when a disk failed mid-deletion).
   */
  private checkNoStrayReplicas(reference: MetadataImage): void {
    for (const host of this.hosts) {
      if (host.node === null) continue;
      const dirs = new Set(host.disk.fileNames().map((path) => path.split('/')[0] ?? ''));
      for (const dir of dirs) {
        const owner = parsePartitionDir(dir);
        if (owner === null || reference.topicById(owner.topicId) === undefined) continue;
        const state = reference.partition(owner.topicId, owner.partition);
        if (state?.replicas.includes(host.id) !== true) this.violation('stray-replica', `n${host.id} still holds ${dir}, which the image gives to [${state?.replicas.join(',') ?? ''}]`);
      }
    }
  }

  // --- the data topic: its producers, consumers and checks ---

  /** Creates the data topic (RF 3 where there are 3 nodes, min.insync.replicas 2, fsync per append), retrying until it exists. */
  private createDataTopic(): void {
    // Tried every 500 ms until some node's image has it: an answer may never come (the asking
    // node crashed), and a failed answer may hide a creation that committed.
    this.scheduler.after(500, 'create data topic', () => {
      const running = this.hosts.filter((candidate) => candidate.node !== null && !candidate.paused);
      const existing = running.map((host) => host.node?.image.topic(DATA_TOPIC)).find((topic) => topic !== undefined);
      if (existing !== undefined) {
        this.dataTopicId = existing.topicId;
        return;
      }
      const node = running[this.clientRng.int(Math.max(1, running.length))]?.node;
      const body = { name: DATA_TOPIC, partitions: this.partitions, replicationFactor: this.replicationFactor, configs: { 'min.insync.replicas': Math.min(2, this.replicationFactor), 'flush.ms': 0 } };
      node?.toController({ kind: 'create-topic', body }).catch(() => undefined);
      this.createDataTopic();
    });
  }

  private scheduleProducer(): void {
    this.scheduler.after(5 + this.clientRng.int(this.workload.produceGapMs * 2), 'produce', () => {
      this.produceOne();
      if (this.clientsActive) this.scheduleProducer();
    });
  }

  /** Clients keep working through the faults and the first half of the healed time. */
  private get clientsActive(): boolean {
    return this.scheduler.nowMs < this.options.faultMs + this.options.healMs / 2;
  }

  /**
   * A new batch of unique values. Keyed records go to the partition Kafka's default
   * partitioner picks for the key; a null-key batch goes to a random partition (sticky per batch).
   */
  private produceOne(): void {
    if (this.dataTopicId === null) return;
    const key = this.clientRng.float() < this.workload.keyedShare ? `k${this.clientRng.int(KEYS)}` : null;
    const keyBytes = key === null ? null : Buffer.from(key);
    const partition = keyBytes === null ? this.clientRng.int(this.partitions) : partitionForKey(keyBytes, this.partitions);
    const acks: 1 | -1 = this.clientRng.float() < this.workload.acksAllShare ? -1 : 1;
    const values = Array.from({ length: 1 + this.clientRng.int(5) }, () => `s${this.options.seed}-r${this.recordSerial++}`);
    const records: ProducerRecord[] = values.map((value) => ({ key: keyBytes, value: Buffer.from(value), timestampMs: this.scheduler.nowMs }));
    const session = this.session;
    const producerId = session.producerId;
    const deadlineMs = this.scheduler.nowMs + DELIVERY_TIMEOUT_MS;
    // Idempotence needs acks=all, as Kafka's enable.idempotence does: an acks=1 batch lost in a
    // failover would break the sequence. acks=1 batches stay plain (their retries may land twice).
    if (producerId === null || acks !== -1) {
      this.sendBatch({ id: `b${this.batchSerial++}`, partition, acks, values, bytes: buildBatch(records), deadlineMs });
      return;
    }
    this.waiting[partition]?.push({ id: `b${this.batchSerial++}`, values, records, deadlineMs });
    this.sendWaiting(partition);
  }

  /**
   * Numbers and sends waiting idempotent batches while the session has an id and the oldest
   * unacknowledged batch is fewer than IN_FLIGHT_PER_PARTITION_MAX back: a broken sequence then
   * costs at most that many, and batches not sent yet go on under the next session, as Kafka's
   * producer re-sequences them.
   */
  private sendWaiting(partition: number): void {
    const session = this.session;
    const producerId = session.producerId;
    const queue = this.waiting[partition];
    const unresolved = session.unresolved[partition];
    if (producerId === null || queue === undefined || unresolved === undefined) return;
    const sent = session.sent;
    while ((sent[partition] ?? 0) - (unresolved[0]?.ordinal ?? sent[partition] ?? 0) < IN_FLIGHT_PER_PARTITION_MAX) {
      const next = queue.shift();
      if (next === undefined) return;
      if (next.deadlineMs <= this.scheduler.nowMs) {
        this.producesAbandoned += 1;
        continue;
      }
      const baseSequence = session.sequences[partition] ?? 0;
      session.sequences[partition] = baseSequence + next.values.length;
      const bytes = buildBatch(next.records, { producerId, producerEpoch: 0, baseSequence });
      const ordinal = sent[partition] ?? 0;
      sent[partition] = ordinal + 1;
      const batch: OutgoingBatch = { id: next.id, partition, acks: -1, values: next.values, bytes, deadlineMs: next.deadlineMs, session, ordinal };
      unresolved.push(batch);
      this.sendBatch(batch);
    }
  }

  private newSession(): ProducerSession {
    const zeros = (): number[] => Array.from({ length: this.partitions }, () => 0);
    return { producerId: null, sequences: zeros(), sent: zeros(), unresolved: Array.from({ length: this.partitions }, () => []) };
  }

  /** Asks running nodes in turn for a producer id (Kafka's InitProducerId) until one answers. */
  private requestProducerId(session: ProducerSession): void {
    if (session !== this.session || session.producerId !== null || !this.clientsActive) return;
    const running = this.hosts.filter((host) => host.node !== null && !host.paused);
    const host = running[this.producerIdAsks++ % Math.max(1, running.length)];
    const node = host?.node;
    if (host === undefined || node == null) {
      this.scheduler.after(PRODUCER_ID_BACKOFF_MS, 'producer id retry', () => { this.requestProducerId(session); });
      return;
    }
    const generation = host.generation;
    let answered = false;
    // A node that dies or pauses never answers: ask the next one.
    const lost = this.scheduler.after(PRODUCER_ID_WAIT_MS, 'producer id timeout', () => {
      if (answered) return;
      answered = true;
      this.requestProducerId(session);
    });
    node.initProducerId().then(
      (answer) => {
        if (answered) return;
        answered = true;
        lost.cancelled = true;
        if (host.generation !== generation || session !== this.session) return;
        session.producerId = answer.producerId;
        this.scheduler.record(`producer id ${answer.producerId} from n${host.id}`);
        for (let partition = 0; partition < this.partitions; partition += 1) this.sendWaiting(partition);
      },
      () => {
        if (answered) return;
        answered = true;
        lost.cancelled = true;
        this.scheduler.after(PRODUCER_ID_BACKOFF_MS, 'producer id retry', () => { this.requestProducerId(session); });
      },
    );
  }

  /** The batch is acknowledged or given up: it no longer holds back its session's later batches, and frees a slot. */
  private resolve(batch: OutgoingBatch): void {
    const unresolved = batch.session?.unresolved[batch.partition];
    const index = unresolved?.indexOf(batch) ?? -1;
    if (index < 0) return;
    unresolved?.splice(index, 1);
    this.sendWaiting(batch.partition);
  }

  /**
   * A sequence error for the session's oldest batch of a partition: the partition will never
   * take it (a batch before it was lost or given up, or the producer expired), so the producer
   * gives it up and starts a new session with a new id, as Kafka's producer bumps its epoch. A
   * later batch gets the same error while an earlier one is still on its way: it only retries.
   */
  private sequenceBroken(batch: OutgoingBatch, error: unknown): boolean {
    const session = batch.session;
    if (session === undefined || !(error instanceof DriftwoodError) || !SEQUENCE_ERRORS.has(error.code)) return false;
    if (session.unresolved[batch.partition]?.[0] !== batch) return false;
    this.producesAbandoned += 1;
    this.scheduler.record(`gave up ${batch.id} to data-${batch.partition}: ${error.message}`);
    if (session === this.session) {
      this.producerIdResets += 1;
      this.session = this.newSession();
      this.requestProducerId(this.session);
    }
    this.resolve(batch);
    return true;
  }

  /**
   * Sends a batch to a node that believes it leads the partition, and on any error or lost
   * answer sends the same bytes again after a backoff until its delivery timeout, as a Kafka
   * producer does (so a plain batch whose answer was lost may land twice; an idempotent one
   * must not: the leader drops the retry).
   */
  private sendBatch(batch: OutgoingBatch): void {
    const topicId = this.dataTopicId;
    if (topicId === null) return;
    const retry = (): void => {
      const backoffMs = RETRY_BACKOFF_MS + this.clientRng.int(RETRY_BACKOFF_MS);
      if (this.scheduler.nowMs + backoffMs >= batch.deadlineMs) {
        this.producesAbandoned += 1;
        this.resolve(batch);
        return;
      }
      this.scheduler.after(backoffMs, 'produce retry', () => { this.sendBatch(batch); });
    };
    const leaders = this.hosts.filter((host) => host.node !== null && !host.paused && host.node.replicas.partition(topicId, batch.partition)?.isLeader === true);
    const host = leaders[this.clientRng.int(Math.max(1, leaders.length))];
    const node = host?.node;
    if (host === undefined || node == null) {
      retry();
      return;
    }
    this.history.sent(batch.id, batch.partition, batch.values, batch.acks, batch.session !== undefined);
    const generation = host.generation;
    let answered = false;
    // The client's own request timeout: a broker that died never answers.
    const lost = this.scheduler.after(PRODUCE_TIMEOUT_MS + REQUEST_SLACK_MS, 'produce timeout', () => {
      if (answered) return;
      answered = true;
      retry();
    });
    node.replicas.produce(DATA_TOPIC, batch.partition, batch.bytes, batch.acks, PRODUCE_TIMEOUT_MS).then(
      (result) => {
        if (answered) return;
        answered = true;
        lost.cancelled = true;
        if (host.generation !== generation) {
          retry(); // the broker died before it could answer
          return;
        }
        // A leader must be a registered, unfenced broker in its own image (so its image is past
        // its own registration): a restarted broker acting on the image it replayed from disk
        // could count a stale ISR (seed 252, before the fix).
        const self = node.image.broker(node.id);
        if (self === undefined || self.fenced || self.brokerEpoch !== node.agent.epoch) {
          this.violation('unregistered-leader', `n${node.id} acknowledged data-${batch.partition}@${result.baseOffset} while not registered and unfenced in its own image`);
        }
        this.history.acknowledged(batch.id, batch.values, result.baseOffset);
        this.resolve(batch);
        batch.onAcknowledged?.();
        const replica = node.replicas.partition(topicId, batch.partition);
        this.scheduler.record(`acked ${batch.id} acks=${batch.acks} data-${batch.partition}@${result.baseOffset}+${batch.values.length} by n${node.id} epoch ${replica?.state.leaderEpoch ?? -1} hw ${replica?.highWatermark ?? -1}`);
      },
      (error: unknown) => {
        if (answered) return;
        answered = true;
        lost.cancelled = true;
        if (!this.sequenceBroken(batch, error)) retry();
      },
    );
  }

  /**
   * Liveness: half-way through the healed time, one acks=all batch per data partition, retried
   * as producers do; each must be acknowledged before the end (checked in checkConverged).
   */
  private probeProducers(): void {
    if (this.dataTopicId === null) return;
    for (let partition = 0; partition < this.partitions; partition += 1) {
      const values = [`s${this.options.seed}-probe${partition}`];
      const bytes = buildBatch(values.map((value) => ({ key: null, value: Buffer.from(value), timestampMs: this.scheduler.nowMs })));
      this.sendBatch({ id: `probe${partition}`, partition, acks: -1, values, bytes, deadlineMs: this.options.faultMs + this.options.healMs, onAcknowledged: () => { this.probesAcknowledged.add(partition); } });
    }
  }

  private scheduleConsumer(partition: number): void {
    this.scheduler.after(20 + this.clientRng.int(300), 'consume', () => {
      this.consumeOne(partition);
      if (this.clientsActive) this.scheduleConsumer(partition);
    });
  }

  /**
   * A consumer polls committed records from a node that believes it leads the partition,
   * naming the leader epoch it knows (KIP-320), as a Kafka consumer does: a broker behind it
   * refuses. Two reads of one offset must agree, the high watermark it sees never goes back,
   * and (checked at the end) every read must still be in the log: a read above the true high
   * watermark would later disappear.
   */
  private consumeOne(partition: number): void {
    const topicId = this.dataTopicId;
    if (topicId === null) return;
    const leaders = this.hosts.filter((host) => host.node !== null && !host.paused && host.node.replicas.partition(topicId, partition)?.isLeader === true);
    const host = leaders[this.clientRng.int(Math.max(1, leaders.length))];
    const node = host?.node;
    const view = this.consumers[partition];
    if (host === undefined || node == null || view === undefined) return;
    const generation = host.generation;
    const from = view.position;
    const options = { bytesMax: 64 * 1024, minBytes: 1, maxWaitMs: 0, ...(view.leaderEpoch < 0 ? {} : { currentLeaderEpoch: view.leaderEpoch }) };
    node.replicas.consume(DATA_TOPIC, partition, from, options).then(
      (read) => {
        if (host.generation !== generation) return;
        view.leaderEpoch = Math.max(view.leaderEpoch, read.leaderEpoch);
        this.history.highWatermark(`consumer-${partition}`, partition, read.highWatermark, `n${host.id} epoch ${read.leaderEpoch}`);
        for (const batch of readBatches(read.bytes)) {
          for (const { offset, value } of batch.records) if (offset >= from) this.history.read(partition, offset, value);
        }
        view.position = Math.max(view.position, read.nextOffset);
      },
      (error: unknown) => {
        // A newer leader epoch exists: the consumer refreshes its metadata (this broker's view).
        if (error instanceof DriftwoodError && error.code === 'FENCED_LEADER_EPOCH' && typeof error.hints['leaderEpoch'] === 'number') view.leaderEpoch = Math.max(view.leaderEpoch, error.hints['leaderEpoch']);
      },
    );
  }

  /**
   * After healing: each data partition's leader has committed everything it holds; offsets
   * are dense; every replica holds the leader's bytes below the high watermark; and the
   * client history checks out against those logs (see DataHistory).
   */
  private async checkData(): Promise<void> {
    const topicId = this.dataTopicId;
    const image = this.controller()?.node?.image;
    if (topicId === null || image === undefined) {
      this.violation('liveness', topicId === null ? 'the data topic was never created' : 'no controller to check the data against');
      return;
    }
    const stored: StoredRecord[] = [];
    for (let partition = 0; partition < this.partitions; partition += 1) {
      const state = image.partition(topicId, partition);
      const leader = state === undefined ? undefined : this.hosts.find((host) => host.id === state.leader)?.node?.replicas.partition(topicId, partition);
      if (state === undefined || leader === undefined) {
        this.violation('liveness', `data partition ${partition} has no live leader after healing`);
        continue;
      }
      const hw = leader.highWatermark;
      if (hw !== leader.log.logEndOffset) this.violation('liveness', `data partition ${partition}: high watermark ${hw} below the log end ${leader.log.logEndOffset} after healing`);
      const bytes = await readRange(leader.log, leader.log.logStartOffset, hw);
      let expected = leader.log.logStartOffset;
      // Every stored batch is checked (CRC included) as it is decoded.
      for (const batch of readBatches(bytes)) {
        if (batch.baseOffset !== expected) this.violation('inconsistent-offsets', `data partition ${partition}: batch at ${batch.baseOffset}, expected ${expected}`);
        expected = batch.nextOffset;
        for (const { offset, value } of batch.records) stored.push({ partition, offset, value });
      }
      for (const id of state.replicas) {
        if (id === state.leader) continue;
        const follower = this.hosts.find((host) => host.id === id)?.node?.replicas.partition(topicId, partition);
        if (follower === undefined) continue;
        const theirs = await readRange(follower.log, leader.log.logStartOffset, hw);
        if (!theirs.equals(bytes)) this.violation('replica-divergence', `data partition ${partition}: replica on n${id} differs from the leader's below the high watermark`);
      }
    }
    this.dataCounts = this.history.check(stored, VIOLATIONS_REPORTED_MAX);
  }

  // --- clients ---

  private scheduleClient(): void {
    this.scheduler.after(1 + this.clientRng.int(this.clientGapMs * 2), 'client', () => {
      this.clientRequest();
      if (this.scheduler.nowMs < this.options.faultMs + this.options.healMs / 2) this.scheduleClient();
    });
  }

  /** Creates or deletes a topic, or asks for a preferred-leader election, through a random running node, as an admin client would. */
  private clientRequest(): void {
    const running = this.hosts.filter((host) => host.node !== null && !host.paused);
    const host = running[this.clientRng.int(Math.max(1, running.length))];
    const node = host?.node;
    if (node == null) return;
    if (this.clientRng.float() < 0.1) {
      // An operator's preferred-leader election (Kafka's kafka-leader-election --election-type PREFERRED).
      node.toController({ kind: 'elect-preferred-leaders', body: {} }).then(
        (answer) => { this.scheduler.record(`preferred election moved ${answer.elected}`); },
        () => undefined,
      );
      return;
    }
    const existing = [...this.createdAcked].filter((name) => !this.deletedAcked.has(name) && !this.doubtful.has(name));
    if (existing.length > 0 && this.clientRng.float() < 0.25) {
      const name = existing[this.clientRng.int(existing.length)] ?? '';
      this.doubtful.add(name); // until the answer says otherwise
      node.toController({ kind: 'delete-topic', body: { name } }).then(
        () => { this.deletedAcked.add(name); this.scheduler.record(`deleted ${name}`); },
        () => undefined,
      );
      return;
    }
    const name = `t${this.topicSerial++}`;
    // With decommissions on, topics fit on the brokers that may remain (else every decommission is refused).
    const replicationFactorMax = this.faultWeights.some((entry) => entry.kind === 'decommission') ? this.replicationFactor : this.ids.length;
    const body = { name, partitions: 1 + this.clientRng.int(8), replicationFactor: 1 + this.clientRng.int(replicationFactorMax), configs: {} };
    this.doubtful.add(name);
    node.toController({ kind: 'create-topic', body }).then(
      () => { this.doubtful.delete(name); this.createdAcked.add(name); this.scheduler.record(`created ${name}`); },
      (error: unknown) => { if (error instanceof DriftwoodError && error.code === 'INVALID_REPLICATION_FACTOR') this.doubtful.delete(name); },
    );
  }

  /** With `reassign` on, an operator moves replicas every 0.5 to 3 s of the faulty time, whatever the nemesis does. */
  private scheduleMoves(): void {
    const rng = this.movesRng;
    if (rng === null) return;
    this.scheduler.after(MOVE_GAP_MS_MIN + rng.int(MOVE_GAP_MS_SPREAD), 'move replicas', () => {
      if (!this.faulting) return;
      const running = this.hosts.filter((host) => host.node !== null && !host.paused);
      const host = running[rng.int(Math.max(1, running.length))];
      if (host !== undefined) this.moveReplicas(host, rng.int(1 << 16), rng);
      this.scheduleMoves();
    });
  }

  // --- nemesis ---

  private scheduleNemesis(): void {
    this.scheduler.after(100 + this.nemesisRng.int(this.faultGapMs * 2), 'nemesis', () => {
      if (!this.faulting) return;
      this.injectFault();
      this.scheduleNemesis();
    });
  }

  /** The seed's nemesis: a fault kind drawn by the seed's weights, against a random running node. */
  private injectFault(): void {
    const total = this.faultWeights.reduce((sum, entry) => sum + entry.weight, 0);
    let draw = this.nemesisRng.int(Math.max(1, total));
    const chosen = this.faultWeights.find((entry) => (draw -= entry.weight) < 0);
    const target = this.nemesisRng.int(1 << 16);
    const downMs = 300 + this.nemesisRng.int(4000);
    if (chosen !== undefined) this.inject(chosen.kind, target, downMs);
  }

  /** One fault: `target` picks a running node (modulo their number) or a data partition. */
  private inject(kind: FaultKind, target: number, downMs: number): void {
    const running = this.hosts.filter((host) => host.node !== null && !host.paused);
    const host = running[target % Math.max(1, running.length)];
    if (host === undefined) return;
    this.faultsInjected[kind] = (this.faultsInjected[kind] ?? 0) + 1;
    switch (kind) {
      case 'crash': this.crash(host, downMs); return;
      case 'crash-replicas': this.crashReplicasOfDataPartition(target, downMs); return;
      case 'isolate': this.cut(`isolate n${host.id}`, [[host.id], this.others(host.id)], downMs); return;
      case 'isolate-controller': {
        const controller = this.controller() ?? host;
        this.cut(`isolate controller n${controller.id}`, [[controller.id], this.others(controller.id)], downMs);
        return;
      }
      case 'isolate-leader': this.isolateLeaderFromFollowers(target, downMs); return;
      case 'partition': this.cut('partition', this.randomHalves(), downMs); return;
      case 'one-way': this.cutOneWay(host.id, downMs); return;
      case 'bridge': this.bridge(host.id, downMs); return;
      case 'pause': this.pause(host, downMs); return;
      case 'clean-stop': void this.cleanStop(host, downMs); return;
      case 'clock-jump': host.clock.jump(this.nemesisRng.int(20_000) - 10_000); this.scheduler.record(`clock jump n${host.id}`); return;
      case 'slow-disk': this.slowDisk(host, downMs); return;
      case 'disk-error': this.diskError(host); return;
      case 'reassign': this.moveReplicas(host, target, this.nemesisRng); return;
      case 'decommission': this.decommission(host, target); return;
    }
  }

  /**
   * An operator's reassignment through a running node, decided on that node's image (a stale
   * one may be refused, or replace a newer target, as an operator's would): a data partition
   * grown, shrunk, given another broker, reordered, or its move in flight replaced or
   * cancelled; sometimes a rebalance of everything, sometimes only the throttle.
   */
  private moveReplicas(host: Host, target: number, rng: SeededRng): void {
    const node = host.node;
    const topicId = this.dataTopicId;
    if (node === null || topicId === null) return;
    const roll = rng.float();
    const throttle = rng.float() < 0.5 ? {} : { throttleBytesPerSec: REASSIGN_THROTTLES_BYTES_PER_SEC[rng.int(REASSIGN_THROTTLES_BYTES_PER_SEC.length)] ?? -1 };
    const refused = (label: string) => (error: unknown): void => { this.scheduler.record(`${label} via n${host.id}: ${error instanceof DriftwoodError ? error.code : String(error)}`); };
    if (roll < 0.15) {
      node.toController({ kind: 'rebalance', body: { dryRun: false, ...throttle } }).then(
        (answer) => { this.scheduler.record(`rebalance via n${host.id}: ${answer.moves.length} moves`); },
        refused('rebalance'),
      );
      return;
    }
    const state = node.image.partition(topicId, target % this.partitions);
    const eligible = node.image.brokers().filter((broker) => broker.decommissioned !== true).map((broker) => broker.brokerId);
    const move = roll < 0.25 || state === undefined ? null : drawMove(rng, state, eligible, Math.min(2, this.replicationFactor));
    if (move === null && throttle.throttleBytesPerSec === undefined) return;
    const reassignments = move === null || state === undefined ? [] : [{ topicId, partition: state.partition, replicas: move.replicas }];
    const label = move === null ? `throttle ${throttle.throttleBytesPerSec ?? ''}` : `reassign data-${state?.partition ?? -1} ${move.shape} [${move.replicas?.join(',') ?? ''}]`;
    node.toController({ kind: 'alter-reassignments', body: { reassignments, ...throttle } }).then(
      () => { this.scheduler.record(`${label} via n${host.id}: done`); },
      refused(label),
    );
  }

  /**
   * Decommissions a broker (sticky: it never takes replicas again) while brokers beyond the
   * data topic's replication factor remain, so the cluster can still heal with every
   * partition fully replicated.
   */
  private decommission(host: Host, target: number): void {
    const node = host.node;
    if (node === null || this.decommissionsAsked.size >= this.ids.length - this.replicationFactor) return;
    const candidates = this.ids.filter((id) => !this.decommissionsAsked.has(id));
    const brokerId = candidates[target % Math.max(1, candidates.length)];
    if (brokerId === undefined) return;
    this.decommissionsAsked.add(brokerId);
    node.toController({ kind: 'decommission-broker', body: { brokerId, dryRun: false } }).then(
      (answer) => { this.scheduler.record(`decommission n${brokerId} via n${host.id}: ${answer.moves.length} moves`); },
      (error: unknown) => {
        // Refused outright (a topic needs every broker left): nothing committed, it may be asked again.
        if (error instanceof DriftwoodError && error.code === 'INVALID_REPLICATION_FACTOR') this.decommissionsAsked.delete(brokerId);
        this.scheduler.record(`decommission n${brokerId} via n${host.id}: ${error instanceof DriftwoodError ? error.code : String(error)}`);
      },
    );
  }

  private others(id: number): number[] {
    return this.ids.filter((other) => other !== id);
  }

  /** The nodes in two random non-empty groups. */
  private randomHalves(): number[][] {
    const shuffled = [...this.ids].sort(() => this.nemesisRng.float() - 0.5);
    const cut = 1 + this.nemesisRng.int(this.ids.length - 1);
    return [shuffled.slice(0, cut), shuffled.slice(cut)];
  }

  /** Cuts every link between the groups, both ways, until downMs have passed. */
  private cut(label: string, groups: number[][], downMs: number): void {
    this.failover = null;
    this.raftNet.partition(groups);
    this.controllerNet.partition(groups);
    this.scheduler.record(`${label}: ${groups.map((group) => group.join(',')).join(' | ')}`);
    this.scheduler.after(downMs, 'heal links', () => { this.healLinks(); });
  }

  /** Node `id` can send to some others but not hear them: it keeps its beliefs, they stop hearing it... or the reverse. */
  private cutOneWay(id: number, downMs: number): void {
    this.failover = null;
    const deaf = this.nemesisRng.float() < 0.5;
    const others = this.others(id).filter(() => this.nemesisRng.float() < 0.7);
    for (const other of others) {
      const [from, to] = deaf ? [other, id] : [id, other];
      this.raftNet.cutOneWay(from, to);
      this.controllerNet.cutOneWay(from, to);
    }
    this.scheduler.record(`one-way: n${id} ${deaf ? 'hears nothing from' : 'cannot reach'} ${others.join(',')}`);
    this.scheduler.after(downMs, 'heal links', () => { this.healLinks(); });
  }

  /** Jepsen's bridge: two halves that cannot reach each other, and one node that reaches both. */
  private bridge(bridgeId: number, downMs: number): void {
    const rest = this.others(bridgeId).sort(() => this.nemesisRng.float() - 0.5);
    const half = Math.ceil(rest.length / 2);
    const [a, b] = [rest.slice(0, half), rest.slice(half)];
    if (b.length === 0) return;
    this.failover = null;
    this.raftNet.partition([a, b]);
    this.controllerNet.partition([a, b]);
    this.scheduler.record(`bridge n${bridgeId}: ${a.join(',')} | ${b.join(',')}`);
    this.scheduler.after(downMs, 'heal links', () => { this.healLinks(); });
  }

  /**
   * A data partition's leader loses its followers (both ways) but keeps the controller and
   * its clients: it must shrink its ISR through the controller before acking acks=all again.
   */
  private isolateLeaderFromFollowers(target: number, downMs: number): void {
    const topicId = this.dataTopicId;
    const state = topicId === null ? undefined : this.controller()?.node?.image.partition(topicId, target % this.partitions);
    if (state === undefined || state.leader === NO_LEADER) return;
    this.failover = null;
    const followers = state.replicas.filter((id) => id !== state.leader);
    const controllerId = this.controller()?.id;
    for (const id of followers) {
      if (id === controllerId) continue; // the controller stays reachable
      for (const [from, to] of [[state.leader, id], [id, state.leader]] as const) {
        this.raftNet.cutOneWay(from, to);
        this.controllerNet.cutOneWay(from, to);
      }
    }
    this.scheduler.record(`isolate data-${state.partition} leader n${state.leader} from its followers ${followers.join(',')}`);
    this.scheduler.after(downMs, 'heal links', () => { this.healLinks(); });
  }

  /** The node's disk stalls: fsyncs take tens to hundreds of ms for a while. */
  /** The node's next write to its partition logs' disk fails (disk full or an I/O error) and changes nothing. */
  private diskError(host: Host): void {
    const code = this.nemesisRng.float() < 0.5 ? 'ENOSPC' : 'EIO';
    host.disk.failNextOp(code);
    this.scheduler.record(`disk error n${host.id}: the next write fails with ${code}`);
  }

  private slowDisk(host: Host, downMs: number): void {
    host.slowDiskUntilMs = this.scheduler.nowMs + downMs;
    this.scheduler.record(`slow disk n${host.id}`);
  }

  /**
   * Power loss on RF - 1 replicas of a data partition at once, the leader among them: only
   * the last may keep what was acknowledged.
   */
  private crashReplicasOfDataPartition(target: number, downMs: number): void {
    const topicId = this.dataTopicId;
    const image = this.controller()?.node?.image;
    const state = topicId === null ? undefined : image?.partition(topicId, target % this.partitions);
    if (state === undefined) return;
    const pool = state.replicas.filter((id) => id !== state.leader);
    const victims = [state.leader];
    while (victims.length < state.replicas.length - 1 && pool.length > 0) victims.push(pool.splice(this.nemesisRng.int(pool.length), 1)[0] ?? state.leader);
    this.scheduler.record(`crash replicas ${victims.join(',')} of data-${state.partition}`);
    for (const id of new Set(victims)) {
      const host = this.hosts.find((candidate) => candidate.id === id);
      if (host !== undefined) this.crash(host, downMs);
    }
  }

  private crash(host: Host, downMs: number): void {
    if (host.node === null) return;
    this.startFailoverWatch(host);
    this.scheduler.record(`crash n${host.id}`);
    this.stopNode(host);
    this.scheduler.after(downMs, `restart n${host.id}`, () => { void this.restart(host); });
  }

  /** SIGTERM: controlled shutdown (leaderships move first), then the process exits. */
  private async cleanStop(host: Host, downMs: number): Promise<void> {
    const node = host.node;
    if (node === null) return;
    const generation = host.generation;
    this.scheduler.record(`clean stop n${host.id}`);
    await node.controlledShutdown();
    if (host.generation !== generation) return;
    try {
      await node.replicas.close();
    } catch (error) {
      // A crash while closing fails the close; only a failure on a live disk is a bug.
      if (host.generation === generation) this.violation('invariant', `n${host.id} failed to close its logs: ${String(error)}`);
    }
    if (host.generation !== generation) return;
    this.stopNode(host);
    this.scheduler.after(downMs, `restart n${host.id}`, () => { void this.restart(host); });
  }

  private pause(host: Host, downMs: number): void {
    if (host.node === null || host.paused) return;
    this.failover = null;
    host.paused = true;
    host.clock.pause();
    this.detach(host);
    this.scheduler.record(`pause n${host.id}`);
    this.scheduler.after(downMs, `resume n${host.id}`, () => { this.resume(host); });
  }

  private resume(host: Host): void {
    if (!host.paused || host.node === null) return;
    host.paused = false;
    host.clock.resume();
    this.attach(host);
    this.scheduler.record(`resume n${host.id}`);
  }

  /**
   * Times failover when a healthy cluster (every node up and connected, no failover being
   * timed) loses a broker that leads partitions; any other fault meanwhile voids the watch.
   */
  private startFailoverWatch(host: Host): void {
    const healthy = this.hosts.every((other) => other.node !== null && !other.paused) && this.raftNet.cutLinks === 0;
    const image = host.node?.image;
    const leads = image !== undefined && image.topics().some((topic) => (image.partitions(topic.topicId) ?? []).some((p) => p.leader === host.id && p.isr.length > 1));
    this.failover = healthy && this.failover === null && leads ? { brokerId: host.id, fromMs: this.scheduler.nowMs, wasController: host.node?.controller.isActive === true } : null;
  }

  private healLinks(): void {
    this.raftNet.heal();
    this.controllerNet.heal();
  }

  private heal(): void {
    this.healLinks();
    this.raftNet.faults = calmLinks;
    this.controllerNet.faults = calmLinks;
    this.failover = null;
    for (const host of this.hosts) {
      host.slowDiskUntilMs = 0;
      this.resume(host);
      if (host.node === null && !host.starting) void this.restart(host);
    }
    this.scheduler.record('heal');
  }
}

/**
 * A deep copy of what crosses the simulated wire, so sender and receiver share nothing: plain
 * objects, arrays and byte arrays (a Buffer arrives as a Uint8Array, as with structuredClone,
 * which costs several times more on these small envelopes). Anything else is a bug in a sender.
 */
function copyWire(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Array.isArray(value)) return value.map(copyWire);
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) throw new TypeError(`cannot send a ${value.constructor.name} over the simulated wire`);
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) copy[key] = copyWire((value as Record<string, unknown>)[key]);
  return copy;
}

function drawFaults(rng: SeededRng): LinkFaults {
  return { delayMsMin: 1, delayMsMax: 2 + rng.int(30), lossProbability: rng.float() * 0.03, duplicateProbability: rng.float() * 0.02 };
}
