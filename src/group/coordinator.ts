// The group coordinator on one broker. The coordinator of a group is the leader of partition
// murmur2(group) % P of the internal topic __consumer_offsets (created on first use, RF 3 or
// the cluster size if smaller), so coordination moves with partition leadership and needs no
// election of its own. Everything a group must not forget (committed offsets, and which
// member was granted which partition) is appended to that partition with acks=all before the
// answer goes out, so a coordinator failover loses no commit and no grant: the new leader
// replays the partition (last record per key wins) before it serves its groups.
//
// Operations on one group run one at a time (a queue per group): each computes its change
// in memory, appends its records, then answers. When an append fails, the memory may be
// ahead of the log, so the partition's groups are dropped and replayed before serving again.
import assert from 'node:assert/strict';
import type { Clock, TimerHandle } from '../../storage/clock.js';
import { DriftwoodError, isDriftwoodError } from '../../storage/errors.js';
import type { Rng } from '../../storage/rng.js';
import { buildBatch, decodeBatch, readBatchHeader } from '../../storage/record-batch.js';
import type { CreateTopicRequest } from '../controller/commands.js';
import type { MetadataImage } from '../controller/image.js';
import { NO_LEADER } from '../controller/records.js';
import { partitionForKey } from '../partitioner.js';
import type { Partition } from '../replica/partition.js';
import type { ReplicaManager } from '../replica/replica-manager.js';
import { ClassicGroup, defaultClassicGroupLimits, type ClassicGroupLimits, type ClassicGroupState, type ClassicJoinAnswer, type ClassicJoinRequest } from './classic-group.js';
import { ConsumerGroup, defaultGroupLimits, partitionKey, splitPartitionKey, type GroupLimits, type GroupStateName, type HeartbeatAnswer, type HeartbeatRequest, type TopicPartitionList } from './group.js';
import { consumerAssignment } from './consumer-protocol.js';
import { decodeGroupRecord, encodeGroupRecord, OFFSETS_TOPIC, type GroupRecord } from './group-records.js';

export interface GroupCoordinatorConfig {
  /** Partitions of __consumer_offsets when this broker creates it (Kafka: offsets.topic.num.partitions). */
  readonly offsetsTopicPartitions: number;
  /** Its replication factor, capped by the live brokers (Kafka: offsets.topic.replication.factor). */
  readonly offsetsTopicReplicationFactor: number;
  /** How long an empty group's offsets are kept (Kafka: offsets.retention.minutes, 7 days). */
  readonly offsetsRetentionMs: number;
  /** How often a coordinator rewrites its partitions' live state, so retention can drop old segments. */
  readonly checkpointMs: number;
  /** Retention of __consumer_offsets segments; must exceed checkpointMs by a margin. */
  readonly offsetsTopicRetentionMs: number;
  /** How long an append to __consumer_offsets may wait for the ISR. */
  readonly writeTimeoutMs: number;
  /** How often sessions are checked for expiry and leaderships for loss. */
  readonly sweepMs: number;
  /** How long a request waits for its group's partition to load before LOAD_IN_PROGRESS. */
  readonly loadWaitMs: number;
  /** Bytes read per step while loading. */
  readonly loadReadBytesMax: number;
  readonly limits: GroupLimits;
  /** Limits of groups under Kafka's classic protocol (the Kafka listener's JoinGroup and SyncGroup). */
  readonly classicLimits: ClassicGroupLimits;
}

export const defaultGroupCoordinatorConfig: GroupCoordinatorConfig = {
  offsetsTopicPartitions: 12,
  offsetsTopicReplicationFactor: 3,
  offsetsRetentionMs: 7 * 24 * 3_600_000,
  checkpointMs: 3_600_000,
  offsetsTopicRetentionMs: 24 * 3_600_000,
  writeTimeoutMs: 5000,
  sweepMs: 1000,
  loadWaitMs: 2000,
  loadReadBytesMax: 1024 * 1024,
  limits: defaultGroupLimits,
  classicLimits: defaultClassicGroupLimits,
};

export interface GroupCoordinatorPorts {
  readonly brokerId: number;
  readonly clock: Clock;
  readonly rng: Rng;
  readonly image: MetadataImage;
  readonly replicas: ReplicaManager;
  /** Asks the controller to create a topic (the internal one). */
  readonly createTopic: (request: CreateTopicRequest) => Promise<unknown>;
  /** A broken invariant (a record that does not decode): the broker must stop. */
  readonly onFatal: (error: unknown) => void;
  /**
   * Whether this broker is sure the controller has not fenced it (its lease, from the broker
   * agent's heartbeats). A broker cut off from the controller may have lost its leaderships
   * without knowing; answering heartbeats from memory then would keep members holding
   * partitions the new coordinator gives to others.
   */
  readonly leaseValid: () => boolean;
}

export interface OffsetToCommit {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly metadata?: string;
}

export interface ResetRequest {
  readonly topic: string;
  readonly partitions?: readonly number[];
  readonly to: 'earliest' | 'latest' | 'offset' | 'timestamp';
  readonly value?: number;
  readonly dryRun?: boolean;
}

export interface GroupDescription {
  readonly group: string;
  readonly state: GroupStateName;
  readonly groupEpoch: number;
  /** An HTTP group's assignor; for a Kafka client's group, the protocol its members chose (e.g. 'range'). */
  readonly assignor: string;
  readonly members: ReturnType<ConsumerGroup['describeMembers']>;
  readonly offsets: Array<{ topic: string; partition: number; committed: number; metadata: string }>;
}

/** Where to find a partition's offsets for a reset; the node layer asks the partition's leader. */
export type OffsetLookup = (topic: string, partition: number, spec: 'earliest' | 'latest' | number) => Promise<number>;

const METADATA_CHARS_MAX = 4096;
/** Records per appended batch: a few hundred bytes each keeps a batch well under max.message.bytes. */
const RECORDS_PER_BATCH_MAX = 500;

/**
 * One group id's state. A group holds members of one protocol at a time: driftwood's own
 * (KIP-848-like, over HTTP) in `group`, or Kafka's classic one (the Kafka listener) in
 * `classic`; the committed offsets (in `group`) are the same whichever protocol committed them.
 */
interface GroupEntry {
  /** Both replaced by blank groups when the group is deleted, so queued operations see it gone. */
  group: ConsumerGroup;
  classic: ClassicGroup;
  queue: Promise<unknown>;
}

type GroupOp<T> = (g: ConsumerGroup, classic: ClassicGroup) => { records: GroupRecord[]; answer: T; remove?: boolean };

/** A member's Kafka-protocol commit: its classic member id and generation ('' and -1 outside any group). */
export interface ClassicCommitter {
  readonly memberId: string;
  readonly generationId: number;
}

/** A group as Kafka's DescribeGroups and ListGroups show it. */
export interface KafkaGroupDescription {
  readonly group: string;
  /** Kafka's state names; 'Dead' for a group this coordinator does not have. */
  readonly state: ClassicGroupState | 'Dead' | 'Reconciling';
  readonly protocolType: string;
  readonly protocol: string;
  readonly members: ReadonlyArray<{ memberId: string; clientId: string; clientHost: string; metadata: Buffer; assignment: Buffer }>;
}

interface LoadedPartition {
  readonly index: number;
  readonly leaderEpoch: number;
  status: 'loading' | 'ready' | 'failed';
  readonly loaded: Promise<void>;
  readonly groups: Map<string, GroupEntry>;
  lastCheckpointMs: number;
  inflight: number;
  checkpointing: boolean;
}

export class GroupCoordinator {
  private readonly partitions = new Map<number, LoadedPartition>();
  private creating: Promise<unknown> | null = null;
  private sweepTimer: TimerHandle | null = null;
  private stopped = false;

  constructor(private readonly config: GroupCoordinatorConfig, private readonly ports: GroupCoordinatorPorts) {}

  /** Nothing runs until a partition is loaded (the sweep timer runs only while some are). */
  start(): void {
    this.stopped = false;
  }

  stop(): void {
    this.stopped = true;
    this.sweepTimer?.cancel();
    this.sweepTimer = null;
    for (const loaded of this.partitions.values()) abandonGroups(loaded, `broker ${this.ports.brokerId} is stopping`);
    this.partitions.clear();
  }

  // --- finding the coordinator ---

  /** The internal partition of a group and the broker that leads it (creating the topic on first use). */
  coordinatorFor(group: string): { partition: number; coordinatorId: number; coordinatorAddress: string } {
    validateGroupId(group);
    const image = this.ports.image;
    const topic = image.topic(OFFSETS_TOPIC);
    if (topic === undefined) {
      this.ensureTopic();
      throw new DriftwoodError('COORDINATOR_NOT_AVAILABLE', `${OFFSETS_TOPIC} is being created; retry`);
    }
    const count = image.partitions(topic.topicId)?.length ?? 0;
    const partition = partitionForKey(Buffer.from(group, 'utf8'), count);
    const state = image.partition(topic.topicId, partition);
    const leader = state?.leader ?? NO_LEADER;
    const address = leader === NO_LEADER ? undefined : image.broker(leader)?.address;
    if (address === undefined) throw new DriftwoodError('COORDINATOR_NOT_AVAILABLE', `${OFFSETS_TOPIC}-${partition} has no leader now; retry`);
    return { partition, coordinatorId: leader, coordinatorAddress: address };
  }

  private ensureTopic(): void {
    if (this.creating !== null) return;
    const live = this.ports.image.unfencedBrokerIds().length;
    const replicationFactor = Math.max(1, Math.min(this.config.offsetsTopicReplicationFactor, live));
    this.creating = this.ports.createTopic({
      name: OFFSETS_TOPIC,
      partitions: this.config.offsetsTopicPartitions,
      replicationFactor,
      configs: {
        'min.insync.replicas': Math.min(2, replicationFactor),
        'retention.ms': this.config.offsetsTopicRetentionMs,
        'segment.ms': this.config.checkpointMs,
        'segment.bytes': 100 * 1024 * 1024,
        // Commits are few and small next to data: each is synced before it is acknowledged,
        // so one survives even every replica losing power at once (Kafka relies on
        // replication alone here).
        'flush.ms': 0,
      },
    }).catch(() => undefined).finally(() => { this.creating = null; });
  }

  // --- the group operations (at the coordinator) ---

  async heartbeat(group: string, request: HeartbeatRequest): Promise<HeartbeatAnswer> {
    return await this.run(group, (g, classic) => {
      if (classic.size > 0 && request.memberEpoch === 0) throw inconsistentProtocol(group, 'Kafka\'s classic protocol (Kafka clients)');
      const newMemberId = (): string => `${request.clientId !== undefined && request.clientId.length > 0 ? request.clientId : 'member'}-${randomHex(this.ports.rng, 8)}`;
      const answer = g.heartbeat(request, this.ports.clock.monotonicMs(), (topic) => this.partitionCount(topic), newMemberId, this.wallMs());
      return { records: [], answer };
    });
  }

  async commit(group: string, memberId: string | undefined, memberEpoch: number | undefined, offsets: readonly OffsetToCommit[]): Promise<{ offsets: Array<{ topic: string; partition: number; offset: number }> }> {
    for (const o of offsets) {
      if ((o.metadata ?? '').length > METADATA_CHARS_MAX) throw new DriftwoodError('INVALID_REQUEST', `offset metadata is at most ${METADATA_CHARS_MAX} characters`);
    }
    return await this.run(group, (g, classic) => {
      if (classic.size > 0) throw new DriftwoodError('UNKNOWN_MEMBER_ID', `group ${group} has members of Kafka's classic protocol; only they commit its offsets`);
      g.checkCommit(memberId, memberEpoch, offsets);
      const commitMs = this.wallMs();
      const records: GroupRecord[] = [];
      for (const o of offsets) {
        const value = { offset: o.offset, metadata: o.metadata ?? '', commitMs };
        g.offsets.set(partitionKey(o.topic, o.partition), value);
        records.push({ type: 'offset', group, topic: o.topic, partition: o.partition, value });
      }
      return { records, answer: { offsets: offsets.map(({ topic, partition, offset }) => ({ topic, partition, offset })) } };
    });
  }

  /** The group's committed offsets (none for a group never seen). */
  async fetchOffsets(group: string, topic?: string): Promise<{ group: string; offsets: Array<{ topic: string; partition: number; offset: number; metadata: string }> }> {
    try {
      return await this.run(group, (g) => ({ records: [], answer: { group, offsets: committedOffsets(g).filter((o) => topic === undefined || o.topic === topic).map(({ topic: t, partition, committed, metadata }) => ({ topic: t, partition, offset: committed, metadata })) } }), { create: false });
    } catch (error) {
      if (isDriftwoodError(error, 'GROUP_ID_NOT_FOUND')) return { group, offsets: [] };
      throw error;
    }
  }

  async describe(group: string): Promise<GroupDescription> {
    return await this.run(group, (g, classic) => {
      if (g.memberCount === 0 && g.offsets.size === 0 && classic.size === 0) throw new DriftwoodError('GROUP_ID_NOT_FOUND', `no group ${group}`);
      return { records: [], answer: describeGroup(g, classic) };
    }, { create: false });
  }

  /** Moves an empty group's committed offsets, the one way they go back. */
  async resetOffsets(group: string, request: ResetRequest, lookup: OffsetLookup): Promise<{ group: string; dryRun: boolean; offsets: Array<{ topic: string; partition: number; offset: number }> }> {
    const count = this.partitionCount(request.topic);
    if (count === undefined) throw new DriftwoodError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${request.topic} does not exist`);
    const partitions = request.partitions ?? Array.from({ length: count }, (_, i) => i);
    const bad = partitions.find((p) => p >= count);
    if (bad !== undefined) throw new DriftwoodError('UNKNOWN_TOPIC_OR_PARTITION', `${request.topic} has no partition ${bad}`);
    if ((request.to === 'offset' || request.to === 'timestamp') && request.value === undefined) throw new DriftwoodError('INVALID_REQUEST', `'to: ${request.to}' needs a value`);
    // Resolved before the group's turn: lookups go to other brokers and take time.
    const targets = await Promise.all(partitions.map(async (partition) => {
      if (request.to === 'offset') return { partition, offset: request.value ?? 0 };
      const spec = request.to === 'timestamp' ? request.value ?? 0 : request.to;
      let offset = await lookup(request.topic, partition, spec);
      // No record that recent: the end, as kafka-consumer-groups does.
      if (offset < 0) offset = await lookup(request.topic, partition, 'latest');
      return { partition, offset };
    }));
    return this.run<{ group: string; dryRun: boolean; offsets: Array<{ topic: string; partition: number; offset: number }> }>(group, (g, classic) => {
      if (classic.size > 0) throw new DriftwoodError('NON_EMPTY_GROUP', `group ${group} has ${classic.size} members; stop them first`);
      if (g.memberCount > 0) throw new DriftwoodError('NON_EMPTY_GROUP', `group ${group} has ${g.memberCount} members; stop them first`);
      const offsets = targets.map(({ partition, offset }) => ({ topic: request.topic, partition, offset }));
      const dryRun: boolean = request.dryRun === true;
      if (dryRun) return { records: [], answer: { group, dryRun, offsets } };
      const commitMs = this.wallMs();
      const records: GroupRecord[] = offsets.map(({ topic, partition, offset }) => {
        const value = { offset, metadata: '', commitMs };
        g.offsets.set(partitionKey(topic, partition), value);
        return { type: 'offset', group, topic, partition, value };
      });
      return { records, answer: { group, dryRun, offsets } };
    });
  }

  async deleteGroup(group: string): Promise<{ ok: true }> {
    return await this.run(group, (g, classic) => {
      if (g.memberCount > 0 || classic.size > 0) throw new DriftwoodError('NON_EMPTY_GROUP', `group ${group} has ${g.memberCount + classic.size} members; stop them first`);
      if (g.offsets.size === 0 && g.groupEpoch === 0 && classic.generationId === 0) throw new DriftwoodError('GROUP_ID_NOT_FOUND', `no group ${group}`);
      return { records: tombstones(group, g, classic), answer: { ok: true as const }, remove: true };
    }, { create: false });
  }

  // --- Kafka's classic protocol (the Kafka listener) ---

  /** JoinGroup: answered when the group's next generation forms, or refused. */
  async joinClassic(group: string, request: ClassicJoinRequest): Promise<ClassicJoinAnswer> {
    return await this.runWaiting(group, (g, classic) => {
      if (g.memberCount > 0) throw inconsistentProtocol(group, 'driftwood\'s own protocol (HTTP clients)');
      return classic.join(request, this.ports.clock.monotonicMs());
    });
  }

  /** SyncGroup: the member's assignment, once the group leader has handed them out. */
  async syncClassic(group: string, memberId: string, generationId: number, assignments: ReadonlyArray<{ memberId: string; assignment: Buffer }>): Promise<{ assignment: Buffer; protocolType: string; protocolName: string }> {
    return await this.runWaiting(group, (_g, classic) => classic.sync(memberId, generationId, assignments, this.ports.clock.monotonicMs()).then((assignment) => {
      const { protocolType, protocol } = classic.describe();
      return { assignment, protocolType, protocolName: protocol };
    }));
  }

  /** Heartbeat: the session goes on, or an error tells the member to join again. */
  async heartbeatClassic(group: string, memberId: string, generationId: number): Promise<void> {
    await this.run(group, (_g, classic) => {
      classic.heartbeat(memberId, generationId, this.ports.clock.monotonicMs());
      return { records: [], answer: undefined };
    });
  }

  /** LeaveGroup: per member, null or why it could not leave. */
  async leaveClassic(group: string, memberIds: readonly string[]): Promise<Array<DriftwoodError | null>> {
    return await this.run(group, (_g, classic) => ({ records: [], answer: classic.leave(memberIds, this.ports.clock.monotonicMs()) }));
  }

  /**
   * OffsetCommit from a Kafka client: a member in its current generation, or a consumer
   * outside any group ('' and -1) while the group has no members. As in Kafka, an offset may
   * go back (a consumer that seeks back commits where it is).
   */
  async commitClassic(group: string, committer: ClassicCommitter, offsets: readonly OffsetToCommit[]): Promise<void> {
    for (const o of offsets) {
      if ((o.metadata ?? '').length > METADATA_CHARS_MAX) throw new DriftwoodError('INVALID_REQUEST', `offset metadata is at most ${METADATA_CHARS_MAX} characters`);
      assert(Number.isSafeInteger(o.offset) && o.offset >= 0 && o.topic.length > 0, 'the handler passes offsets of existing partitions only');
    }
    await this.run(group, (g, classic) => {
      if (committer.memberId === '' && committer.generationId < 0) {
        if (g.memberCount > 0 || classic.size > 0) throw new DriftwoodError('UNKNOWN_MEMBER_ID', `group ${group} has members; only they commit its offsets`);
      } else {
        classic.checkCommit(committer.memberId, committer.generationId);
      }
      const commitMs = this.wallMs();
      const records: GroupRecord[] = offsets.map((o) => {
        const value = { offset: o.offset, metadata: o.metadata ?? '', commitMs };
        g.offsets.set(partitionKey(o.topic, o.partition), value);
        return { type: 'offset', group, topic: o.topic, partition: o.partition, value };
      });
      return { records, answer: undefined };
    });
  }

  /** DescribeGroups: a group of either protocol as Kafka shows it ('Dead' when there is none). */
  async describeKafka(group: string): Promise<KafkaGroupDescription> {
    try {
      return await this.run(group, (g, classic) => ({ records: [], answer: kafkaDescription(group, g, classic) }), { create: false });
    } catch (error) {
      if (isDriftwoodError(error, 'GROUP_ID_NOT_FOUND')) return { group, state: 'Dead', protocolType: '', protocol: '', members: [] };
      throw error;
    }
  }

  /** ListGroups: the groups this broker coordinates now, with Kafka's protocol type and state. */
  kafkaGroups(): Array<{ group: string; protocolType: string; state: string }> {
    const groups: Array<{ group: string; protocolType: string; state: string }> = [];
    for (const loaded of this.partitions.values()) {
      if (loaded.status !== 'ready') continue;
      for (const [name, { group, classic }] of loaded.groups) {
        if (classic.size === 0 && group.memberCount === 0 && group.offsets.size === 0) continue;
        const { state, protocolType } = kafkaDescription(name, group, classic);
        groups.push({ group: name, protocolType, state });
      }
    }
    return groups.sort((a, b) => (a.group < b.group ? -1 : 1));
  }

  /**
   * Runs an operation whose answer comes later (a join or sync waiting for the rest of the
   * group). The answer goes out only after the operation that settled it has its records in
   * the log, and only while this broker still serves the partition, so no member learns of
   * a generation a failover could take back.
   */
  private async runWaiting<T>(group: string, op: (g: ConsumerGroup, classic: ClassicGroup) => Promise<T>): Promise<T> {
    validateGroupId(group);
    const { partition } = this.coordinatorFor(group);
    let loaded: LoadedPartition | undefined;
    const { pending } = await this.runOn(partition, group, (g, classic) => {
      loaded = this.partitions.get(partition);
      const waiting = op(g, classic);
      waiting.catch(() => undefined); // handled where it is awaited below; not unhandled if the append fails first
      return { records: [], answer: { pending: waiting } };
    }, {});
    const answer = await pending;
    const entry = loaded?.groups.get(group);
    if (entry !== undefined) await entry.queue;
    if (loaded === undefined || this.partitions.get(partition) !== loaded || loaded.status !== 'ready') {
      throw new DriftwoodError('NOT_COORDINATOR', `broker ${this.ports.brokerId} no longer serves ${OFFSETS_TOPIC}-${partition} as it did; find the coordinator again`);
    }
    return answer;
  }

  /** The groups this broker coordinates now (their partitions loaded). */
  listGroups(): Array<{ group: string; state: GroupStateName; members: number; coordinatorId: number }> {
    const groups: Array<{ group: string; state: GroupStateName; members: number; coordinatorId: number }> = [];
    for (const loaded of this.partitions.values()) {
      if (loaded.status !== 'ready') continue;
      for (const [name, { group, classic }] of loaded.groups) {
        if (classic.size > 0) groups.push({ group: name, state: classic.state === 'Stable' ? 'stable' : 'reconciling', members: classic.size, coordinatorId: this.ports.brokerId });
        else if (group.memberCount > 0 || group.offsets.size > 0) groups.push({ group: name, state: group.state, members: group.memberCount, coordinatorId: this.ports.brokerId });
      }
    }
    return groups.sort((a, b) => (a.group < b.group ? -1 : 1));
  }

  /** Every committed offset of the groups this broker coordinates now (for the lag metric). */
  committedOffsets(): Array<{ group: string; topic: string; partition: number; offset: number }> {
    const offsets: Array<{ group: string; topic: string; partition: number; offset: number }> = [];
    for (const loaded of this.partitions.values()) {
      if (loaded.status !== 'ready') continue;
      for (const [name, { group }] of loaded.groups) {
        for (const [key, committed] of group.offsets) offsets.push({ group: name, ...splitPartitionKey(key), offset: committed.offset });
      }
    }
    return offsets;
  }

  /** Loads every internal partition this broker leads (so list sees groups nobody asked about yet). */
  async loadLed(): Promise<void> {
    const topic = this.ports.image.topic(OFFSETS_TOPIC);
    if (topic === undefined) return;
    const led = (this.ports.image.partitions(topic.topicId) ?? []).filter((p) => p.leader === this.ports.brokerId);
    await Promise.all(led.map((p) => this.loadedPartition(p.partition).catch(() => undefined)));
  }

  // --- running an operation ---

  private run<T>(group: string, op: GroupOp<T>, options: { create?: boolean } = {}): Promise<T> {
    validateGroupId(group);
    const { partition } = this.coordinatorFor(group);
    return this.runOn(partition, group, op, options);
  }

  private async runOn<T>(index: number, group: string, op: GroupOp<T>, options: { create?: boolean }): Promise<T> {
    const loaded = await this.loadedPartition(index);
    let entry = loaded.groups.get(group);
    if (entry === undefined) {
      if (options.create === false) throw new DriftwoodError('GROUP_ID_NOT_FOUND', `no group ${group}`);
      entry = this.blankEntry(group);
      loaded.groups.set(group, entry);
    }
    const current = entry;
    const result = current.queue.then(async () => {
      this.checkServing(loaded);
      if (!this.ports.leaseValid()) throw new DriftwoodError('COORDINATOR_NOT_AVAILABLE', `broker ${this.ports.brokerId} has not heard from the controller lately and may have lost ${OFFSETS_TOPIC}-${index}; retry`);
      const before = JSON.stringify(current.group.persisted());
      const classicBefore = JSON.stringify(current.classic.persisted());
      const { records, answer, remove } = op(current.group, current.classic);
      const all = [...records];
      if (remove !== true) {
        const after = current.group.persisted();
        if (JSON.stringify(after) !== before) all.push({ type: 'group', group, value: after });
        const classicAfter = current.classic.persisted();
        if (JSON.stringify(classicAfter) !== classicBefore) all.push({ type: 'classic', group, value: classicAfter });
      } else {
        const blank = this.blankEntry(group);
        current.group = blank.group;
        current.classic = blank.classic;
      }
      if (all.length > 0) await this.append(loaded, all);
      return answer;
    });
    current.queue = result.catch(() => undefined);
    return result;
  }

  private blankEntry(group: string): GroupEntry {
    return {
      group: new ConsumerGroup(group, this.config.limits),
      classic: new ClassicGroup(group, this.config.classicLimits, (clientId) => `${clientId.length > 0 ? clientId : 'member'}-${randomHex(this.ports.rng, 16)}`),
      queue: Promise.resolve(),
    };
  }

  private checkServing(loaded: LoadedPartition): void {
    if (this.partitions.get(loaded.index) !== loaded || loaded.status !== 'ready') {
      throw new DriftwoodError('COORDINATOR_LOAD_IN_PROGRESS', `${OFFSETS_TOPIC}-${loaded.index} is being loaded again; retry`);
    }
  }

  /**
   * Appends with acks=all, in batches of at most RECORDS_PER_BATCH_MAX records (a checkpoint
   * of a large group would pass max.message.bytes in one); each record stands alone, as the
   * last one per key wins. A failure leaves memory possibly ahead of the log, so the
   * partition is loaded again before it serves.
   */
  private async append(loaded: LoadedPartition, records: readonly GroupRecord[]): Promise<void> {
    const nowMs = this.wallMs();
    loaded.inflight += 1;
    try {
      for (let i = 0; i < records.length; i += RECORDS_PER_BATCH_MAX) {
        const batch = buildBatch(records.slice(i, i + RECORDS_PER_BATCH_MAX).map((record) => ({ ...encodeGroupRecord(record), timestampMs: nowMs })));
        await this.ports.replicas.produce(OFFSETS_TOPIC, loaded.index, batch, -1, this.config.writeTimeoutMs);
      }
    } catch (error) {
      loaded.status = 'failed';
      if (isDriftwoodError(error, 'NOT_LEADER_OR_FOLLOWER')) throw new DriftwoodError('NOT_COORDINATOR', `broker ${this.ports.brokerId} lost the leadership of ${OFFSETS_TOPIC}-${loaded.index}; find the coordinator again`);
      throw new DriftwoodError('COORDINATOR_NOT_AVAILABLE', `the write to ${OFFSETS_TOPIC}-${loaded.index} failed (${error instanceof Error ? error.message : String(error)}); retry`);
    } finally {
      loaded.inflight -= 1;
    }
  }

  /** The loaded state of an internal partition this broker leads, loading it first if needed. */
  private async loadedPartition(index: number): Promise<LoadedPartition> {
    const replica = this.ledReplica(index);
    let loaded = this.partitions.get(index);
    let knownDeadlines = new Map<string, Map<string, number>>();
    if (loaded !== undefined && (loaded.leaderEpoch !== replica.state.leaderEpoch || (loaded.status === 'failed' && loaded.inflight === 0))) {
      // Within one leader epoch this coordinator timed every session; a new leader did not.
      if (loaded.leaderEpoch === replica.state.leaderEpoch) knownDeadlines = new Map([...loaded.groups].map(([name, entry]) => [name, entry.group.deadlines()]));
      abandonGroups(loaded, `${OFFSETS_TOPIC}-${index} is being loaded again`);
      this.partitions.delete(index);
      loaded = undefined;
    }
    if (loaded === undefined) {
      const fresh: LoadedPartition = {
        index,
        leaderEpoch: replica.state.leaderEpoch,
        status: 'loading',
        loaded: Promise.resolve(),
        groups: new Map(),
        lastCheckpointMs: 0,
        inflight: 0,
        checkpointing: false,
      };
      // In the map before loading starts: the load checks it is still the current one.
      this.partitions.set(index, fresh);
      (fresh as { loaded: Promise<void> }).loaded = this.load(fresh, replica, knownDeadlines);
      loaded = fresh;
      if (this.sweepTimer === null) this.scheduleSweep();
    }
    if (loaded.status === 'ready') return loaded;
    if (loaded.status === 'failed') throw new DriftwoodError('COORDINATOR_LOAD_IN_PROGRESS', `${OFFSETS_TOPIC}-${index} is being loaded again; retry`);
    await this.settled(loaded.loaded, this.config.loadWaitMs);
    if (!isReady(loaded)) throw new DriftwoodError('COORDINATOR_LOAD_IN_PROGRESS', `${OFFSETS_TOPIC}-${index} is loading; retry`);
    return loaded;
  }

  private ledReplica(index: number): Partition {
    const topic = this.ports.image.topic(OFFSETS_TOPIC);
    if (topic === undefined) throw new DriftwoodError('COORDINATOR_NOT_AVAILABLE', `${OFFSETS_TOPIC} does not exist yet; retry`);
    const replica = this.ports.replicas.partition(topic.topicId, index);
    const state = this.ports.image.partition(topic.topicId, index);
    if (replica?.isLeader !== true || state?.leader !== this.ports.brokerId) {
      const leader = state === undefined || state.leader === NO_LEADER ? null : state.leader;
      if (leader === this.ports.brokerId) throw new DriftwoodError('COORDINATOR_LOAD_IN_PROGRESS', `broker ${leader} is taking the leadership of ${OFFSETS_TOPIC}-${index}; retry`);
      throw new DriftwoodError('NOT_COORDINATOR', `broker ${this.ports.brokerId} does not lead ${OFFSETS_TOPIC}-${index}`, {
        coordinatorId: leader,
        coordinatorAddress: leader === null ? null : this.ports.image.broker(leader)?.address ?? null,
      });
    }
    return replica;
  }

  /**
   * Replays the partition into groups. It first waits until everything in this leader's log
   * is committed (high watermark at the log end as it was at the start), so what it serves
   * can never be taken back by a failover; then reads from the log start.
   */
  private async load(loaded: LoadedPartition, replica: Partition, knownDeadlines: ReadonlyMap<string, ReadonlyMap<string, number>>): Promise<void> {
    try {
      const end = replica.log.logEndOffset;
      while (replica.highWatermark < end || !replica.highWatermarkEstablished) {
        if (!this.stillLeads(loaded, replica)) return;
        await this.changed(replica, this.config.loadWaitMs);
      }
      const records: GroupRecord[] = [];
      let offset = replica.log.logStartOffset;
      while (offset < end) {
        if (!this.stillLeads(loaded, replica)) return;
        const read = await replica.readCommitted(offset, this.config.loadReadBytesMax);
        if (read.bytes.length === 0) break;
        for (let position = 0; position < read.bytes.length;) {
          const header = readBatchHeader(read.bytes, position);
          const batch = decodeBatch(read.bytes, position);
          for (const record of batch.records) {
            if (header.baseOffset + record.offsetDelta >= offset) records.push(decodeGroupRecord(record.key, record.value));
          }
          position += header.sizeBytes;
        }
        offset = read.nextOffset;
      }
      if (!this.stillLeads(loaded, replica)) return;
      this.replay(loaded, records, knownDeadlines);
      loaded.status = 'ready';
    } catch (error) {
      if (error instanceof DriftwoodError) {
        loaded.status = 'failed';
        return;
      }
      this.ports.onFatal(error);
    }
  }

  private replay(loaded: LoadedPartition, records: readonly GroupRecord[], knownDeadlines: ReadonlyMap<string, ReadonlyMap<string, number>>): void {
    const nowMs = this.ports.clock.monotonicMs(); // sessions restart from here
    const entry = (group: string): GroupEntry => {
      let found = loaded.groups.get(group);
      if (found === undefined) {
        found = this.blankEntry(group);
        loaded.groups.set(group, found);
      }
      return found;
    };
    for (const record of records) {
      if (record.type === 'checkpoint') {
        loaded.lastCheckpointMs = record.atMs;
      } else if (record.type === 'offset') {
        const key = partitionKey(record.topic, record.partition);
        if (record.value === null) loaded.groups.get(record.group)?.group.offsets.delete(key);
        else entry(record.group).group.offsets.set(key, record.value);
      } else if (record.type === 'classic') {
        if (record.value === null) {
          const found = loaded.groups.get(record.group);
          if (found !== undefined) found.classic = this.blankEntry(record.group).classic;
        } else {
          entry(record.group).classic.restore(record.value, nowMs);
        }
      } else if (record.value === null) {
        loaded.groups.delete(record.group);
      } else {
        entry(record.group).group.restore(record.value, nowMs, knownDeadlines.get(record.group));
      }
    }
  }

  private stillLeads(loaded: LoadedPartition, replica: Partition): boolean {
    return !this.stopped && this.partitions.get(loaded.index) === loaded && replica.isLeader && replica.state.leaderEpoch === loaded.leaderEpoch;
  }

  private changed(replica: Partition, waitMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.ports.clock.setTimer(waitMs, () => { stop(); resolve(); });
      const stop = replica.onChange(() => { timer.cancel(); stop(); resolve(); });
    });
  }

  private settled(work: Promise<void>, waitMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.ports.clock.setTimer(waitMs, resolve);
      void work.finally(() => { timer.cancel(); resolve(); });
    });
  }

  // --- sessions, leadership and checkpoints ---

  private scheduleSweep(): void {
    this.sweepTimer = this.ports.clock.setTimer(this.config.sweepMs, () => {
      this.sweepTimer = null;
      if (this.stopped) return;
      this.sweep();
      if (this.partitions.size > 0) this.scheduleSweep();
    });
  }

  private sweep(): void {
    const nowMs = this.wallMs();
    const monotonicMs = this.ports.clock.monotonicMs();
    for (const loaded of [...this.partitions.values()]) {
      const topic = this.ports.image.topic(OFFSETS_TOPIC);
      const replica = topic === undefined ? undefined : this.ports.replicas.partition(topic.topicId, loaded.index);
      if (replica?.isLeader !== true || replica.state.leaderEpoch !== loaded.leaderEpoch) {
        abandonGroups(loaded, `broker ${this.ports.brokerId} lost the leadership of ${OFFSETS_TOPIC}-${loaded.index}`);
        this.partitions.delete(loaded.index);
        continue;
      }
      if (loaded.status !== 'ready') continue;
      for (const [name, { group, classic }] of loaded.groups) {
        const deadline = group.nextDeadlineMs();
        if (deadline !== null && deadline < monotonicMs) {
          void this.runOn(loaded.index, name, (g) => { g.expire(this.ports.clock.monotonicMs(), this.wallMs()); return { records: [], answer: null }; }, {}).catch(() => undefined);
        }
        const classicDeadline = classic.nextDeadlineMs();
        if (classicDeadline !== null && classicDeadline <= monotonicMs) {
          void this.runOn(loaded.index, name, (_g, c) => { c.tick(this.ports.clock.monotonicMs()); return { records: [], answer: null }; }, {}).catch(() => undefined);
        }
      }
      if (!loaded.checkpointing && nowMs - loaded.lastCheckpointMs >= this.config.checkpointMs) void this.checkpoint(loaded);
    }
  }

  /**
   * Rewrites the partition's live state (and drops groups empty for longer than the offsets
   * retention), each group in its own turn so no later change is overwritten by an older
   * copy, then marks the checkpoint. Everything before the previous checkpoint can then go.
   */
  private async checkpoint(loaded: LoadedPartition): Promise<void> {
    loaded.checkpointing = true;
    const atMs = this.wallMs();
    try {
      const names = [...loaded.groups.keys()];
      for (let i = 0; i < names.length; i += 1) {
        const name = names[i] ?? '';
        await this.runOn(loaded.index, name, (g, classic) => {
          if (g.memberCount === 0 && classic.size === 0 && lastActivityMs(g) + this.config.offsetsRetentionMs < atMs) return { records: tombstones(name, g, classic), answer: null, remove: true };
          const records: GroupRecord[] = [{ type: 'group', group: name, value: g.persisted() }, { type: 'classic', group: name, value: classic.persisted() }];
          for (const [key, value] of g.offsets) records.push({ type: 'offset', group: name, ...splitPartitionKey(key), value });
          return { records, answer: null };
        }, { create: false });
      }
      this.checkServing(loaded);
      await this.append(loaded, [{ type: 'checkpoint', atMs }]);
      loaded.lastCheckpointMs = atMs;
    } catch {
      // Lost leadership or a failed write: the next coordinator (or a reload) checkpoints.
    } finally {
      loaded.checkpointing = false;
    }
  }

  /** Wall-clock ms as the records keep them: whole (a clock may give fractions) and never negative. */
  private wallMs(): number {
    return Math.max(0, Math.floor(this.ports.clock.nowMs()));
  }

  private partitionCount(topic: string): number | undefined {
    const state = this.ports.image.topic(topic);
    return state === undefined ? undefined : this.ports.image.partitions(state.topicId)?.length;
  }
}

/** A method-free check, as the status changes across awaits (the compiler narrows a plain read). */
function isReady(loaded: LoadedPartition): boolean {
  return loaded.status === 'ready';
}

function validateGroupId(group: string): void {
  if (group.length === 0 || group.length > 249 || !/^[a-zA-Z0-9._-]+$/.test(group)) {
    throw new DriftwoodError('INVALID_GROUP_ID', `'${group}': a group id is 1 to 249 of ASCII letters, digits, '.', '_' and '-'`);
  }
}

function committedOffsets(g: ConsumerGroup): Array<{ topic: string; partition: number; committed: number; metadata: string }> {
  return [...g.offsets]
    .map(([key, value]) => ({ ...splitPartitionKey(key), committed: value.offset, metadata: value.metadata }))
    .sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
}

function describeGroup(g: ConsumerGroup, classic: ClassicGroup): GroupDescription {
  if (classic.size === 0) return { group: g.groupId, state: g.state, groupEpoch: g.groupEpoch, assignor: g.assignor, members: g.describeMembers(), offsets: committedOffsets(g) };
  // A Kafka client's group: its generation, the assignor its leader chose (the protocol), and
  // each member's partitions where the assignment is Kafka's consumer protocol.
  const described = classic.describe();
  return {
    group: g.groupId,
    state: described.state === 'Stable' ? 'stable' : 'reconciling',
    groupEpoch: classic.generationId,
    assignor: described.protocol,
    members: described.members.map((m) => ({
      memberId: m.memberId,
      clientId: m.clientId,
      host: m.clientHost,
      memberEpoch: classic.generationId,
      assignment: (described.protocolType === 'consumer' ? consumerAssignment(m.assignment) : null) ?? [],
    })),
    offsets: committedOffsets(g),
  };
}

function kafkaDescription(group: string, g: ConsumerGroup, classic: ClassicGroup): KafkaGroupDescription {
  if (classic.size > 0 || g.memberCount === 0) {
    const described = classic.describe();
    return { group, state: described.state, protocolType: described.protocolType, protocol: described.protocol, members: described.members };
  }
  // A group of driftwood's own protocol, named as Kafka names a KIP-848 consumer group.
  return {
    group,
    state: g.state === 'stable' ? 'Stable' : 'Reconciling',
    protocolType: 'consumer',
    protocol: '',
    members: g.describeMembers().map((m) => ({ memberId: m.memberId, clientId: m.clientId, clientHost: m.host, metadata: Buffer.alloc(0), assignment: Buffer.alloc(0) })),
  };
}

function lastActivityMs(g: ConsumerGroup): number {
  let last = g.emptySinceMs ?? 0;
  for (const value of g.offsets.values()) last = Math.max(last, value.commitMs);
  return last;
}

function tombstones(group: string, g: ConsumerGroup, classic: ClassicGroup): GroupRecord[] {
  return [
    ...[...g.offsets.keys()].map((key): GroupRecord => ({ type: 'offset', group, ...splitPartitionKey(key), value: null })),
    ...(classic.generationId > 0 ? [{ type: 'classic' as const, group, value: null }] : []),
    { type: 'group', group, value: null },
  ];
}

/** Requests waiting in a dropped partition's classic groups fail: the client finds the coordinator again. */
function abandonGroups(loaded: LoadedPartition, why: string): void {
  for (const entry of loaded.groups.values()) entry.classic.abandon(new DriftwoodError('NOT_COORDINATOR', `${why}; find the coordinator again`));
}

function inconsistentProtocol(group: string, other: string): DriftwoodError {
  return new DriftwoodError('INCONSISTENT_GROUP_PROTOCOL', `group ${group} has members of ${other}; a group holds members of one protocol at a time`);
}

function randomHex(rng: Rng, bytes: number): string {
  let text = '';
  for (let i = 0; i < bytes; i += 1) text += rng.int(256).toString(16).padStart(2, '0');
  return text;
}

export type { TopicPartitionList };
